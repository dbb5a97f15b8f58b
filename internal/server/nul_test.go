package server_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestNULIsRefusedWithTheFieldNamed: Postgres text cannot hold NUL, so a
// \u0000 anywhere in a delivery is refused at the edge with a 4xx naming
// where it is — never a 500 that Hasura retries.
func TestNULIsRefusedWithTheFieldNamed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	action := func(message, userID string) []byte {
		body, _ := json.Marshal(map[string]any{
			"action":            map[string]any{"name": "ping"},
			"input":             map[string]any{"message": message},
			"session_variables": map[string]any{"x-hasura-role": "school", "x-hasura-user-id": userID},
			"request_query":     "mutation { ping(message: \"x\") { id } }",
		})
		return body
	}
	event := func(old, new string) []byte {
		e := payload(t, "ping_created.json", map[string]string{"PING_ID": uuid.NewString(), "EVENT_ID": uuid.NewString()})
		return bytes.Replace(e, []byte(old), []byte(new), 1)
	}
	submit, _ := json.Marshal(map[string]any{
		"action":            map[string]any{"name": "submitForm"},
		"input":             map[string]any{"xml": "<data id=\"x\">\x00</data>"},
		"session_variables": map[string]any{"x-hasura-role": "school"},
	})
	tests := []struct {
		name, path string
		body       []byte
		field      string
	}{
		{"action argument", "/actions/ping", action("hi\x00there", "42"), "input.message"},
		{"session variable", "/actions/ping", action("hi", "4\x002"), "session_variables.x-hasura-user-id"},
		{"action argument of another action", "/actions/submitForm", submit, "input.xml"},
		{"event trace id", "/events/ping_created", event(`"0af7651916cd43dd`, `"0af7651916cd43dd\u0000`), "event.trace_context.trace_id"},
		{"event row", "/events/ping_created", event(`"नमस्ते`, `"नमस्ते\u0000`), "event.data.new.message"},
		{"event session variable", "/events/ping_created", event(`"x-hasura-user-id": "7"`, `"x-hasura-user-id": "\u00007"`), "event.session_variables.x-hasura-user-id"},
		{"cron payload", "/cron/reconcile", bytes.Replace(payload(t, "reconcile_cron.json", map[string]string{"EVENT_ID": uuid.NewString()}),
			[]byte(`"comment": "`), []byte(`"comment": "\u0000`), 1), "comment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Contains(tt.body, []byte(`\u0000`)) {
				t.Fatalf("test body has no \\u0000: %s", tt.body)
			}
			resp := b.post(t, tt.path, tt.body, nil)
			var out struct {
				Message    string
				Extensions map[string]any
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != 400 || out.Extensions["code"] != "INVALID_INPUT" || out.Extensions["field"] != tt.field ||
				!strings.HasPrefix(out.Message, tt.field+": ") || !strings.Contains(out.Message, "NUL") {
				t.Errorf("got %d %q %v, want 400 INVALID_INPUT naming %s and NUL", resp.StatusCode, out.Message, out.Extensions, tt.field)
			}
		})
	}
	for table, n := range map[string]int{
		"ping":            b.count(t, "SELECT count(*) FROM ping"),
		"webhook_inbox":   b.count(t, "SELECT count(*) FROM webhook_inbox"),
		"form_submission": b.count(t, "SELECT count(*) FROM form_submission"),
	} {
		if n != 0 {
			t.Errorf("%d %s rows after refused deliveries, want 0", n, table)
		}
	}

	// An escaped backslash followed by u0000 is text, not NUL: accepted.
	body := []byte(strings.Replace(string(action("x", "42")), `"message":"x"`, `"message":"a\\u0000b"`, 1))
	if resp := b.post(t, "/actions/ping", body, nil); resp.StatusCode != 200 {
		t.Errorf(`message "a\\u0000b": got %d, want 200`, resp.StatusCode)
	}
}
