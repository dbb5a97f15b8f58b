//go:build e2e

package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	graphql "github.com/hasura/go-graphql-client"
)

func env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	graphqlURL  = env("SHALA_E2E_GRAPHQL_URL", "http://localhost:8080/v1/graphql")
	adminSecret = env("HASURA_GRAPHQL_ADMIN_SECRET", "dev-admin-secret")
	jwtKey      = env("HASURA_JWT_KEY", "dev-jwt-signing-key-at-least-32-characters")
)

func admin() *graphql.Client {
	return graphql.NewClient(graphqlURL, http.DefaultClient).WithRequestModifier(func(r *http.Request) {
		r.Header.Set("X-Hasura-Admin-Secret", adminSecret)
	})
}

// exec runs query on c and decodes its data into out with encoding/json,
// by the json tags (the client's own Exec decodes by graphql tags and
// field names, and would not find insert_response_one in InsertResponseOne).
func exec(ctx context.Context, c *graphql.Client, query string, out any, vars map[string]any) error {
	data, err := c.ExecRaw(ctx, query, vars)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// as returns a client authenticated with an HS256 JWT carrying Hasura claims,
// as the apps' auth service issues them.
func as(t *testing.T, role string, claims map[string]string) *graphql.Client {
	t.Helper()
	hc := map[string]any{"x-hasura-default-role": role, "x-hasura-allowed-roles": []string{role}}
	for k, v := range claims {
		hc[k] = v
	}
	payload := map[string]any{
		"sub": claims["x-hasura-user-id"], "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix(),
		"https://hasura.io/jwt/claims": hc,
	}
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT"})
	body, _ := json.Marshal(payload)
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(body)
	mac := hmac.New(sha256.New, []byte(jwtKey))
	mac.Write([]byte(signing))
	token := signing + "." + enc.EncodeToString(mac.Sum(nil))
	return graphql.NewClient(graphqlURL, http.DefaultClient).WithRequestModifier(func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
	})
}

