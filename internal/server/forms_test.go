package server_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/forms"
)

func xformFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../xform/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// action calls a Hasura action as role with a user id and decodes the
// answer.
func (b *bundle) action(t *testing.T, name, role string, input map[string]any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{
		"action":            map[string]any{"name": name},
		"input":             input,
		"session_variables": map[string]any{"x-hasura-role": role, "x-hasura-user-id": "user-" + role},
		"request_query":     "mutation { " + name + " }",
	})
	resp := b.post(t, "/actions/"+name, body, nil)
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func code(out map[string]any) any {
	ext, _ := out["extensions"].(map[string]any)
	return ext["code"]
}

func (b *bundle) registerHousehold(t *testing.T) {
	t.Helper()
	status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": xformFile(t, "household_survey.xml"), "purpose": "DATA_COLLECTION"})
	if status != 200 || out["formId"] != "household_survey" || out["questions"] != float64(28) {
		t.Fatalf("registerForm: %d %v", status, out)
	}
}

func TestFormActions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if status, out := b.action(t, "registerForm", "school", map[string]any{"xform": xformFile(t, "household_survey.xml"), "purpose": "DATA_COLLECTION"}); status != 403 {
		t.Errorf("registerForm as school: %d %v", status, out)
	}
	if status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": "<h:html/>", "purpose": "SURVEY"}); status != 400 || !strings.HasPrefix(fmt.Sprint(out["message"]), "purpose:") {
		t.Errorf("bad purpose: %d %v", status, out)
	}
	b.registerHousehold(t)
	b.registerHousehold(t) // the same version again: registered once
	if n := b.count(t, `SELECT count(*) FROM product_event WHERE event = 'form_registered'
		AND properties @> '{"form_id": "household_survey", "purpose": "DATA_COLLECTION", "questions": 28}'`); n != 1 {
		t.Errorf("got %d form_registered events, want 1", n)
	}

	status, out := b.action(t, "saveFormRule", "admin", map[string]any{"formId": "household_survey", "name": "savings",
		"expression": "monthly_savings <= monthly_incme", "message": "बचत आय से अधिक"})
	if status != 400 || code(out) != "INVALID_INPUT" || !strings.Contains(fmt.Sprint(out["message"]), "unknown name monthly_incme") {
		t.Errorf("rule with a typo: %d %v", status, out)
	}
	if status, out := b.action(t, "saveFormRule", "admin", map[string]any{"formId": "household_survey", "name": "savings",
		"expression": "monthly_savings <= monthly_income", "message": "बचत आय से अधिक"}); status != 200 || out["id"] == nil {
		t.Errorf("saveFormRule: %d %v", status, out)
	}

	receipt := map[string]any{"formId": "household_survey", "phoneField": "phone", "nameField": "name",
		"summaryFields": []string{"household_size", "monthly_income"}, "language": "Hindi (hi)"}
	if status, out := b.action(t, "saveFormReceipt", "school", receipt); status != 403 {
		t.Errorf("saveFormReceipt as school: %d %v", status, out)
	}
	receipt["phoneField"] = "mobile"
	if status, out := b.action(t, "saveFormReceipt", "admin", receipt); status != 400 || code(out) != "INVALID_INPUT" ||
		!strings.HasPrefix(fmt.Sprint(out["message"]), `phoneField: "mobile" is not a question`) {
		t.Errorf("receipt with a typo: %d %v", status, out)
	}
	receipt["phoneField"] = "phone"
	status, out = b.action(t, "saveFormReceipt", "admin", receipt)
	if status != 200 || out["formId"] != "household_survey" || out["language"] != "Hindi (hi)" || out["enabled"] != true || out["nameField"] != "name" {
		t.Errorf("saveFormReceipt: %d %v", status, out)
	}

	doc := xformFile(t, "household_submission.xml")
	status, out = b.action(t, "submitForm", "school", map[string]any{"xml": doc})
	if status != 200 || out["status"] != "accepted" || out["responseId"] == nil || out["duplicate"] != false || out["assessmentId"] != nil {
		t.Fatalf("submitForm: %d %v", status, out)
	}
	responseID := out["responseId"]
	if n := b.count(t, `SELECT count(*) FROM sms_request WHERE type = 'RECEIPT' AND variables ->> 'summary' LIKE 'सदस्यों की संख्या: 3%'`); n != 1 {
		t.Errorf("%d receipts queued for the response, want 1 from the saved receipt", n)
	}
	status, out = b.action(t, "submitForm", "school", map[string]any{"xml": doc})
	if status != 200 || out["duplicate"] != true || out["responseId"] != responseID {
		t.Errorf("same XML again: %d %v", status, out)
	}
	status, out = b.action(t, "submitForm", "school", map[string]any{"xml": strings.Replace(doc, "<rooms>3</rooms>", "<rooms>5</rooms>", 1)})
	if status != 409 || code(out) != "DUPLICATE_INSTANCE" {
		t.Errorf("different XML, same instanceID: %d %v", status, out)
	}
	status, out = b.action(t, "submitForm", "school", map[string]any{"xml": strings.NewReplacer(
		"uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b", "uuid:second", "<monthly_income>18000</monthly_income>", "<monthly_income>eighteen</monthly_income>").Replace(doc)})
	errs, _ := out["errors"].([]any)
	if status != 200 || out["status"] != "rejected" || len(errs) != 1 {
		t.Errorf("bad value: %d %v", status, out)
	}
	status, out = b.action(t, "submitForm", "school", map[string]any{"xml": `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><data id="x"/>`})
	if status != 400 || code(out) != "INVALID_SUBMISSION" {
		t.Errorf("DTD: %d %v", status, out)
	}
	status, out = b.action(t, "submitForm", "school", map[string]any{"xml": strings.NewReplacer(`id="household_survey"`, `id="unknown_form"`,
		"uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b", "uuid:third").Replace(doc)})
	if status != 404 || code(out) != "UNKNOWN_FORM" {
		t.Errorf("unknown form: %d %v", status, out)
	}

	// Assessment builders are for admins.
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO academic_year (id, starts_on, ends_on) VALUES ('2026-27', '2026-04-01', '2027-03-31')`); err != nil {
		t.Fatal(err)
	}
	if status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": xformFile(t, "assessment_builder.xml"), "purpose": "ASSESSMENT_BUILDER"}); status != 200 {
		t.Fatalf("register builder: %d %v", status, out)
	}
	if status, out := b.action(t, "submitForm", "school", map[string]any{"xml": xformFile(t, "assessment_submission.xml")}); status != 403 || code(out) != "FORBIDDEN" {
		t.Errorf("builder submission by a school: %d %v", status, out)
	}
	// Refused by the pipeline, not before it: the XML is kept with the
	// refusal, as on every other path (the action no longer parses it
	// itself, ignoring errors).
	if n := b.count(t, `SELECT count(*) FROM form_submission WHERE source = 'action' AND submitted_role = 'school'
		AND status = 'rejected' AND error_code = 'FORBIDDEN' AND xml LIKE '%<assessment %'`); n != 1 {
		t.Errorf("%d refused builders kept from the school, want 1", n)
	}
	status, out = b.action(t, "submitForm", "state_admin", map[string]any{"xml": xformFile(t, "assessment_submission.xml")})
	if status != 200 || out["assessmentId"] == nil {
		t.Errorf("builder submission: %d %v", status, out)
	}
	status, out = b.action(t, "submitForm", "state_admin", map[string]any{"xml": strings.NewReplacer("<outcome>TSP</outcome>", "<outcome>MARKS</outcome>",
		"uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60", "uuid:other").Replace(xformFile(t, "assessment_submission.xml"))})
	if status != 422 || code(out) != "UNSUPPORTED_ASSESSMENT" || !strings.Contains(fmt.Sprint(out["message"]), "unit type NONE × evaluation MARKS × outcome MARKS") {
		t.Errorf("unsupported kind: %d %v", status, out)
	}
}

type openRosaResponse struct {
	XMLName xml.Name `xml:"OpenRosaResponse"`
	Message string   `xml:"message"`
}

func (b *bundle) createCollector(t *testing.T) (id, token string) {
	t.Helper()
	status, out := b.action(t, "createCollector", "admin", map[string]any{"name": "रमेश", "phone": "9816055555"})
	if status != 200 {
		t.Fatalf("createCollector: %d %v", status, out)
	}
	token = out["token"].(string)
	if out["submissionUrl"] != "https://shala.example/openrosa/key/"+token {
		t.Errorf("submissionUrl %v", out["submissionUrl"])
	}
	return out["id"].(string), token
}

// submit posts a multipart OpenRosa submission as ODK Collect does.
func (b *bundle) submit(t *testing.T, token string, doc string, attachments map[string][]byte) (*http.Response, openRosaResponse) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="xml_submission_file"; filename="submission.xml"`)
	h.Set("Content-Type", "text/xml")
	pw, _ := mw.CreatePart(h)
	_, _ = pw.Write([]byte(doc))
	for name, data := range attachments {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, name, name))
		h.Set("Content-Type", "image/jpeg")
		pw, _ := mw.CreatePart(h)
		_, _ = pw.Write(data)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, b.url+"/openrosa/key/"+token+"/submission", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-OpenRosa-Version", "1.0")
	req.Header.Set("Date", "Sun, 22 Nov 2026 10:00:00 GMT")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out openRosaResponse
	raw, _ := io.ReadAll(resp.Body)
	if err := xml.Unmarshal(raw, &out); err != nil {
		t.Fatalf("answer is not an OpenRosaResponse: %s", raw)
	}
	return resp, out
}

