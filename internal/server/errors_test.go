package server_test

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/pgtest"
)

// Every OpenRosa answer is an OpenRosaResponse document — the rate
// limiter's 429 too — so ODK Collect shows the message instead of failing
// to parse JSON.
func TestOpenRosaAnswersEveryErrorInXML(t *testing.T) {
	t.Parallel()
	b := setupWith(t, pgtest.New(t), discard, func(c *config.Config) { c.PublicRate, c.PublicBurst = 0.001, 1 })
	get := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, b.url+"/openrosa/key/no-such-token/formList", nil)
		req.Header.Set("X-OpenRosa-Version", "1.0")
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	for _, tt := range []struct {
		name       string
		wantStatus int
	}{
		{"unknown token", http.StatusUnauthorized},
		{"over the per-IP limit", http.StatusTooManyRequests},
	} {
		resp := get()
		raw, _ := io.ReadAll(resp.Body)
		var doc openRosaResponse
		if got, want := resp.StatusCode, tt.wantStatus; got != want {
			t.Errorf("%s: status %d, want %d", tt.name, got, want)
		}
		if err := xml.Unmarshal(raw, &doc); err != nil || doc.Message == "" {
			t.Errorf("%s: body %q is not an OpenRosaResponse with a message (%v)", tt.name, raw, err)
		}
		if got, want := resp.Header.Get("Content-Type"), "text/xml; charset=utf-8"; got != want {
			t.Errorf("%s: Content-Type %q, want %q", tt.name, got, want)
		}
		if resp.Header.Get("X-OpenRosa-Version") != "1.0" {
			t.Errorf("%s: no X-OpenRosa-Version header", tt.name)
		}
		if tt.wantStatus == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", tt.name)
		}
	}
}

// A method an OpenRosa route does not take answers an OpenRosaResponse
// too, with Allow (chi's default was a 405 with an empty body).
func TestOpenRosaMethodNotAllowedInXML(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req, _ := http.NewRequest(http.MethodPut, b.url+"/openrosa/key/no-such-token/submission", nil)
	req.Header.Set("X-OpenRosa-Version", "1.0")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := resp.StatusCode, http.StatusMethodNotAllowed; got != want {
		t.Errorf("status %d, want %d", got, want)
	}
	var doc openRosaResponse
	if err := xml.Unmarshal(raw, &doc); err != nil || doc.Message == "" {
		t.Errorf("body %q is not an OpenRosaResponse with a message (%v)", raw, err)
	}
	if got, want := resp.Header.Get("Content-Type"), "text/xml; charset=utf-8"; got != want {
		t.Errorf("Content-Type %q, want %q", got, want)
	}
	if got := resp.Header.Get("Allow"); !strings.Contains(got, http.MethodPost) || !strings.Contains(got, http.MethodHead) {
		t.Errorf("Allow %q, want HEAD and POST", got)
	}
}

// An action that cannot run because the database is down answers a 4xx
// with code UNAVAILABLE and Retry-After (Hasura turns a 5xx into a generic
// "internal error" for the app); event deliveries keep 503. That holds for
// every action, not only those whose store code translates the driver's
// error: exportLink, registerStudent and schoolAssessments answered 500
// INTERNAL.
func TestActionWhoseDatabaseIsDownAnswersUnavailableAs4xx(t *testing.T) {
	t.Parallel()
	dead, err := pgxpool.New(t.Context(), "postgres://postgres@127.0.0.1:1/shala?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	b := setupWithPool(t, dead)
	school := "7b0a1c5e-4f7c-4f33-9e55-1d2a3b4c5d6e"
	for _, tt := range []struct {
		name, role string
		input      map[string]any
	}{
		{"ping", "school", map[string]any{"message": "नमस्ते"}},
		{"exportLink", "admin", map[string]any{"formId": "household_survey"}},
		{"registerStudent", "school", map[string]any{"student": map[string]any{"name": "रमेश"}}},
		{"schoolAssessments", "school", map[string]any{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, _ := json.Marshal(map[string]any{
				"action": map[string]any{"name": tt.name}, "input": tt.input,
				"session_variables": map[string]any{"x-hasura-role": tt.role, "x-hasura-user-id": "user-1", "x-hasura-school-id": school},
				"request_query":     "mutation { " + tt.name + " }",
			})
			resp := b.post(t, "/actions/"+tt.name, body, nil)
			var out map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Fatal(err)
			}
			if got, want := resp.StatusCode, hasura.ActionRetryStatus; got != want {
				t.Errorf("status %d, want %d (%v)", got, want, out)
			}
			if got, want := code(out), "UNAVAILABLE"; got != want {
				t.Errorf("code %v, want %s", got, want)
			}
			if msg, _ := out["message"].(string); !strings.Contains(msg, "try again") {
				t.Errorf("message %q, want one that says to try again", msg)
			}
			if resp.Header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})
	}
}

// Each route takes the bodies its data allows: a submission of megabytes
// (the database stores up to 10 MiB) reaches submitForm, while ping keeps
// the small webhook limit.
func TestBodyLimitPerRoute(t *testing.T) {
	t.Parallel()
	b := setup(t)                                                                           // SHALA_MAX_BODY_BYTES 64 KiB
	big := "<data id=\"household_survey\">" + strings.Repeat("<x>a</x>", 1<<17) + "</data>" // 1 MiB
	status, out := b.action(t, "submitForm", "school", map[string]any{"xml": big})
	if status == http.StatusRequestEntityTooLarge {
		t.Errorf("submitForm with a 1 MiB document: 413 %v, want it to reach the pipeline", out)
	}
	status, out = b.action(t, "registerForm", "admin", map[string]any{"xform": big, "purpose": "DATA_COLLECTION"})
	if status == http.StatusRequestEntityTooLarge {
		t.Errorf("registerForm with a 1 MiB definition: 413 %v, want it to reach the catalog", out)
	}
	status, out = b.action(t, "ping", "school", map[string]any{"message": strings.Repeat("x", 70<<10)})
	if status != http.StatusRequestEntityTooLarge || code(out) != "BODY_TOO_LARGE" {
		t.Errorf("ping with 70 KiB: %d %v, want 413 BODY_TOO_LARGE", status, out)
	}
}
