package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/server"
)

const operatorPassword = "operator-test-password"

// An operator finds a discarded job in River's UI and retries it; nobody
// else gets in, and a page on another site cannot make the operator's
// browser retry or delete jobs.
func TestOperatorRetriesADiscardedJobInRiverUI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	res, err := b.queue.Insert(ctx, ping.PongArgs{PingID: uuid.New()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := res.Job.ID
	if _, err := b.pool.Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = now(), attempt = max_attempts,
		errors = ARRAY['{"at": "2026-11-22T00:00:00Z", "attempt": 25, "error": "provider down"}'::jsonb] WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, user, pass string, body string, hdr map[string]string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, b.url+path, strings.NewReader(body))
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out), resp.Header
	}

	for _, c := range []struct{ name, user, pass string }{
		{"no credentials", "", ""},
		{"wrong password", server.OperatorUser, "guess-guess-guess"},
		{"wrong user", "admin", operatorPassword},
	} {
		status, _, hdr := call(http.MethodGet, "/riverui/api/jobs?state=discarded", c.user, c.pass, "", nil)
		if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: status %d, WWW-Authenticate %q; want 401 asking for basic auth", c.name, status, hdr.Get("WWW-Authenticate"))
		}
	}

	status, page, _ := call(http.MethodGet, "/riverui/", server.OperatorUser, operatorPassword, "", nil)
	if status != http.StatusOK || !strings.Contains(page, "<html") {
		t.Fatalf("UI page: status %d, body %.200q", status, page)
	}

	status, body, _ := call(http.MethodGet, "/riverui/api/jobs?state=discarded", server.OperatorUser, operatorPassword, "", nil)
	type job struct {
		ID     json.Number `json:"id"`
		Kind   string      `json:"kind"`
		Errors []struct {
			Error string `json:"error"`
		} `json:"errors"`
	}
	var list struct {
		Data []job `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &list); status != http.StatusOK || err != nil {
		t.Fatalf("discarded jobs: status %d, %v: %.300s", status, err, body)
	}
	if len(list.Data) != 1 || list.Data[0].ID.String() != strconv.FormatInt(id, 10) || list.Data[0].Kind != "ping.pong" {
		t.Fatalf("discarded jobs: %+v, want job %d (ping.pong)", list.Data, id)
	}
	status, body, _ = call(http.MethodGet, "/riverui/api/jobs/"+strconv.FormatInt(id, 10), server.OperatorUser, operatorPassword, "", nil)
	var detail job
	if err := json.Unmarshal([]byte(body), &detail); status != http.StatusOK || err != nil {
		t.Fatalf("job %d: status %d, %v: %.300s", id, status, err, body)
	}
	if len(detail.Errors) != 1 || detail.Errors[0].Error != "provider down" {
		t.Errorf("job %d shows errors %+v, want the one it failed with", id, detail.Errors)
	}

	retry := `{"ids": ["` + strconv.FormatInt(id, 10) + `"]}`
	status, _, _ = call(http.MethodPost, "/riverui/api/jobs/retry", server.OperatorUser, operatorPassword, retry,
		map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	if status != http.StatusForbidden {
		t.Errorf("cross-site retry: status %d, want 403", status)
	}
	if state := b.jobState(t, id); state != "discarded" {
		t.Fatalf("after the refused cross-site retry the job is %s", state)
	}
	status, body, _ = call(http.MethodPost, "/riverui/api/jobs/retry", server.OperatorUser, operatorPassword, retry,
		map[string]string{"Sec-Fetch-Site": "same-origin"})
	if status != http.StatusOK {
		t.Fatalf("retry: status %d: %s", status, body)
	}
	if state := b.jobState(t, id); state != "available" {
		t.Errorf("after retry the job is %s, want available", state)
	}
}

func (b *bundle) jobState(t *testing.T, id int64) string {
	t.Helper()
	var state string
	if err := b.pool.QueryRow(t.Context(), `SELECT state FROM river_job WHERE id = $1`, id).Scan(&state); err != nil {
		t.Fatal(err)
	}
	return state
}

// Without an operator password there is no UI at all.
func TestNoOperatorPasswordNoRiverUI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := apptest.Config(t)
	cfg.OperatorPassword = ""
	h := apptest.New(t, cfg, app.Options{Pool: b.pool}).Handler()
	for _, path := range []string{"/riverui/", "/riverui/api/jobs"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.SetBasicAuth(server.OperatorUser, operatorPassword)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, rec.Code)
		}
	}
}
