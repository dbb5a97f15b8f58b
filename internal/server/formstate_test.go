package server_test

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shala-edu/shala/internal/forms"
)

// formIDs are the forms a collector's formList offers.
func (b *bundle) formIDs(t *testing.T, token string) []string {
	t.Helper()
	resp, err := b.client.Get(b.url + "/openrosa/key/" + token + "/formList")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var list struct {
		Forms []struct {
			FormID string `xml:"formID"`
		} `xml:"xform"`
	}
	if err := xml.Unmarshal(raw, &list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("formList: %d %v %s", resp.StatusCode, err, raw)
	}
	ids := []string{}
	for _, f := range list.Forms {
		ids = append(ids, f.FormID)
	}
	return ids
}

// TestSetFormState: an admin closes a form through the action; collectors
// stop being offered it and every way in refuses its submissions with
// FORM_CLOSED — OpenRosa as an OpenRosaResponse, submitForm as Hasura's
// error, the nested insert as a data-exception — keeping the ODK XML;
// opening it again puts that XML back and a resend is accepted.
func TestSetFormState(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.registerHousehold(t)
	_, token := b.createCollector(t)
	set := func(state string) map[string]any {
		t.Helper()
		status, out := b.action(t, "setFormState", "admin", map[string]any{"formId": "household_survey", "state": state})
		if status != 200 || out["formId"] != "household_survey" || out["state"] != state {
			t.Fatalf("setFormState(%s): %d %v", state, status, out)
		}
		return out
	}

	t.Run("refusals name the field", func(t *testing.T) {
		for _, tt := range []struct {
			role   string
			input  map[string]any
			status int
			code   string
			prefix string
		}{
			{"school", map[string]any{"formId": "household_survey", "state": "CLOSED"}, 403, "FORBIDDEN", ""},
			{"admin", map[string]any{"formId": "household_survey", "state": "SHUT"}, 400, "INVALID_INPUT", "state:"},
			{"admin", map[string]any{"formId": "", "state": "CLOSED"}, 400, "INVALID_INPUT", "formId:"},
			{"admin", map[string]any{"formId": "no_such_form", "state": "CLOSED"}, 404, "UNKNOWN_FORM", "formId:"},
		} {
			status, out := b.action(t, "setFormState", tt.role, tt.input)
			if status != tt.status || code(out) != tt.code || !strings.HasPrefix(out["message"].(string), tt.prefix) {
				t.Errorf("setFormState(%v) as %s: %d %v, want %d %s %q…", tt.input, tt.role, status, out, tt.status, tt.code, tt.prefix)
			}
		}
	})

	t.Run("closed", func(t *testing.T) {
		if out := set("CLOSED"); out["previousState"] != "OPEN" || out["waitingSubmissions"] != float64(0) {
			t.Errorf("closing: %v", out)
		}
		if got := b.formIDs(t, token); len(got) != 0 {
			t.Errorf("formList offers %v, want nothing", got)
		}
		doc := xformFile(t, "household_submission.xml")
		resp, out := b.submit(t, token, doc, nil)
		if resp.StatusCode != 409 || resp.Header.Get("X-OpenRosa-Version") != "1.0" || !strings.Contains(out.Message, "household_survey is closed") {
			t.Errorf("OpenRosa submission: %d %q, want 409 and an OpenRosaResponse saying the form is closed", resp.StatusCode, out.Message)
		}
		other := strings.Replace(doc, "uuid:6f1c2d8e", "uuid:7f1c2d8e", 1)
		status, res := b.action(t, "submitForm", "school", map[string]any{"xml": other})
		if status != 409 || code(res) != "FORM_CLOSED" {
			t.Errorf("submitForm: %d %v, want 409 FORM_CLOSED", status, res)
		}
		if n := b.count(t, `SELECT count(*) FROM form_submission WHERE status = 'rejected' AND error_code = 'FORM_CLOSED' AND xml IS NOT NULL`); n != 2 {
			t.Errorf("%d submissions kept as FORM_CLOSED, want 2", n)
		}
		_, _, err := b.nested(t, "household_survey", "teacher-1", householdVersion, "uuid:closed-nested-1", household)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "22023" || pgErr.Message != `form_id: form "household_survey" is closed: it takes no more submissions` {
			t.Errorf("nested insert: %v, want a data-exception naming form_id", err)
		}
		if n := b.count(t, `SELECT count(*) FROM form_submission WHERE instance_id = 'uuid:closed-nested-1'`); n != 0 {
			t.Error("the refused nested insert stored a submission")
		}
		if n := b.count(t, `SELECT count(*) FROM response`); n != 0 {
			t.Errorf("%d responses of a closed form", n)
		}
	})

	t.Run("closing", func(t *testing.T) {
		if out := set("CLOSING"); out["previousState"] != "CLOSED" || out["waitingSubmissions"] != float64(2) {
			t.Errorf("winding down a closed form: %v, want the two refused submissions back", out)
		}
		if got := b.formIDs(t, token); len(got) != 0 {
			t.Errorf("formList offers %v, want nothing", got)
		}
		resp, out := b.submit(t, token, xformFile(t, "household_submission.xml"), nil)
		if resp.StatusCode != 201 || out.Message != "Form already received" {
			t.Errorf("OpenRosa resend: %d %q, want the kept submission accepted", resp.StatusCode, out.Message)
		}
		if _, _, err := b.nested(t, "household_survey", "teacher-1", householdVersion, "uuid:closing-nested-1", household); err != nil {
			t.Errorf("nested insert of a CLOSING form: %v", err)
		}
	})

	t.Run("a new version keeps the state", func(t *testing.T) {
		def := strings.Replace(xformFile(t, "household_survey.xml"), `version="2026111501"`, `version="2026111502"`, 1)
		status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": def, "purpose": "DATA_COLLECTION"})
		if status != 200 || out["version"] != "2026111502" {
			t.Fatalf("registerForm: %d %v", status, out)
		}
		if n := b.count(t, `SELECT count(*) FROM form WHERE id = 'household_survey' AND state = 'CLOSING'`); n != 1 {
			t.Error("registering a version changed the state")
		}
		if got := b.formIDs(t, token); len(got) != 0 {
			t.Errorf("formList offers %v, want nothing", got)
		}
	})

	t.Run("a retry after the closing is told it was stored", func(t *testing.T) {
		set("CLOSED")
		_, _, err := b.nested(t, "household_survey", "teacher-1", householdVersion, "uuid:closing-nested-1", household)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "23505" || pgErr.Message != `instance_id: "uuid:closing-nested-1" was already received` {
			t.Errorf("retried nested insert: %v, want already received", err)
		}
	})

	t.Run("open", func(t *testing.T) {
		set("OPEN")
		if got := b.formIDs(t, token); !slices.Equal(got, []string{"household_survey"}) {
			t.Errorf("formList offers %v, want the survey", got)
		}
		if n := b.count(t, `SELECT count(*) FROM form WHERE id = 'household_survey' AND state = 'OPEN'`); n != 1 {
			t.Error("form.state is not OPEN")
		}
	})
}

