package server_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dromara/dongle/coding/base45"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	gcblob "gocloud.dev/blob"

	"github.com/shala-edu/shala/internal/aadhaar"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/certificate/certtest"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/pdf"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/promtest"
)

type certBundle struct {
	*bundle
	schoolA, schoolB uuid.UUID
	bucket           *gcblob.Bucket
}

func certSetup(t *testing.T) *certBundle {
	t.Helper()
	return certSetupWith(t, nil, app.Options{})
}

// certSetupWith is certSetup with configure applied to the configuration
// (when not nil) and opts (its Pool is set here).
func certSetupWith(t *testing.T, configure func(*config.Config), opts app.Options) *certBundle {
	t.Helper()
	pool := pgtest.New(t)
	ctx := context.Background()
	cfg := apptest.Config(t)
	cfg.WebhookSecret = secret
	cfg.PublicRate, cfg.PublicBurst = 1000, 1000
	if configure != nil {
		configure(cfg)
	}
	opts.Pool = pool
	a := apptest.New(t, cfg, opts)
	now := func() time.Time { return time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC) }
	a.Students.Now, a.Certificates.Now = now, now
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	bucket := a.Bucket
	b := &certBundle{bundle: &bundle{app: a, pool: pool, queue: a.Queue, url: srv.URL, reg: a.Registry, client: srv.Client()},
		schoolA: uuid.New(), schoolB: uuid.New(), bucket: bucket}
	if _, err := pool.Exec(ctx, `INSERT INTO academic_year (id, starts_on, ends_on, is_current) VALUES
			('2025-26', '2025-04-01', '2026-03-31', false), ('2026-27', '2026-04-01', '2027-03-31', true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO school (id, udise, name, district, block, session) VALUES
			($1, '02110512345', 'राजकीय वरिष्ठ माध्यमिक पाठशाला कोटखाई', 'Shimla', 'Kotkhai', 'W'),
			($2, '02110699999', 'GSSS Theog', 'Shimla', 'Theog', 'W')`, b.schoolA, b.schoolB); err != nil {
		t.Fatal(err)
	}
	return b
}