func TestOpenRosaSubmission(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.registerHousehold(t)
	collectorID, token := b.createCollector(t)

	req, _ := http.NewRequest(http.MethodHead, b.url+"/openrosa/key/"+token+"/submission", nil)
	req.Header.Set("X-OpenRosa-Version", "1.0")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("X-OpenRosa-Version") != "1.0" || resp.Header.Get("X-OpenRosa-Accept-Content-Length") != "262144" {
		t.Errorf("HEAD: %d %v", resp.StatusCode, resp.Header)
	}

	photo := bytes.Repeat([]byte{0xff, 0xd8, 0xff}, 1000)
	doc := xformFile(t, "household_submission.xml")
	resp, out := b.submit(t, token, doc, map[string][]byte{"1700463587123.jpg": photo})
	if resp.StatusCode != 201 || out.Message != "Form received" || resp.Header.Get("X-OpenRosa-Version") != "1.0" {
		t.Fatalf("POST: %d %+v", resp.StatusCode, out)
	}
	var key string
	var size int64
	if err := b.pool.QueryRow(context.Background(), `SELECT a.blob_key, a.size FROM form_attachment a JOIN form_submission s ON s.id = a.submission_id
		WHERE s.collector_id = $1`, collectorID).Scan(&key, &size); err != nil {
		t.Fatal(err)
	}
	if size != int64(len(photo)) || !strings.HasSuffix(key, "/1700463587123.jpg") {
		t.Errorf("attachment %s %d", key, size)
	}
	if n := b.count(t, `SELECT count(*) FROM response WHERE collector_id = $1`, collectorID); n != 1 {
		t.Errorf("%d responses for the collector", n)
	}

	if resp, out := b.submit(t, token, doc, map[string][]byte{"1700463587123.jpg": photo}); resp.StatusCode != 201 || out.Message != "Form already received" {
		t.Errorf("resend: %d %+v", resp.StatusCode, out)
	}
	if resp, out := b.submit(t, token, strings.Replace(doc, "<rooms>3</rooms>", "<rooms>6</rooms>", 1), nil); resp.StatusCode != 409 || !strings.Contains(out.Message, "different content") {
		t.Errorf("conflict: %d %+v", resp.StatusCode, out)
	}
	// A form not registered yet: 404, but the XML and its photo are kept
	// for when the form is registered.
	if resp, _ := b.submit(t, token, strings.NewReplacer(`id="household_survey"`, `id="nope"`, "uuid:6f1c2d8e", "uuid:00000000").Replace(doc),
		map[string][]byte{"1700463587123.jpg": photo}); resp.StatusCode != 404 {
		t.Errorf("unknown form: %d", resp.StatusCode)
	}
	if n := b.count(t, `SELECT count(*) FROM form_attachment a JOIN form_submission s ON s.id = a.submission_id
		WHERE s.form_id = 'nope' AND s.status = 'rejected' AND a.size = $1`, len(photo)); n != 1 {
		t.Errorf("the photo of the unknown form's submission was not kept (%d)", n)
	}
	if resp, _ := b.submit(t, "not-a-real-token-at-all-0123456789", doc, nil); resp.StatusCode != 401 {
		t.Errorf("unknown token: %d", resp.StatusCode)
	}
	if resp, _ := b.submit(t, token, doc, map[string][]byte{"big.jpg": bytes.Repeat([]byte("x"), 300<<10)}); resp.StatusCode != 413 {
		t.Errorf("over the cap: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, b.url+"/openrosa/key/"+token+"/submission", strings.NewReader(doc))
	req.Header.Set("Content-Type", "text/xml")
	resp, err = b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, 400; got != want {
		t.Errorf("not multipart: status %d, want %d", got, want)
	}
	if status, out := b.action(t, "revokeCollector", "admin", map[string]any{"id": collectorID}); status != 200 || out["revokedAt"] == nil {
		t.Fatalf("revoke: %d %v", status, out)
	}
	if resp, _ := b.submit(t, token, doc, nil); resp.StatusCode != 403 {
		t.Errorf("revoked token: %d", resp.StatusCode)
	}
}

func TestFormSubmissionInsertedThroughHasura(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.registerHousehold(t)
	var id uuid.UUID
	if err := b.pool.QueryRow(context.Background(), `INSERT INTO form_submission (xml, source, submitted_by) VALUES ($1, 'hasura', 'teacher-1') RETURNING id`,
		xformFile(t, "household_submission.xml")).Scan(&id); err != nil {
		t.Fatal(err)
	}
	event := fmt.Sprintf(`{"created_at":"2026-11-22T10:15:30.123456","delivery_info":{"current_retry":0,"max_retries":10},
		"event":{"data":{"new":{"id":"%s","status":"received","source":"hasura","xml":"…","submitted_by":"teacher-1"},"old":null},"op":"INSERT",
		"session_variables":{"x-hasura-role":"school","x-hasura-user-id":"teacher-1"},"trace_context":null},
		"id":"%s","table":{"name":"form_submission","schema":"public"},"trigger":{"name":"form_submission_created"}}`, id, uuid.New())
	for range 2 {
		if resp := b.post(t, "/events/form_submission_created", []byte(event), nil); resp.StatusCode != 200 {
			t.Fatalf("event: %d", resp.StatusCode)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'forms.process'`); n != 1 {
		t.Errorf("%d process jobs for one submission delivered twice, want 1", n)
	}
	b.startWorkers(t)
	b.waitFor(t, "the submission to be processed", func() bool {
		return b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'accepted'`, id) == 1
	})
	if n := b.count(t, `SELECT count(*) FROM response WHERE submission_id = $1`, id); n != 1 {
		t.Errorf("%d responses", n)
	}
}

func TestOpenRosaFormListAndDownload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.registerHousehold(t)
	_, token := b.createCollector(t)
	resp, err := b.client.Get(b.url + "/openrosa/key/" + token + "/formList")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list struct {
		Forms []struct {
			FormID      string `xml:"formID"`
			Version     string `xml:"version"`
			Hash        string `xml:"hash"`
			DownloadURL string `xml:"downloadUrl"`
		} `xml:"xform"`
	}
	if err := xml.Unmarshal(raw, &list); err != nil || resp.StatusCode != 200 || resp.Header.Get("X-OpenRosa-Version") != "1.0" {
		t.Fatalf("formList: %d %v %s", resp.StatusCode, err, raw)
	}
	def := xformFile(t, "household_survey.xml")
	if len(list.Forms) != 1 || list.Forms[0].FormID != "household_survey" || list.Forms[0].Hash != fmt.Sprintf("md5:%x", md5.Sum([]byte(def))) {
		t.Fatalf("formList %+v", list.Forms)
	}
	want := "https://shala.example/openrosa/key/" + token + "/forms/household_survey/2026111501.xml"
	if list.Forms[0].DownloadURL != want {
		t.Errorf("downloadUrl %s, want %s", list.Forms[0].DownloadURL, want)
	}
	resp, err = b.client.Get(b.url + strings.TrimPrefix(want, "https://shala.example"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != def {
		t.Errorf("download: %d, %d bytes, want the definition byte for byte", resp.StatusCode, len(got))
	}
	resp, _ = b.client.Get(b.url + "/openrosa/key/" + token + "/forms/household_survey/1.xml")
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("unknown version: %d", resp.StatusCode)
	}
	resp, _ = b.client.Get(b.url + "/openrosa/key/wrong-token-0000000000000000000/formList")
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("formList with a wrong token: %d", resp.StatusCode)
	}

	// The assessment builder is listed for a builder collector (an admin in
	// Enketo), not for field collectors.
	if status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": xformFile(t, "assessment_builder.xml"), "purpose": "ASSESSMENT_BUILDER"}); status != 200 {
		t.Fatalf("register builder: %d %v", status, out)
	}
	status, out := b.action(t, "createCollector", "admin", map[string]any{"name": "प्रशासक", "phone": "9816066666", "buildsAssessments": true})
	if status != 200 {
		t.Fatalf("builder collector: %d %v", status, out)
	}
	if got := b.formIDs(t, out["token"].(string)); len(got) != 2 {
		t.Errorf("builder collector's forms %v, want the survey and the builder", got)
	}
	if got := b.formIDs(t, token); len(got) != 1 || got[0] != "household_survey" {
		t.Errorf("field collector's forms %v, want only the survey", got)
	}
}