// An assessment builder an admin closed refuses new assessments on all
// three ways in (submitForm, OpenRosa from a builder collector, a row
// inserted through Hasura), keeping each; opening it again lets the sweep
// create all three.
func TestClosedBuilderOnEveryPath(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.samarthReady(t)
	b.startWorkers(t)
	ctx := context.Background()
	status, out := b.action(t, "createCollector", "admin", map[string]any{"name": "राज्य समन्वयक", "phone": "9816077777", "buildsAssessments": true})
	if status != 200 {
		t.Fatalf("createCollector: %d %v", status, out)
	}
	token := out["token"].(string)
	if status, out := b.action(t, "setFormState", "admin", map[string]any{"formId": "external", "state": "CLOSED"}); status != 200 {
		t.Fatalf("setFormState: %d %v", status, out)
	}
	if status, out := b.action(t, "submitForm", "state_admin", map[string]any{"xml": samarth(t, "uuid:7d2e4b10-93c1-4f6a-b8e2-0000000c10a1")}); status != 409 || code(out) != "FORM_CLOSED" {
		t.Errorf("submitForm: %d %v, want 409 FORM_CLOSED", status, out)
	}
	if resp, out := b.submit(t, token, samarth(t, "uuid:7d2e4b10-93c1-4f6a-b8e2-0000000c10b1"), nil); resp.StatusCode != 409 || !strings.Contains(out.Message, "closed") {
		t.Errorf("OpenRosa: %d %q, want 409 saying the form is closed", resp.StatusCode, out.Message)
	}
	id := b.hasuraInsert(t, samarth(t, "uuid:7d2e4b10-93c1-4f6a-b8e2-0000000c10c1"), "state_admin")
	// Until its job is finished, not only its refusal committed: a job
	// still running makes the sweep's insert of the same job a no-op
	// (unique until finished), and only the next minute's sweep would
	// take the submission.
	b.waitFor(t, "the Hasura insert's job to finish", func() bool {
		return b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND status <> 'received'`, id) == 1 &&
			b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'forms.process' AND finalized_at IS NULL`) == 0
	})
	if n := b.count(t, `SELECT count(*) FROM form_submission WHERE status = 'rejected' AND error_code = 'FORM_CLOSED'`); n != 3 {
		t.Errorf("%d builders kept as FORM_CLOSED, want 3", n)
	}
	if n := b.count(t, `SELECT count(*) FROM assessment`); n != 0 {
		t.Errorf("%d assessments from a closed builder", n)
	}
	status, out = b.action(t, "setFormState", "admin", map[string]any{"formId": "external", "state": "OPEN"})
	if status != 200 || out["waitingSubmissions"] != float64(3) {
		t.Fatalf("reopening: %d %v, want 3 waiting", status, out)
	}
	if _, err := forms.Reconcile(ctx, b.pool, b.queue, 0); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "the swept builders to create their assessments", func() bool {
		return b.count(t, `SELECT count(*) FROM assessment`) == 3
	})
	if n := b.count(t, `SELECT count(*) FROM form_submission WHERE status = 'accepted'`); n != 3 {
		t.Errorf("%d builders accepted, want 3", n)
	}
}
