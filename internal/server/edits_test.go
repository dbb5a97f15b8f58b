package server_test

import (
	"strings"
	"testing"
)

// Edits (meta/deprecatedID) as ODK Central takes them, on all three ways
// in: an edit of a submission never received is refused — OpenRosa 404 in
// the OpenRosa envelope, submitForm UNKNOWN_EDIT, a Hasura insert rejected
// with that code — and its XML kept; an edit of the current version
// replaces it; the same edit again is received once; an edit of a version
// already edited is 409; a new instanceID that is taken, with other
// content, is 409.
func TestEditsAsODKCentral(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.registerHousehold(t)
	b.startWorkers(t)
	_, token := b.createCollector(t)
	orig := xformFile(t, "household_submission.xml")
	const first = "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b"
	edit := func(instance, replaces, rooms string) string {
		return strings.NewReplacer("<instanceID>"+first+"</instanceID>",
			"<instanceID>"+instance+"</instanceID><deprecatedID>"+replaces+"</deprecatedID>",
			"<rooms>3</rooms>", "<rooms>"+rooms+"</rooms>").Replace(orig)
	}

	t.Run("an edit of a submission never received", func(t *testing.T) {
		resp, msg := b.submit(t, token, edit("uuid:e-openrosa", first, "4"), nil)
		if resp.StatusCode != 404 || resp.Header.Get("X-OpenRosa-Version") != "1.0" || !strings.Contains(msg.Message, "the submission being edited ("+first+") was not found") {
			t.Errorf("OpenRosa: %d %+v", resp.StatusCode, msg)
		}
		status, out := b.action(t, "submitForm", "school", map[string]any{"xml": edit("uuid:e-action", first, "4")})
		if status != 404 || code(out) != "UNKNOWN_EDIT" {
			t.Errorf("submitForm: %d %v", status, out)
		}
		id := b.hasuraInsert(t, edit("uuid:e-hasura", first, "4"), "school")
		b.waitFor(t, "the Hasura insert to be processed", func() bool {
			return b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND status <> 'received'`, id) == 1
		})
		if n := b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'rejected' AND error_code = 'UNKNOWN_EDIT'
			AND errors -> 0 ->> 'reason' LIKE 'the submission being edited % was not found%'`, id); n != 1 {
			t.Errorf("the Hasura insert is not rejected with UNKNOWN_EDIT")
		}
		if n := b.count(t, `SELECT count(*) FROM form_submission WHERE error_code = 'UNKNOWN_EDIT' AND xml LIKE '%<deprecatedID>`+first+`</deprecatedID>%'`); n != 3 {
			t.Errorf("%d of 3 refused edits kept with their XML", n)
		}
	})

	t.Run("edits of the current version, again, of an older one", func(t *testing.T) {
		if resp, msg := b.submit(t, token, orig, nil); resp.StatusCode != 201 {
			t.Fatalf("original: %d %+v", resp.StatusCode, msg)
		}
		// The edit refused above, sent again now that its original is here.
		if resp, msg := b.submit(t, token, edit("uuid:e-openrosa", first, "4"), nil); resp.StatusCode != 201 || msg.Message != "Form received" {
			t.Errorf("edit of the current version: %d %+v", resp.StatusCode, msg)
		}
		if resp, msg := b.submit(t, token, edit("uuid:e-openrosa", first, "4"), nil); resp.StatusCode != 201 || msg.Message != "Form already received" {
			t.Errorf("the same edit again: %d %+v", resp.StatusCode, msg)
		}
		if resp, msg := b.submit(t, token, edit("uuid:e-stale", first, "5"), nil); resp.StatusCode != 409 || !strings.Contains(msg.Message, "already replaced") {
			t.Errorf("an edit of the version already edited: %d %+v", resp.StatusCode, msg)
		}
		if resp, msg := b.submit(t, token, edit("uuid:e-openrosa", first, "6"), nil); resp.StatusCode != 409 || !strings.Contains(msg.Message, "different content") {
			t.Errorf("a taken instanceID with other content: %d %+v", resp.StatusCode, msg)
		}
		if n := b.count(t, `SELECT count(*) FROM answer a JOIN form_question q ON q.id = a.question_id WHERE q.name = 'rooms' AND a.value_text = '4'`); n != 1 {
			t.Errorf("the live response does not hold the edit's answer")
		}
		if n := b.count(t, `SELECT count(*) FROM response`); n != 1 {
			t.Errorf("%d responses", n)
		}
	})
}