func TestFinalisingAClassSendsTheResultSMS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	if _, err := b.pool.Exec(ctx, `INSERT INTO academic_year (id, starts_on, ends_on) VALUES ('2026-27', '2026-04-01', '2027-03-31')`); err != nil {
		t.Fatal(err)
	}
	if status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": xformFile(t, "assessment_builder.xml"), "purpose": "ASSESSMENT_BUILDER"}); status != 200 {
		t.Fatalf("register builder: %d %v", status, out)
	}
	status, out := b.action(t, "submitForm", "admin", map[string]any{"xml": xformFile(t, "assessment_submission.xml")})
	if status != 200 {
		t.Fatalf("builder: %d %v", status, out)
	}
	assessment := out["assessmentId"].(string)
	var school uuid.UUID
	if err := b.pool.QueryRow(ctx, `INSERT INTO school (udise, name, district, block, session) VALUES ('02110100101', 'GSSS Kufri', 'Shimla', 'Mashobra', 'W') RETURNING id`).Scan(&school); err != nil {
		t.Fatal(err)
	}
	event := func(op, oldFinal, newFinal string) []byte {
		old := "null"
		if oldFinal != "" {
			old = fmt.Sprintf(`{"assessment_id":"%s","school_id":"%s","grade":6,"section":"A","final":%s,"finalized_by":null}`, assessment, school, oldFinal)
		}
		return []byte(fmt.Sprintf(`{"created_at":"2026-11-22T10:15:30.123456","delivery_info":{"current_retry":0,"max_retries":10},
			"event":{"data":{"old":%s,"new":{"assessment_id":"%s","school_id":"%s","grade":6,"section":"A","final":%s,"finalized_at":"2026-11-22T10:15:30+00:00","finalized_by":"teacher-9"}},
			"op":"%s","session_variables":{"x-hasura-role":"school","x-hasura-school-id":"%s","x-hasura-user-id":"teacher-9"},"trace_context":null},
			"id":"%s","table":{"name":"assessment_class","schema":"public"},"trigger":{"name":"assessment_class_finalized"}}`,
			old, assessment, school, newFinal, op, school, uuid.New()))
	}
	// The rows the events describe: the class opened, then finalised.
	if _, err := b.pool.Exec(ctx, `UPDATE assessment_deadline SET due_at = now() + interval '1 day'`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.pool.Exec(ctx, `INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, 'A', false)`,
		assessment, school); err != nil {
		t.Fatal(err)
	}
	if resp := b.post(t, "/events/assessment_class_finalized", event("INSERT", "", "false"), nil); resp.StatusCode != 200 {
		t.Fatalf("not final: %d", resp.StatusCode)
	}
	if _, err := b.pool.Exec(ctx, `UPDATE assessment_class SET final = true, finalized_by = 'teacher-9' WHERE assessment_id = $1`, assessment); err != nil {
		t.Fatal(err)
	}
	if n := b.count(t, `SELECT count(*) FROM sms_request`); n != 0 {
		t.Fatalf("a class that is not final sent %d requests", n)
	}
	finalised := event("UPDATE", "false", "true")
	for range 2 {
		if resp := b.post(t, "/events/assessment_class_finalized", finalised, nil); resp.StatusCode != 200 {
			t.Fatalf("final: %d", resp.StatusCode)
		}
	}
	var typ, source string
	var grades []int32
	var sections []string
	var vars map[string]string
	if err := b.pool.QueryRow(ctx, `SELECT type, grades, sections, variables, source FROM sms_request WHERE school_id = $1`, school).
		Scan(&typ, &grades, &sections, &vars, &source); err != nil {
		t.Fatalf("no result SMS request (or more than one): %v", err)
	}
	if typ != "EXAM_RESULT_ANNOUNCEMENT" || len(grades) != 1 || grades[0] != 6 || sections[0] != "A" || source != "assessment" ||
		vars["assessment"] != "SA-1 गणित और हिंदी 2026" || vars["results_date"] == "" {
		t.Errorf("request %s %v %v %v %s", typ, grades, sections, vars, source)
	}

	// An operator's "Invoke" of the trigger on the final row in Hasura's
	// console (op MANUAL, no old row, a new event id) does not broadcast
	// the results a second time.
	if resp := b.post(t, "/events/assessment_class_finalized", event("MANUAL", "", "true"), nil); resp.StatusCode != 200 {
		t.Fatalf("manual invoke: %d", resp.StatusCode)
	}
	if n := b.count(t, `SELECT count(*) FROM sms_request WHERE school_id = $1`, school); n != 1 {
		t.Errorf("%d result requests after a manual re-invoke of a final class, want 1", n)
	}
}