// TestInsertFiresTriggerAndEffectIsVisible: a GraphQL insert fires the
// ping_created event trigger → shala enqueues → worker writes the pong →
// the pong is visible through GraphQL.
func TestInsertFiresTriggerAndEffectIsVisible(t *testing.T) {
	ctx := context.Background()
	c := admin()
	var ins struct {
		InsertPingOne struct {
			ID string `graphql:"id"`
		} `graphql:"insert_ping_one(object: {message: $message})"`
	}
	if err := c.Mutate(ctx, &ins, map[string]any{"message": graphql.String("e2e नमस्ते")}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var q struct {
			PingByPk *struct {
				Pong *struct {
					ProcessedAt string `graphql:"processed_at"`
					EventID     string `graphql:"event_id"`
				} `graphql:"pong"`
			} `graphql:"ping_by_pk(id: $id)"`
		}
		if err := c.Query(ctx, &q, map[string]any{"id": uuid(ins.InsertPingOne.ID)}); err != nil {
			t.Fatal(err)
		}
		if q.PingByPk != nil && q.PingByPk.Pong != nil {
			if q.PingByPk.Pong.EventID == "" {
				t.Error("pong has no event id: it came from the reconciler, not the event trigger")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no pong within 60 s: is shala reachable from Hasura (SHALA_URL) with the same SHALA_WEBHOOK_SECRET?")
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// uuid is Hasura's uuid scalar for the client's variable typing.
type uuid string

func (uuid) GetGraphQLType() string { return "uuid" }

// TestActionReturnsOutputAndErrorsCarryOurCode: an action's output comes
// back typed; a 4xx from shala arrives as a GraphQL error with our
// extensions.code.
func TestActionReturnsOutputAndErrorsCarryOurCode(t *testing.T) {
	ctx := context.Background()
	c := as(t, "school", map[string]string{"x-hasura-user-id": "e2e-teacher", "x-hasura-school-id": "00000000-0000-0000-0000-000000000001"})
	var m struct {
		Ping struct {
			ID         string `graphql:"id"`
			Message    string `graphql:"message"`
			ReceivedAt string `graphql:"receivedAt"`
		} `graphql:"ping(message: $message)"`
	}
	if err := c.Mutate(ctx, &m, map[string]any{"message": graphql.String("  hello  ")}); err != nil {
		t.Fatal(err)
	}
	if m.Ping.ID == "" || m.Ping.Message != "hello" || m.Ping.ReceivedAt == "" {
		t.Errorf("ping output %+v", m.Ping)
	}
	err := c.Mutate(ctx, &m, map[string]any{"message": graphql.String("")})
	var gerrs graphql.Errors
	if !errors.As(err, &gerrs) || len(gerrs) == 0 {
		t.Fatalf("empty message: got %v, want a GraphQL error", err)
	}
	if code := gerrs[0].Extensions["code"]; code != "INVALID_INPUT" {
		t.Errorf("extensions.code %v, want INVALID_INPUT (message %q)", code, gerrs[0].Message)
	}
}

// TestSchoolRoleSeesOnlyItsSchoolAndNoAadhaar checks the registry
// permissions through Hasura.
func TestSchoolRoleSeesOnlyItsSchoolAndNoAadhaar(t *testing.T) {
	ctx := context.Background()
	var schools struct {
		School []struct {
			ID string `graphql:"id"`
		} `graphql:"school(limit: 1)"`
	}
	if err := admin().Query(ctx, &schools, nil); err != nil {
		t.Fatal(err)
	}
	if len(schools.School) == 0 {
		t.Skip("no schools: run `docker compose exec shala /shala seed --demo` first")
	}
	id := schools.School[0].ID
	c := as(t, "school", map[string]string{"x-hasura-user-id": "e2e-teacher", "x-hasura-school-id": id})
	var q struct {
		Student []struct {
			SchoolID string `graphql:"school_id"`
		} `graphql:"student(limit: 500)"`
	}
	if err := c.Query(ctx, &q, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range q.Student {
		if s.SchoolID != id {
			t.Fatalf("school role saw a student of school %s", s.SchoolID)
		}
	}
	var a struct {
		Student []struct {
			Aadhaar string `graphql:"aadhaar"`
		} `graphql:"student(limit: 1)"`
	}
	if err := c.Query(ctx, &a, nil); err == nil {
		t.Error("school role could select aadhaar")
	}
}

// TestSMSRequestThroughHasura: a teacher inserts a holiday notice through
// GraphQL; the sms_request_created trigger fans it out and the request
// reaches DONE with its counts readable by the same teacher.
func TestSMSRequestThroughHasura(t *testing.T) {
	ctx := context.Background()
	var schools struct {
		School []struct {
			ID string `graphql:"id"`
		} `graphql:"school(where: {students: {guardian_phone: {_is_null: false}}}, limit: 1)"`
	}
	if err := admin().Query(ctx, &schools, nil); err != nil {
		t.Fatal(err)
	}
	if len(schools.School) == 0 {
		t.Skip("no students: run `docker compose exec shala /shala seed --demo` first")
	}
	c := as(t, "school", map[string]string{"x-hasura-user-id": "e2e-teacher", "x-hasura-school-id": schools.School[0].ID})
	var ins struct {
		InsertSMSRequestOne struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"insert_sms_request_one"`
	}
	err := exec(ctx, c, `mutation($vars: jsonb!) { insert_sms_request_one(object: {type: "HOLIDAY", variables: $vars}) { id status } }`,
		&ins, map[string]any{"vars": map[string]string{"start_date": "25 दिसंबर", "end_date": "1 जनवरी", "reopen_date": "2 जनवरी"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var q struct {
			Request struct {
				Status          string  `json:"status"`
				Sent            int     `json:"sent"`
				RecipientsTotal int     `json:"recipients_total"`
				Remarks         *string `json:"remarks"`
			} `json:"sms_request_by_pk"`
		}
		if err := exec(ctx, c, `query($id: uuid!) { sms_request_by_pk(id: $id) { status sent recipients_total remarks } }`,
			&q, map[string]any{"id": ins.InsertSMSRequestOne.ID}); err != nil {
			t.Fatal(err)
		}
		if q.Request.Status == "DONE" {
			if q.Request.Sent == 0 || q.Request.Sent > q.Request.RecipientsTotal {
				t.Errorf("DONE with %d sent of %d", q.Request.Sent, q.Request.RecipientsTotal)
			}
			return
		}
		if q.Request.Status == "FAILED" || time.Now().After(deadline) {
			t.Fatalf("request ended %s (%v)", q.Request.Status, q.Request.Remarks)
		}
		time.Sleep(time.Second)
	}
}

// TestFormThroughHasura registers the household survey, submits the sample
// through the submitForm action and finds its answer with search_answers.
func TestFormThroughHasura(t *testing.T) {
	ctx := context.Background()
	def, err := os.ReadFile("../internal/xform/testdata/household_survey.xml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../internal/xform/testdata/household_submission.xml")
	if err != nil {
		t.Fatal(err)
	}
	var reg struct {
		RegisterForm struct {
			FormID string `json:"formId"`
		} `json:"registerForm"`
	}
	if err := exec(ctx, admin(), `mutation($x: String!) { registerForm(xform: $x, purpose: DATA_COLLECTION) { formId } }`,
		&reg, map[string]any{"x": string(def)}); err != nil {
		t.Fatal(err)
	}
	c := as(t, "state_admin", map[string]string{"x-hasura-user-id": "e2e-state"})
	var sub struct {
		SubmitForm struct {
			Status     string  `json:"status"`
			ResponseID *string `json:"responseId"`
		} `json:"submitForm"`
	}
	if err := exec(ctx, c, `mutation($x: String!) { submitForm(xml: $x) { status responseId } }`, &sub, map[string]any{"x": string(doc)}); err != nil {
		t.Fatal(err)
	}
	if sub.SubmitForm.Status != "accepted" || sub.SubmitForm.ResponseID == nil {
		t.Fatalf("submitForm: %+v", sub.SubmitForm)
	}
	var found struct {
		Answers []struct {
			ValueText string `json:"value_text"`
		} `json:"search_answers"`
	}
	if err := exec(ctx, c, `query { search_answers(args: {form_id: "household_survey", question_name: "local_word_for_water", where_name: "city", equals: "Shimla"}) { value_text } }`,
		&found, nil); err != nil {
		t.Fatal(err)
	}
	if len(found.Answers) == 0 || found.Answers[0].ValueText != "पाणी" {
		t.Errorf("search_answers: %+v", found.Answers)
	}
}

// TestNestedResponseThroughHasura: a school inserts a response with its
// answers in one nested insert; the database types them, refuses a bad
// value naming the question (a data-exception), and shala checks the
// response's rules after the commit.
func TestNestedResponseThroughHasura(t *testing.T) {
	ctx := context.Background()
	def, err := os.ReadFile("../internal/xform/testdata/household_survey.xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := exec(ctx, admin(), `mutation($x: String!) { registerForm(xform: $x, purpose: DATA_COLLECTION) { formId } }`,
		&struct{}{}, map[string]any{"x": string(def)}); err != nil {
		t.Fatal(err)
	}
	c := as(t, "school", map[string]string{"x-hasura-user-id": "e2e-nested-teacher"})
	var qs struct {
		Questions []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"form_question"`
	}
	if err := exec(ctx, c, `query { form_question(where: {form_id: {_eq: "household_survey"}, version: {_eq: "2026111501"}}) { id name } }`, &qs, nil); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, q := range qs.Questions {
		ids[q.Name] = q.ID
	}
	insert := func(instance, income string) (string, error) {
		var out struct {
			Response struct {
				ID string `json:"id"`
			} `json:"insert_response_one"`
		}
		err := exec(ctx, c, `mutation($o: response_insert_input!) { insert_response_one(object: $o) { id } }`, &out, map[string]any{"o": map[string]any{
			"form_id": "household_survey", "form_version": "2026111501", "instance_id": instance,
			"answers": map[string]any{"data": []map[string]any{
				{"question_id": ids["monthly_income"], "value_text": income},
				{"question_id": ids["monthly_savings"], "value_text": "20000"},
				{"question_id": ids["income_sources"], "value_text": "wages", "n": 0},
			}},
		}})
		return out.Response.ID, err
	}
	instance := "uuid:e2e-nested-" + time.Now().Format("150405.000000")
	if _, err := insert(instance+"-bad", "eighteen"); err == nil || !strings.Contains(err.Error(), `monthly_income: "eighteen" is not a number`) {
		t.Errorf("a word for a number: %v", err)
	}
	id, err := insert(instance, "18000")
	if err != nil || id == "" {
		t.Fatalf("nested insert: %q, %v", id, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got struct {
			Response struct {
				Flagged    bool `json:"flagged"`
				Submission struct {
					ProcessedAt *string `json:"processed_at"`
				} `json:"submission"`
			} `json:"response_by_pk"`
		}
		if err := exec(ctx, c, `query($id: uuid!) { response_by_pk(id: $id) { flagged submission { processed_at } } }`, &got, map[string]any{"id": uuid(id)}); err != nil {
			t.Fatal(err)
		}
		if got.Response.Submission.ProcessedAt != nil {
			break // checked; no rule is saved in this run, so not flagged
		}
		if time.Now().After(deadline) {
			t.Fatal("the response was not checked within 30 s")
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, err := insert(instance, "18000"); err == nil || !strings.Contains(err.Error(), "was already received") {
		t.Errorf("the same instance_id again: %v", err)
	}
}