// as calls action name as a school (or an admin when school is Nil).
func (b *certBundle) as(t *testing.T, school uuid.UUID, name string, input map[string]any) (int, map[string]any) {
	t.Helper()
	sess := map[string]any{"x-hasura-role": "state_admin", "x-hasura-user-id": "state-admin"}
	if school != uuid.Nil {
		sess = map[string]any{"x-hasura-role": "school", "x-hasura-user-id": "principal-" + school.String()[:4], "x-hasura-school-id": school.String()}
	}
	body, _ := json.Marshal(map[string]any{"action": map[string]any{"name": name}, "input": input,
		"session_variables": sess, "request_query": "mutation { " + name + " }"})
	resp := b.post(t, "/actions/"+name, body, nil)
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (b *certBundle) get(t *testing.T, path string) (int, http.Header, string) {
	t.Helper()
	resp, err := b.client.Get(b.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

func anushka(aadhaarNo, admission string) map[string]any {
	return map[string]any{"name": "अनुष्का ठाकुर", "fatherName": "राजेश ठाकुर", "motherName": "सुनीता देवी",
		"guardianPhone": "98160 12345", "gender": "FEMALE", "category": "OBC", "dateOfBirth": "2013-03-04",
		"admissionNumber": admission, "admissionDate": "2019-04-01", "grade": 8, "section": "B", "aadhaar": aadhaarNo, "transferSource": "NEW"}
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestRegisterStudent(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	number := aadhaar.Complete("23456789012")

	for _, c := range []struct {
		name, field string
		in          map[string]any
	}{
		{"name required", "student.name", with(anushka(number, "A/1"), "name", " ")},
		{"a parent's name", "student.fatherName", with(with(anushka(number, "A/1"), "fatherName", nil), "motherName", nil)},
		{"name too long for a certificate", "student.name", with(anushka(number, "A/1"), "name", strings.Repeat("अ", 41))},
		{"another script", "student.name", with(anushka(number, "A/1"), "name", "Анна")},
		{"dob not plausible for the class", "student.dateOfBirth", with(anushka(number, "A/1"), "dateOfBirth", "2021-01-01")},
		{"phone", "student.guardianPhone", with(anushka(number, "A/1"), "guardianPhone", "0177-2650000")},
		{"aadhaar check digit", "student.aadhaar", with(anushka(number, "A/1"), "aadhaar", number[:11]+string('0'+(number[11]-'0'+1)%10))},
		{"in-state needs the certificate", "student.transferSource", with(anushka(number, "A/1"), "transferSource", "IN_STATE")},
		{"other state needs documents", "student.documents", with(anushka(number, "A/1"), "transferSource", "OTHER_STATE")},
	} {
		status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": c.in})
		if status != 400 || !strings.HasPrefix(fmt.Sprint(out["message"]), c.field+":") {
			t.Errorf("%s: got %d %v, want 400 naming %s", c.name, status, out, c.field)
		}
	}

	status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": anushka(number, "A/1")})
	if status != 200 || out["aadhaarLast4"] != number[8:] || out["status"] != "ACTIVE" {
		t.Fatalf("register: got %d %v", status, out)
	}
	var stored int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM student WHERE aadhaar_legacy IS NULL AND aadhaar_hash IS NOT NULL
		AND position($1::bytea in aadhaar_ciphertext) = 0`, []byte(number)).Scan(&stored); err != nil || stored != 1 {
		t.Errorf("Aadhaar at rest: %d rows hashed and encrypted (err %v), want 1", stored, err)
	}

	t.Run("the whole number for the admin role only", func(t *testing.T) {
		if status, out := b.as(t, b.schoolA, "studentAadhaar", map[string]any{"studentId": out["id"]}); status != 403 {
			t.Errorf("school: got %d %v, want 403", status, out)
		}
		body, _ := json.Marshal(map[string]any{"action": map[string]any{"name": "studentAadhaar"}, "input": map[string]any{"studentId": out["id"]},
			"session_variables": map[string]any{"x-hasura-role": "admin"}, "request_query": "query"})
		var got map[string]any
		resp := b.post(t, "/actions/studentAadhaar", body, nil)
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || got["aadhaar"] != number {
			t.Errorf("admin: got %d %v, want the number", resp.StatusCode, got)
		}
	})
	t.Run("admission number unique in the school, said so", func(t *testing.T) {
		status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": with(anushka(aadhaar.Complete("34567890123"), "A/1"), "name", "प्रिया शर्मा")})
		if status != 409 || code(out) != "ADMISSION_NUMBER_TAKEN" || !strings.Contains(fmt.Sprint(out["message"]), "A/1") {
			t.Errorf("got %d %v", status, out)
		}
	})
	t.Run("one active enrolment per Aadhaar, the other school not named", func(t *testing.T) {
		status, out := b.as(t, b.schoolB, "registerStudent", map[string]any{"student": anushka(number, "B/7")})
		msg := fmt.Sprint(out["message"])
		if status != 409 || code(out) != "AADHAAR_ENROLLED" || strings.Contains(msg, "कोटखाई") || strings.Contains(msg, "02110512345") || strings.Contains(msg, "A/1") {
			t.Errorf("got %d %v", status, out)
		}
	})
	t.Run("trail", func(t *testing.T) {
		if n := b.count(t, `SELECT count(*) FROM student_event WHERE kind = 'ADMITTED' AND school_id = $1`, b.schoolA); n != 1 {
			t.Errorf("got %d ADMITTED events, want 1", n)
		}
	})
}

func TestPromoteStudents(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	var ids []string
	for i, n := range []string{"आरव", "विवेक", "राहुल"} {
		in := map[string]any{"name": n + " वर्मा", "fatherName": "संजय वर्मा", "gender": "MALE", "dateOfBirth": "2014-05-0" + fmt.Sprint(i+1),
			"grade": 6, "section": "A", "academicYear": "2025-26", "transferSource": "NEW"}
		status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": in})
		if status != 200 {
			t.Fatalf("register: %d %v", status, out)
		}
		ids = append(ids, out["id"].(string))
	}
	args := map[string]any{"fromGrade": 6, "section": "A", "academicYear": "2025-26", "toAcademicYear": "2026-27",
		"exceptions": []any{map[string]any{"studentId": ids[1], "outcome": "RETAIN"}, map[string]any{"studentId": ids[2], "outcome": "DROPPED_OUT"}}}
	status, out := b.as(t, b.schoolA, "promoteStudents", args)
	if status != 200 || out["promoted"] != 1.0 || out["retained"] != 1.0 || out["droppedOut"] != 1.0 {
		t.Fatalf("promote: %d %v", status, out)
	}
	if n := b.count(t, `SELECT count(*) FROM student WHERE id = $1 AND grade = 7 AND academic_year = '2026-27'`, ids[0]); n != 1 {
		t.Error("promoted student not in class 7 of 2026-27")
	}
	if n := b.count(t, `SELECT count(*) FROM student_event WHERE kind IN ('PROMOTED', 'RETAINED', 'DROPPED_OUT')`); n != 3 {
		t.Errorf("got %d trail rows, want 3", n)
	}
	if status, out := b.as(t, b.schoolA, "promoteStudents", args); status != 404 {
		t.Errorf("promoting the same class twice: %d %v, want 404", status, out)
	}
	if status, out := b.as(t, b.schoolB, "promoteStudents", with(args, "exceptions", []any{})); status != 404 {
		t.Errorf("another school's class: %d %v, want 404", status, out)
	}
}

func tamper(t *testing.T, payload string) string {
	t.Helper()
	z, err := base45.NewStdDecoder().Decode([]byte(strings.TrimPrefix(payload, certificate.Prefix)))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-70] ^= 0x01 // a claim byte just before the signature
	var out bytes.Buffer
	zw := zlib.NewWriter(&out)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return certificate.Prefix + string(base45.NewStdEncoder().Encode(out.Bytes()))
}

func TestLeavingCertificate(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	number := aadhaar.Complete("45678901234")
	status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": anushka(number, "A/1")})
	if status != 200 {
		t.Fatalf("register: %d %v", status, out)
	}
	studentID := out["id"].(string)

	if status, out := b.as(t, b.schoolB, "issueLeavingCertificate", map[string]any{"studentId": studentID, "reason": "TRANSFER_IN_STATE", "leavingDate": "2026-11-30"}); status != 404 {
		t.Errorf("another school issuing: %d %v, want 404", status, out)
	}
	status, out = b.as(t, b.schoolA, "issueLeavingCertificate", map[string]any{"studentId": studentID, "reason": "TRANSFER_IN_STATE",
		"description": "पिता का स्थानांतरण", "leavingDate": "2026-11-30"})
	if status != 200 {
		t.Fatalf("issue: %d %v", status, out)
	}
	qr, certID := out["qr"].(string), out["certificateId"].(string)
	if !strings.HasPrefix(qr, certificate.Prefix) || out["verifyUrl"] != "https://shala.example/verify/"+certID ||
		out["pdfUrl"] != "https://shala.example/certificates/"+certID+"/pdf" {
		t.Errorf("issue answer: %v", out)
	}
	if n := b.count(t, `SELECT count(*) FROM student WHERE id = $1 AND status = 'LEFT' AND left_reason = 'TRANSFER_IN_STATE'`, studentID); n != 1 {
		t.Error("student not LEFT with the reason")
	}
	if n := b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'certificate.render'`); n != 1 {
		t.Errorf("got %d render jobs, want 1", n)
	}
	if status, out := b.as(t, b.schoolA, "issueLeavingCertificate", map[string]any{"studentId": studentID, "reason": "OTHER", "leavingDate": "2026-11-30"}); status != 409 {
		t.Errorf("second certificate for a student who left: %d %v, want 409", status, out)
	}
	// One product event for the issue (none for the refused one or the
	// other school's attempt), with internal ids only: no name, no Aadhaar.
	if n := b.count(t, `SELECT count(*) FROM product_event WHERE event = 'certificate_issued' AND distinct_id = $1
		AND properties = jsonb_build_object('certificate_id', $2::text, 'reason', 'TRANSFER_IN_STATE', 'transfer', true)`,
		b.schoolA.String(), certID); n != 1 || b.count(t, `SELECT count(*) FROM product_event WHERE event = 'certificate_issued'`) != 1 {
		t.Errorf("got %d certificate_issued events for the school with the certificate's id and reason, want 1 (and no other)", n)
	}
	if n := b.count(t, `SELECT count(*) FROM product_event WHERE properties::text LIKE '%अनुष्का%' OR properties::text LIKE '%' || $1 || '%'`, number); n != 0 {
		t.Errorf("%d product events carry the student's name or Aadhaar number", n)
	}
	if status, out := b.as(t, b.schoolB, "admitTransferredStudent", map[string]any{"qr": qr, "grade": 9, "admissionNumber": "B#1"}); status != 400 ||
		!strings.HasPrefix(fmt.Sprint(out["message"]), "admissionNumber:") {
		t.Errorf("an admission number the register cannot hold: %d %v, want 400 naming admissionNumber", status, out)
	}
	if status, out := b.as(t, b.schoolB, "admitTransferredStudent", map[string]any{"qr": qr, "grade": 2}); status != 400 ||
		!strings.HasPrefix(fmt.Sprint(out["message"]), "grade:") {
		t.Errorf("a 13-year-old into class 2: %d %v, want 400 naming grade (registerStudent's rule)", status, out)
	}

	t.Run("pdf is being prepared", func(t *testing.T) {
		status, hdr, _ := b.get(t, "/certificates/"+certID+"/pdf")
		if status != 202 || hdr.Get("Retry-After") == "" {
			t.Errorf("got %d Retry-After %q, want 202 with Retry-After", status, hdr.Get("Retry-After"))
		}
	})

	t.Run("verify", func(t *testing.T) {
		status, out := b.as(t, b.schoolB, "verifyCertificate", map[string]any{"qr": qr})
		cert, _ := out["certificate"].(map[string]any)
		if status != 200 || out["valid"] != true || cert["name"] != "अनुष्का ठाकुर" || cert["issuerName"] != "राजकीय वरिष्ठ माध्यमिक पाठशाला कोटखाई" {
			t.Errorf("got %d %v", status, out)
		}
		status, out = b.as(t, b.schoolB, "verifyCertificate", map[string]any{"qr": tamper(t, qr)})
		if status != 200 || out["valid"] != false || out["reason"] != "BAD_SIGNATURE" || out["certificate"] != nil {
			t.Errorf("tampered: got %d %v, want BAD_SIGNATURE and no data", status, out)
		}
		status, out = b.as(t, b.schoolB, "verifyCertificate", map[string]any{"qr": "HC1:NOT-OURS"})
		if status != 200 || out["reason"] != "BAD_FORMAT" {
			t.Errorf("garbage: got %d %v", status, out)
		}
	})

	t.Run("pages and keys", func(t *testing.T) {
		status, _, page := b.get(t, "/verify/"+certID)
		if status != 200 || !strings.Contains(page, "अनुष्का ठाकुर") || !strings.Contains(page, "Valid certificate") {
			t.Errorf("verify page: %d", status)
		}
		// A valid certificate's page shows what the certificate shows (a
		// revoked one's shows none of it: see "revoked").
		for _, want := range personal {
			if !strings.Contains(page, want) {
				t.Errorf("the valid certificate's page does not show %q", want)
			}
		}
		status, _, page = b.get(t, "/verify/"+uuid.NewString())
		if status != 404 || strings.Contains(page, "अनुष्का") {
			t.Errorf("unknown certificate: %d", status)
		}
		status, _, page = b.get(t, "/verify?c="+strings.NewReplacer("%", "%25", " ", "%20", "+", "%2B", "$", "%24", "/", "%2F", ":", "%3A").Replace(tamper(t, qr)))
		if status != 200 || strings.Contains(page, "अनुष्का") || !strings.Contains(page, "Not a valid certificate") {
			t.Errorf("tampered payload page: %d shows data or no verdict", status)
		}
		status, hdr, body := b.get(t, "/.well-known/shala-keys.json")
		var ks certificate.KeySet
		if err := json.Unmarshal([]byte(body), &ks); status != 200 || err != nil || len(ks.Keys) != 1 || ks.Keys[0].Use != "dev" ||
			!strings.HasPrefix(hdr.Get("Content-Type"), "application/jwk-set+json") {
			t.Errorf("keys: %d %s", status, body)
		}
	})

	t.Run("50 concurrent admissions with one certificate: exactly one succeeds", func(t *testing.T) {
		const n = 50
		var wg sync.WaitGroup
		statuses := make([]int, n)
		codes := make([]any, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, out := b.as(t, b.schoolB, "admitTransferredStudent", map[string]any{"qr": qr, "grade": 9, "section": "A",
					"admissionNumber": fmt.Sprintf("B/%d", i)})
				statuses[i], codes[i] = s, code(out)
			}()
		}
		wg.Wait()
		ok := 0
		for i := range n {
			switch {
			case statuses[i] == 200:
				ok++
			case statuses[i] != 409 || codes[i] != "ALREADY_USED":
				t.Errorf("admission %d: got %d %v, want 409 ALREADY_USED", i, statuses[i], codes[i])
			}
		}
		if ok != 1 {
			t.Fatalf("got %d successful admissions, want exactly 1", ok)
		}
		if n := b.count(t, `SELECT count(*) FROM student WHERE school_id = $1 AND transfer_source = 'IN_STATE' AND status = 'ACTIVE'
			AND aadhaar_last4 = $2 AND name = 'अनुष्का ठाकुर' AND grade = 9`, b.schoolB, number[8:]); n != 1 {
			t.Errorf("got %d admitted students carrying the name and Aadhaar, want 1", n)
		}
		status, out := b.as(t, b.schoolB, "verifyCertificate", map[string]any{"qr": qr})
		if status != 200 || out["valid"] != false || out["reason"] != "ALREADY_USED" {
			t.Errorf("verify after admission: %d %v", status, out)
		}
		if n := b.count(t, `SELECT count(*) FROM student_event WHERE kind IN ('TRANSFERRED_OUT', 'TRANSFERRED_IN') AND certificate_id = $1`, certID); n != 2 {
			t.Errorf("got %d transfer trail rows, want 2", n)
		}
	})

	t.Run("revoked", func(t *testing.T) {
		other := aadhaar.Complete("56789012345")
		status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": with(anushka(other, "A/2"), "name", "प्रिया शर्मा")})
		if status != 200 {
			t.Fatalf("register: %d %v", status, out)
		}
		status, out = b.as(t, b.schoolA, "issueLeavingCertificate", map[string]any{"studentId": out["id"], "reason": "FAMILY_MIGRATION", "leavingDate": "2026-11-29"})
		if status != 200 {
			t.Fatalf("issue: %d %v", status, out)
		}
		id, qr2 := out["certificateId"], out["qr"].(string)
		if status, out := b.as(t, b.schoolB, "revokeCertificate", map[string]any{"id": id, "reason": "issued in error"}); status != 404 {
			t.Errorf("revoked by another school: %d %v, want 404", status, out)
		}
		if status, out := b.as(t, b.schoolA, "revokeCertificate", map[string]any{"id": id, "reason": "issued in error"}); status != 200 || out["revokedAt"] == nil {
			t.Fatalf("revoke: %d %v", status, out)
		}
		if status, out := b.as(t, b.schoolA, "revokeCertificate", map[string]any{"id": id, "reason": "again"}); status != 409 {
			t.Errorf("second revoke: %d %v, want 409", status, out)
		}
		if n := b.count(t, `SELECT count(*) FROM product_event WHERE event = 'certificate_revoked' AND distinct_id = $1
			AND properties ->> 'certificate_id' = $2`, b.schoolA.String(), id); n != 1 {
			t.Errorf("got %d certificate_revoked events, want 1 (not for the refused attempts)", n)
		}
		if status, out := b.as(t, b.schoolB, "verifyCertificate", map[string]any{"qr": qr2}); status != 200 || out["reason"] != "REVOKED" {
			t.Errorf("verify revoked: %d %v", status, out)
		}
		if status, out := b.as(t, b.schoolB, "admitTransferredStudent", map[string]any{"qr": qr2, "grade": 8}); status != 422 || code(out) != "REVOKED" {
			t.Errorf("admit with a revoked certificate: %d %v", status, out)
		}
		if status, _, page := b.get(t, fmt.Sprintf("/verify/%s", id)); status != 200 || !strings.Contains(page, "Revoked") {
			t.Errorf("revoked page: %d", status)
		}
		// The pages of a revoked certificate, by id and by the scanned
		// payload, say it is revoked, when, and by which school — and show
		// none of the child's personal data.
		for _, path := range []string{fmt.Sprintf("/verify/%s", id), "/verify?c=" + url.QueryEscape(qr2)} {
			status, hdr, page := b.get(t, path)
			if status != 200 || !strings.Contains(page, "Revoked") || !strings.Contains(page, "निरस्त") ||
				!strings.Contains(page, "Revoked on / निरस्त करने की तिथि") || !strings.Contains(page, "30-11-2026") ||
				!strings.Contains(page, "राजकीय वरिष्ठ माध्यमिक पाठशाला कोटखाई") || hdr.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: got %d Cache-Control %q, want 200 no-store saying revoked, when and by which school:\n%s", path, status, hdr.Get("Cache-Control"), page)
			}
			for _, field := range append([]string{"प्रिया शर्मा"}, personal...) {
				if strings.Contains(page, field) {
					t.Errorf("%s: the revoked certificate's page shows %q", path, field)
				}
			}
		}
	})
}

// personal is what the certificates of anushka's records show about the
// child besides the name: parents' names and date of birth.
var personal = []string{"राजेश ठाकुर", "सुनीता देवी", "04-03-2013"}

// TestCertificateRoundTrip: issue → the PDF job renders it → GET pdfUrl →
// the QR read back from the printed page (pdftoppm + a QR decoder) →
// verified with crypto/ed25519 and the published key set alone.
func TestCertificateRoundTrip(t *testing.T) {
	t.Parallel()
	certtest.NeedTools(t, "chromium", "pdftoppm", "pdftotext")
	b := certSetup(t)
	ctx := context.Background()
	status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": anushka(aadhaar.Complete("67890123456"), "A/9")})
	if status != 200 {
		t.Fatalf("register: %d %v", status, out)
	}
	status, out = b.as(t, uuid.Nil, "issueLeavingCertificate", map[string]any{"studentId": out["id"], "reason": "COMPLETED_SCHOOLING", "leavingDate": "2026-11-30"})
	if status != 200 {
		t.Fatalf("issue as admin: %d %v", status, out)
	}
	id, qr := uuid.MustParse(out["certificateId"].(string)), out["qr"].(string)

	renderer, err := pdf.New(ctx, pdf.Options{Tabs: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(renderer.Close)
	w := &certificate.RenderWorker{Pool: b.pool, Bucket: b.bucket, Renderer: renderer, PublicURL: "https://shala.example"}
	if err := w.Work(ctx, &river.Job[certificate.RenderArgs]{JobRow: &rivertype.JobRow{}, Args: certificate.RenderArgs{CertificateID: id}}); err != nil {
		t.Fatal(err)
	}
	status, hdr, body := b.get(t, "/certificates/"+id.String()+"/pdf")
	if status != 200 || hdr.Get("Content-Type") != "application/pdf" {
		t.Fatalf("pdf: got %d %s", status, hdr.Get("Content-Type"))
	}
	// No copy may outlive a revocation: the PDF is never stored by the
	// browser or a proxy (it was cached for 5 minutes).
	if got := hdr.Get("Cache-Control"); got != "no-store" {
		t.Errorf("pdf Cache-Control: got %q, want no-store", got)
	}
	scanned := certtest.ScanPDF(t, []byte(body))
	if scanned != qr {
		t.Fatalf("the QR on the PDF reads %q, want the issued payload", scanned)
	}
	_, _, keys := b.get(t, "/.well-known/shala-keys.json")
	if !certtest.VerifyWithStdlib(t, scanned, []byte(keys)) {
		t.Error("the scanned payload does not verify with crypto/ed25519 and the published key")
	}
	if text := strings.Join(strings.Fields(certtest.PDFText(t, []byte(body))), ""); !strings.Contains(text, "अनुष्काठाकुर") {
		t.Errorf("pdftotext does not find the student's name in:\n%s", text)
	}
}

func TestOtherStateAdmissionWithUploadedDocuments(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	cfg := apptest.Config(t)
	cfg.WebhookSecret = secret
	cfg.JWTSecret = `{"type":"HS256","key":"test-jwt-signing-key-at-least-32-characters"}`
	a := apptest.New(t, cfg, app.Options{Pool: pool})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	b := &certBundle{bundle: &bundle{app: a, pool: pool, queue: a.Queue, url: srv.URL, reg: a.Registry, client: srv.Client()},
		schoolA: uuid.New(), schoolB: uuid.New(), bucket: a.Bucket}
	if _, err := pool.Exec(context.Background(), `INSERT INTO school (id, udise, name, district, block, session) VALUES
		($1, '02110512345', 'GSSS Kotkhai', 'Shimla', 'Kotkhai', 'W')`, b.schoolA); err != nil {
		t.Fatal(err)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "principal-a", "exp": time.Now().Add(time.Hour).Unix(),
		"https://hasura.io/jwt/claims": map[string]any{"x-hasura-allowed-roles": []string{"school"}, "x-hasura-default-role": "school",
			"x-hasura-user-id": "principal-a", "x-hasura-school-id": b.schoolA.String()},
	}).SignedString([]byte("test-jwt-signing-key-at-least-32-characters"))
	if err != nil {
		t.Fatal(err)
	}
	upload := func(body []byte, bearer string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, b.url+"/students/documents", bytes.NewReader(body))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	pdfDoc := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	if status, _ := upload(pdfDoc, ""); status != 401 {
		t.Errorf("no token: got %d, want 401", status)
	}
	if status, out := upload([]byte("<html><script>alert(1)</script></html>"), token); status != 415 {
		t.Errorf("HTML: got %d %v, want 415", status, out)
	}
	big := append(append([]byte{}, pdfDoc...), bytes.Repeat([]byte("0"), 3<<20)...)
	if status, out := upload(big, token); status != 413 {
		t.Errorf("over 3 MiB: got %d %v, want 413", status, out)
	}
	status, out := upload(pdfDoc, token)
	if status != 201 || out["contentType"] != "application/pdf" {
		t.Fatalf("upload: got %d %v", status, out)
	}
	// The stored document and the aborted 3 MiB write are on the app's
	// /metrics registry (process totals: other tests write too).
	for status, want := range map[string]float64{"OK": 1, "Canceled": 1} {
		labels := map[string]string{"provider": "fileblob", "method": "NewWriter", "status": status}
		if got := promtest.Value(t, b.reg, "shala_blob_calls_total", labels); got < want {
			t.Errorf("shala_blob_calls_total%v = %v; want ≥ %v", labels, got, want)
		}
	}
	doc := out["id"]
	in := with(with(anushka(aadhaar.Complete("78901234567"), "A/5"), "transferSource", "OTHER_STATE"),
		"documents", []any{map[string]any{"id": doc, "kind": "TRANSFER_CERTIFICATE"}})
	if status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": in}); status != 200 || out["transferSource"] != "OTHER_STATE" {
		t.Fatalf("register from another state: %d %v", status, out)
	}
	if n := b.count(t, `SELECT count(*) FROM student_document WHERE id = $1 AND student_id IS NOT NULL AND kind = 'TRANSFER_CERTIFICATE'`, doc); n != 1 {
		t.Error("document not attached to the student")
	}
	again := with(with(in, "aadhaar", nil), "admissionNumber", "A/6")
	if status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": again}); status != 400 || !strings.HasPrefix(fmt.Sprint(out["message"]), "student.documents[0].id") {
		t.Errorf("a document used twice: %d %v", status, out)
	}
}