// The forms sweep takes the submissions it swept least recently first: a
// thousand rows whose processing is still queued (or failing and retried)
// never hold back one that has no job at all.
func TestFormSweepIsNotHeldBackByRowsAlreadyQueued(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.registerHousehold(t)
	ctx := context.Background()
	doc := xformFile(t, "household_submission.xml")
	// A sweep's worth of unprocessed rows, older than any other.
	if _, err := b.pool.Exec(ctx, `INSERT INTO form_submission (xml, source, received_at)
		SELECT $1, 'hasura', now() - interval '2 hours' - make_interval(secs => g) FROM generate_series(1, 1000) g`, doc); err != nil {
		t.Fatal(err)
	}
	if n, err := forms.Reconcile(ctx, b.pool, b.queue, forms.ReconcileAfter); err != nil || n != 1000 {
		t.Fatalf("first sweep: %d jobs, %v; want 1000", n, err)
	}
	// Their jobs are still queued (no worker runs here) when one more row
	// is left unprocessed.
	var late uuid.UUID
	if err := b.pool.QueryRow(ctx, `INSERT INTO form_submission (xml, source, received_at) VALUES ($1, 'hasura', now() - interval '1 hour') RETURNING id`,
		strings.Replace(doc, "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b", "uuid:late-0001", 1)).Scan(&late); err != nil {
		t.Fatal(err)
	}
	if n, err := forms.Reconcile(ctx, b.pool, b.queue, forms.ReconcileAfter); err != nil || n != 1 {
		t.Fatalf("second sweep: %d jobs, %v; want the late row's", n, err)
	}
	if n := b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'forms.process' AND args ->> 'submission_id' = $1`, late.String()); n != 1 {
		t.Errorf("%d jobs for the late row, want 1", n)
	}
	// Next the rows swept longest ago, again.
	if n, err := forms.Reconcile(ctx, b.pool, b.queue, forms.ReconcileAfter); err != nil || n != 0 {
		t.Errorf("third sweep: %d jobs, %v; want none (all queued)", n, err)
	}
	if n := b.count(t, `SELECT count(*) FROM form_submission WHERE swept_at IS NULL`); n != 0 {
		t.Errorf("%d rows never swept", n)
	}
}
