package server_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// hasuraInsert inserts a form_submission row as Hasura's insert permission
// of role writes it and delivers its form_submission_created event.
func (b *bundle) hasuraInsert(t *testing.T, doc, role string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := b.pool.QueryRow(context.Background(), `INSERT INTO form_submission (xml, source, submitted_by, submitted_role)
		VALUES ($1, 'hasura', $2, $3) RETURNING id`, doc, "user-"+role, role).Scan(&id); err != nil {
		t.Fatal(err)
	}
	event := fmt.Sprintf(`{"created_at":"2026-11-22T10:15:30.123456","delivery_info":{"current_retry":0,"max_retries":10},
		"event":{"data":{"new":{"id":"%s","status":"received","source":"hasura","submitted_by":"user-%s"},"old":null},"op":"INSERT",
		"session_variables":{"x-hasura-role":"%s","x-hasura-user-id":"user-%s"},"trace_context":null},
		"id":"%s","table":{"name":"form_submission","schema":"public"},"trigger":{"name":"form_submission_created"}}`, id, role, role, role, uuid.New())
	if resp := b.post(t, "/events/form_submission_created", []byte(event), nil); resp.StatusCode != 200 {
		t.Fatalf("form_submission_created: %d", resp.StatusCode)
	}
	return id
}

// Every shape a real XForm takes registers, and one valid submission of it
// is accepted through each of the three ways in: the submitForm action,
// OpenRosa (ODK Collect's multipart POST) and a row inserted through Hasura.
func TestRealXFormShapesThroughEveryPath(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.startWorkers(t)
	_, token := b.createCollector(t)
	for _, tt := range []struct {
		file      string
		languages int
		answers   int // per submission
	}{
		{"plain", 0, 4},
		{"one_language", 1, 3},
		{"media_itext", 1, 3},
		{"hint_only", 0, 3},
		{"note_trigger", 0, 2},
		{"odk_extensions", 0, 5 + 2}, // the rank's three choices are three rows
		{"orx_meta", 0, 2},
		{"unversioned", 0, 2},
	} {
		t.Run(tt.file, func(t *testing.T) {
			status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": xformFile(t, "shapes/"+tt.file+".xml"), "purpose": "DATA_COLLECTION"})
			langs, ok := out["languages"].([]any)
			if status != 200 || !ok || len(langs) != tt.languages {
				t.Fatalf("registerForm: %d %v", status, out)
			}
			doc := xformFile(t, "shapes/"+tt.file+".instance.xml")
			instance := doc[strings.Index(doc, "uuid:") : strings.Index(doc, "uuid:")+len("uuid:5b0a2c7e-1111-4c2d-8e9f-0a1b2c3d4e01")]
			as := func(path string) string { return strings.Replace(doc, instance, instance[:len(instance)-2]+path, 1) }

			status, out = b.action(t, "submitForm", "school", map[string]any{"xml": as("a1")})
			if status != 200 || out["status"] != "accepted" || out["responseId"] == nil {
				t.Errorf("submitForm: %d %v", status, out)
			}
			if resp, msg := b.submit(t, token, as("o1"), nil); resp.StatusCode != 201 || msg.Message != "Form received" {
				t.Errorf("OpenRosa: %d %+v", resp.StatusCode, msg)
			}
			id := b.hasuraInsert(t, as("h1"), "school")
			b.waitFor(t, "the Hasura insert to be processed", func() bool {
				return b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND status <> 'received'`, id) == 1
			})
			if n := b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'accepted'`, id); n != 1 {
				t.Errorf("Hasura insert not accepted")
			}
			if tt.file == "unversioned" {
				// Version "" is ___ in form URLs, as in ODK Central.
				resp, err := b.client.Get(b.url + "/openrosa/key/" + token + "/forms/sports_day/___.xml")
				if err != nil {
					t.Fatal(err)
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(got) != xformFile(t, "shapes/unversioned.xml") {
					t.Errorf("download of the unversioned form: %d", resp.StatusCode)
				}
			}
			for _, path := range []string{"a1", "o1", "h1"} {
				if n := b.count(t, `SELECT count(*) FROM answer a JOIN response r ON r.id = a.response_id WHERE r.instance_id = $1`,
					instance[:len(instance)-2]+path); n != tt.answers {
					t.Errorf("%s: %d answers, want %d", path, n, tt.answers)
				}
			}
		})
	}
}