// TestCertificateAfterLeaving: a revoked certificate that no school used can
// be replaced, a student who passed out (or dropped out) can have one, and
// nobody gets a second live certificate or one after a school admitted them.
func TestCertificateAfterLeaving(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	register := func(t *testing.T, in map[string]any) string {
		t.Helper()
		status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": in})
		if status != 200 {
			t.Fatalf("register: %d %v", status, out)
		}
		return out["id"].(string)
	}
	issue := func(t *testing.T, id, reason, date string) (int, map[string]any) {
		t.Helper()
		return b.as(t, b.schoolA, "issueLeavingCertificate", map[string]any{"studentId": id, "reason": reason, "leavingDate": date})
	}

	t.Run("a revoked certificate is replaced", func(t *testing.T) {
		id := register(t, anushka(aadhaar.Complete("93579246801"), "A/1"))
		status, out := issue(t, id, "FAMILY_MIGRATION", "2026-11-20")
		if status != 200 {
			t.Fatalf("issue: %d %v", status, out)
		}
		first := out["certificateId"]
		if status, out := b.as(t, b.schoolA, "revokeCertificate", map[string]any{"id": first, "reason": "wrong leaving date"}); status != 200 {
			t.Fatalf("revoke: %d %v", status, out)
		}
		status, out = issue(t, id, "FAMILY_MIGRATION", "2026-11-25")
		if status != 200 || out["certificateId"] == first {
			t.Fatalf("replacement: %d %v, want a new certificate", status, out)
		}
		if status, out := b.as(t, b.schoolB, "verifyCertificate", map[string]any{"qr": out["qr"]}); status != 200 || out["valid"] != true {
			t.Errorf("the replacement verifies: %d %v", status, out)
		}
		if n := b.count(t, `SELECT count(*) FROM student WHERE id = $1 AND status = 'LEFT' AND left_on = '2026-11-25'`, id); n != 1 {
			t.Error("the student does not carry the replacement's leaving date")
		}
		if status, out := issue(t, id, "OTHER", "2026-11-25"); status != 409 || code(out) != "NOT_ACTIVE" {
			t.Errorf("a second live certificate: %d %v, want 409 NOT_ACTIVE", status, out)
		}
	})

	t.Run("not after a school admitted the child with it", func(t *testing.T) {
		id := register(t, with(anushka(aadhaar.Complete("84680135792"), "A/2"), "name", "प्रिया शर्मा"))
		status, out := issue(t, id, "TRANSFER_IN_STATE", "2026-11-20")
		if status != 200 {
			t.Fatalf("issue: %d %v", status, out)
		}
		if status, out := b.as(t, b.schoolB, "admitTransferredStudent", map[string]any{"qr": out["qr"], "grade": 8}); status != 200 {
			t.Fatalf("admit: %d %v", status, out)
		}
		if status, out := b.as(t, b.schoolA, "revokeCertificate", map[string]any{"id": out["certificateId"], "reason": "issued twice"}); status != 200 {
			t.Fatalf("revoke: %d %v", status, out)
		}
		if status, out := issue(t, id, "TRANSFER_IN_STATE", "2026-11-20"); status != 409 || code(out) != "NOT_ACTIVE" {
			t.Errorf("after an admission: %d %v, want 409 NOT_ACTIVE", status, out)
		}
	})

	t.Run("a student who passed out", func(t *testing.T) {
		in := with(with(anushka(aadhaar.Complete("35791357913"), "A/3"), "grade", 12), "dateOfBirth", "2007-06-01")
		id := register(t, with(with(in, "academicYear", "2025-26"), "name", "राहुल वर्मा"))
		status, out := b.as(t, b.schoolA, "promoteStudents", map[string]any{"fromGrade": 12, "academicYear": "2025-26", "toAcademicYear": "2026-27"})
		if status != 200 || out["passedOut"] != 1.0 {
			t.Fatalf("promote class 12: %d %v", status, out)
		}
		if status, out := issue(t, id, "COMPLETED_SCHOOLING", "2026-11-30"); status != 200 {
			t.Fatalf("certificate after passing out: %d %v", status, out)
		}
		if n := b.count(t, `SELECT count(*) FROM student WHERE id = $1 AND status = 'PASSED_OUT'`, id); n != 1 {
			t.Error("the student is no longer PASSED_OUT")
		}
		if status, out := issue(t, id, "COMPLETED_SCHOOLING", "2026-11-30"); status != 409 {
			t.Errorf("a second one: %d %v, want 409", status, out)
		}
	})

	t.Run("not for a child who left without a certificate", func(t *testing.T) {
		id := register(t, with(anushka(aadhaar.Complete("46802468024"), "A/4"), "name", "विवेक वर्मा"))
		if _, err := b.pool.Exec(context.Background(), `UPDATE student SET status = 'LEFT', left_on = '2026-06-01' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if status, out := issue(t, id, "OTHER", "2026-11-30"); status != 409 || code(out) != "NOT_ACTIVE" {
			t.Errorf("got %d %v, want 409 NOT_ACTIVE", status, out)
		}
	})
}

// TestCertificateReconcile: the sweep enqueues the PDF job of every
// certificate without a PDF whose job is missing, however many older ones
// still have theirs waiting in the queue.
func TestCertificateReconcile(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	ctx := context.Background()
	if _, err := b.pool.Exec(ctx, `WITH s AS (
			INSERT INTO student (school_id, name, gender, grade, status, left_on)
			SELECT $1, 'विद्यार्थी', 'MALE', 8, 'LEFT', '2026-11-01' FROM generate_series(1, 501)
			RETURNING id)
		INSERT INTO leaving_certificate (id, student_id, school_id, issuer_udise, issuer_name, student_name, gender, grade,
			leaving_date, reason, issued_at, key_id, payload)
		SELECT gen_random_uuid(), s.id, $1, '02110512345', 'GSSS Kotkhai', 'विद्यार्थी', 'MALE', 8, '2026-11-01', 'OTHER',
			now() - interval '1 hour' - row_number() OVER (ORDER BY s.id) * interval '1 second', 'k', 'SLC1:X'
		FROM s`, b.schoolA); err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{500, 1, 0} {
		n, err := certificate.Reconcile(ctx, b.pool, b.queue, certificate.ReconcileAfter)
		if err != nil || n != want {
			t.Errorf("sweep %d: enqueued %d (%v), want %d", i+1, n, err, want)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'certificate.render'`); n != 501 {
		t.Errorf("got %d render jobs, want one per certificate (501)", n)
	}
}

// issueOne registers a student in school A and issues their certificate;
// it returns the certificate's id and its pdfUrl's path.
func (b *certBundle) issueOne(t *testing.T, aadhaarNo, admission string) (uuid.UUID, string) {
	t.Helper()
	status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": anushka(aadhaar.Complete(aadhaarNo), admission)})
	if status != 200 {
		t.Fatalf("register: %d %v", status, out)
	}
	status, out = b.as(t, b.schoolA, "issueLeavingCertificate", map[string]any{"studentId": out["id"], "reason": "HEALTH", "leavingDate": "2026-11-30"})
	if status != 200 {
		t.Fatalf("issue: %d %v", status, out)
	}
	return uuid.MustParse(out["certificateId"].(string)), strings.TrimPrefix(out["pdfUrl"].(string), "https://shala.example")
}

// wantPDFFailed checks that pdfUrl answers the recorded failure (422
// PDF_FAILED, not 202 "being prepared") and that the certificate row
// carries it, with an error containing reason.
func (b *certBundle) wantPDFFailed(t *testing.T, id uuid.UUID, pdfPath, reason string) {
	t.Helper()
	status, hdr, body := b.get(t, pdfPath)
	var out map[string]any
	_ = json.Unmarshal([]byte(body), &out)
	if status != 422 || code(out) != "PDF_FAILED" || hdr.Get("Retry-After") != "" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("pdfUrl of a certificate whose PDF failed: got %d Retry-After %q Cache-Control %q %s, want 422 PDF_FAILED, no-store",
			status, hdr.Get("Retry-After"), hdr.Get("Cache-Control"), body)
	}
	if n := b.count(t, `SELECT count(*) FROM leaving_certificate WHERE id = $1 AND pdf_key IS NULL
		AND pdf_failed_at IS NOT NULL AND pdf_error LIKE '%' || $2 || '%'`, id, reason); n != 1 {
		t.Errorf("the certificate row does not record the failure (pdf_failed_at, pdf_error with %q)", reason)
	}
}

// failingChromium is a Chromium that cannot start: every render fails.
func failingChromium(t *testing.T) func(*config.Config) {
	return func(cfg *config.Config) { cfg.Chromium = filepath.Join(t.TempDir(), "no-chromium") }
}

// fastRetry retries failed jobs after 10 ms instead of River's attempt⁴ s.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(10 * time.Millisecond) }

// TestCertificatePDFFailureIsRecorded: a render that always fails (here
// Chromium cannot start), worked by shala's own River workers, ends after
// its job's attempts with the failure recorded on the certificate row:
// pdfUrl answers 422 PDF_FAILED instead of 202 "being prepared" for ever,
// and the reconcile sweep does not queue the render again (it queued a
// new round of 10 attempts each time the last was discarded, for ever).
func TestCertificatePDFFailureIsRecorded(t *testing.T) {
	t.Parallel()
	b := certSetupWith(t, failingChromium(t), app.Options{RetryPolicy: fastRetry{}})
	ctx := context.Background()
	id, pdfPath := b.issueOne(t, "23579135791", "A/5")
	finished := apptest.JobsFinished(t, b.app)
	apptest.Start(t, b.app)
	discarded := func() int {
		return b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'certificate.render' AND state = 'discarded' AND attempt = 10`)
	}
	finished.Await(t, "the render job discarded after its 10 attempts", func() bool { return discarded() == 1 })
	for i := range 3 {
		if n, err := certificate.Reconcile(ctx, b.pool, b.queue, certificate.ReconcileAfter); err != nil || n != 0 {
			t.Errorf("sweep %d after the failure: enqueued %d (%v), want 0", i+1, n, err)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'certificate.render'`); n != 1 {
		t.Errorf("got %d render jobs, want the one that failed", n)
	}
	b.wantPDFFailed(t, id, pdfPath, "chromium")
}

// okRenderer prints a fixed page: the render works again (an operator
// fixed what failed).
type okRenderer struct{}

func (okRenderer) Render(context.Context, string, string) ([]byte, error) {
	return []byte("%PDF-1.4 rendered\n"), nil
}

// TestCertificateRenderRoundsBounded: render jobs that end discarded
// without recording anything (River's rescuer discards the job of a
// process killed in its last attempt) are queued again by the sweep
// MaxRenderRequeues times, then the sweep records the failure on the
// certificate and queues no more (it queued a job every round, for ever).
// An operator's retry (clearing pdf_error) gives the render new rounds, and
// a render that works serves the PDF and clears the failure.
func TestCertificateRenderRoundsBounded(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	ctx := context.Background()
	id, pdfPath := b.issueOne(t, "97531975319", "A/6")
	// The rescuer's discard of a job whose process died in its last attempt.
	killed := func() {
		t.Helper()
		if _, err := b.pool.Exec(ctx, `UPDATE river_job SET state = 'discarded', attempt = max_attempts, finalized_at = now()
			WHERE kind = 'certificate.render' AND state = 'available'`); err != nil {
			t.Fatal(err)
		}
	}
	sweep := func() int {
		t.Helper()
		n, err := certificate.Reconcile(ctx, b.pool, b.queue, certificate.ReconcileAfter)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for round := range certificate.MaxRenderRequeues + 5 {
		killed()
		want := 0
		if round < certificate.MaxRenderRequeues {
			want = 1
		}
		if n := sweep(); n != want {
			t.Errorf("sweep %d: enqueued %d, want %d", round+1, n, want)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'certificate.render'`); n != 1+certificate.MaxRenderRequeues {
		t.Errorf("got %d render jobs, want the first and %d requeues", n, certificate.MaxRenderRequeues)
	}
	b.wantPDFFailed(t, id, pdfPath, "discarded")

	// The operator's retry (README): clear pdf_error; the next sweep queues
	// the render again, with its own rounds.
	if _, err := b.pool.Exec(ctx, `UPDATE leaving_certificate SET pdf_error = NULL WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := b.get(t, pdfPath); status != 202 {
		t.Errorf("pdfUrl after the retry: got %d, want 202 being prepared", status)
	}
	if n := sweep(); n != 1 {
		t.Errorf("sweep after the retry: enqueued %d, want 1", n)
	}
	w := &certificate.RenderWorker{Pool: b.pool, Bucket: b.bucket, Renderer: okRenderer{}, PublicURL: "https://shala.example"}
	if err := w.Work(ctx, &river.Job[certificate.RenderArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 10},
		Args: certificate.RenderArgs{CertificateID: id}}); err != nil {
		t.Fatal(err)
	}
	if status, hdr, body := b.get(t, pdfPath); status != 200 || hdr.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(body, "%PDF-") {
		t.Errorf("pdfUrl after the render worked: got %d %s", status, hdr.Get("Content-Type"))
	}
	if n := b.count(t, `SELECT count(*) FROM leaving_certificate WHERE id = $1 AND pdf_key IS NOT NULL AND pdf_error IS NULL AND pdf_failed_at IS NULL`, id); n != 1 {
		t.Error("the rendered certificate still records a failure")
	}
}

// TestCertificateRenderFinalAttempt: a render worker's last attempt that
// fails records why on the certificate (any earlier attempt records
// nothing: River retries it), whatever fails — here a process with no
// renderer at all.
func TestCertificateRenderFinalAttempt(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	ctx := context.Background()
	id, pdfPath := b.issueOne(t, "86420864208", "A/7")
	w := &certificate.RenderWorker{Pool: b.pool, Bucket: b.bucket, PublicURL: "https://shala.example"}
	work := func(attempt int) error {
		return w.Work(ctx, &river.Job[certificate.RenderArgs]{JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: 10},
			Args: certificate.RenderArgs{CertificateID: id}})
	}
	if err := work(9); err == nil {
		t.Fatal("a render without a renderer worked")
	}
	if status, _, _ := b.get(t, pdfPath); status != 202 {
		t.Errorf("pdfUrl after a failed attempt River retries: got %d, want 202", status)
	}
	if err := work(10); err == nil {
		t.Fatal("a render without a renderer worked")
	}
	b.wantPDFFailed(t, id, pdfPath, "no PDF renderer")
}

// failingRenderer is a PDF renderer whose every render fails with err.
type failingRenderer struct{ err error }

func (r failingRenderer) Render(context.Context, string, string) ([]byte, error) { return nil, r.err }

// TestCertificateRenderFailureWithAnyText: a failure whose text Postgres
// would refuse (a NUL, bytes that are not UTF-8) is still recorded.
func TestCertificateRenderFailureWithAnyText(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	ctx := context.Background()
	id, pdfPath := b.issueOne(t, "86420864209", "A/8")
	w := &certificate.RenderWorker{Pool: b.pool, Bucket: b.bucket, PublicURL: "https://shala.example",
		Renderer: failingRenderer{errors.New("chromium: crashed\x00 at page \xff\xfe")}}
	if err := w.Work(ctx, &river.Job[certificate.RenderArgs]{JobRow: &rivertype.JobRow{Attempt: 10, MaxAttempts: 10},
		Args: certificate.RenderArgs{CertificateID: id}}); err == nil || strings.Contains(err.Error(), "recording the failure") {
		t.Fatalf("last attempt: %v, want the render's error alone (the failure recorded)", err)
	}
	b.wantPDFFailed(t, id, pdfPath, "chromium: crashed? at page ?")
}

// TestPromoteStudentsSection: a section is named in promoteStudents as in
// registerStudent — lower case too — and one that cannot exist is refused by
// name, not answered "no students".
func TestPromoteStudentsSection(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	in := map[string]any{"name": "आरव वर्मा", "fatherName": "संजय वर्मा", "gender": "MALE", "dateOfBirth": "2014-05-01",
		"grade": 6, "section": "b", "academicYear": "2025-26", "transferSource": "NEW"}
	if status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": in}); status != 200 || out["section"] != "B" {
		t.Fatalf("register: %d %v", status, out)
	}
	args := map[string]any{"fromGrade": 6, "section": "z", "academicYear": "2025-26", "toAcademicYear": "2026-27", "exceptions": []any{}}
	if status, out := b.as(t, b.schoolA, "promoteStudents", args); status != 400 || !strings.HasPrefix(fmt.Sprint(out["message"]), "section:") {
		t.Errorf("section z: %d %v, want 400 naming section", status, out)
	}
	if status, out := b.as(t, b.schoolA, "promoteStudents", with(args, "section", " b ")); status != 200 || out["promoted"] != 1.0 {
		t.Errorf("section b as registered: %d %v, want the student promoted", status, out)
	}
}

// TestVerifyRateLimited: the public verification pages, key set and PDFs
// answer a client beyond its per-IP allowance 429 with Retry-After.
func TestVerifyRateLimited(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	cfg.PublicRate, cfg.PublicBurst = 0.001, 3
	a := apptest.New(t, cfg, app.Options{Pool: pgtest.New(t)})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	for i, path := range []string{"/verify/" + uuid.NewString(), "/verify?c=SLC1:X", "/.well-known/shala-keys.json", "/certificates/" + uuid.NewString() + "/pdf"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.StatusCode == http.StatusTooManyRequests; got != (i == 3) || (got && resp.Header.Get("Retry-After") == "") {
			t.Errorf("request %d (%s): got %d Retry-After %q; want 429 with Retry-After for the 4th only", i+1, path, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
}

// TestCertificatePDFJob: the render job issueLeavingCertificate enqueues,
// worked by shala's own River workers and warm Chromium pool, makes pdfUrl
// serve the PDF.
func TestCertificatePDFJob(t *testing.T) {
	t.Parallel()
	certtest.NeedTools(t, "chromium")
	b := certSetup(t)
	status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": anushka(aadhaar.Complete("24680246802"), "A/3")})
	if status != 200 {
		t.Fatalf("register: %d %v", status, out)
	}
	status, out = b.as(t, b.schoolA, "issueLeavingCertificate", map[string]any{"studentId": out["id"], "reason": "HEALTH", "leavingDate": "2026-11-30"})
	if status != 200 {
		t.Fatalf("issue: %d %v", status, out)
	}
	pdfPath := strings.TrimPrefix(out["pdfUrl"].(string), "https://shala.example")
	events, cancel := b.queue.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	t.Cleanup(cancel)
	apptest.Start(t, b.app)
	guard := time.After(2 * time.Minute)
	for done := false; !done; {
		select {
		case e := <-events:
			if e.Job.Kind != "certificate.render" {
				continue
			}
			if e.Kind != river.EventKindJobCompleted {
				t.Fatalf("render job: %s %v", e.Kind, e.Job.Errors)
			}
			done = true
		case <-guard:
			t.Fatal("the render job never finished")
		}
	}
	status, hdr, body := b.get(t, pdfPath)
	if status != 200 || hdr.Get("Content-Type") != "application/pdf" || !strings.HasPrefix(body, "%PDF-") {
		t.Errorf("pdfUrl after the job: %d %s", status, hdr.Get("Content-Type"))
	}
}

// TestRegisterStudentIndianDate: "today" for a school is the date in India:
// at 00:30 IST on 1 December (19:00 UTC on 30 November) a child admitted
// that day is admitted on 1 December, not refused as admitted in the future.
func TestRegisterStudentIndianDate(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	b.app.Students.Now = func() time.Time { return time.Date(2026, 11, 30, 19, 0, 0, 0, time.UTC) }
	for i, date := range []any{"2026-12-01", nil} {
		in := with(anushka("", fmt.Sprintf("A/%d", i+1)), "aadhaar", nil)
		status, out := b.as(t, b.schoolA, "registerStudent", map[string]any{"student": with(in, "admissionDate", date)})
		if status != 200 {
			t.Fatalf("admitted on %v: %d %v", date, status, out)
		}
		if n := b.count(t, `SELECT count(*) FROM student WHERE id = $1 AND admission_date = '2026-12-01'`, out["id"]); n != 1 {
			t.Errorf("admitted on %v: not recorded as admitted on 2026-12-01", date)
		}
	}
}

// A record without an admission date (an old row) still has its leaving
// date held to the date of birth: a certificate saying the child left
// before being born is refused, naming the field.
func TestLeavingDateBeforeBirthIsRefused(t *testing.T) {
	t.Parallel()
	b := certSetup(t)
	var id uuid.UUID
	if err := b.pool.QueryRow(context.Background(), `INSERT INTO student (school_id, name, gender, grade, date_of_birth)
		VALUES ($1, 'अनुष्का ठाकुर', 'FEMALE', 5, '2016-06-01') RETURNING id`, b.schoolA).Scan(&id); err != nil {
		t.Fatal(err)
	}
	status, out := b.as(t, b.schoolA, "issueLeavingCertificate", map[string]any{"studentId": id, "reason": "FAMILY_MIGRATION", "leavingDate": "2016-05-31"})
	if status != 400 || code(out) != "INVALID_INPUT" || !strings.Contains(fmt.Sprint(out["message"]), "leavingDate") {
		t.Errorf("got %d %v, want 400 INVALID_INPUT naming leavingDate", status, out)
	}
	if n := b.count(t, `SELECT count(*) FROM leaving_certificate WHERE student_id = $1`, id); n != 0 {
		t.Errorf("%d certificates written", n)
	}
}
