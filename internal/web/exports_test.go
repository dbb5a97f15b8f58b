package web_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/web"
)

// The refusals happen before the database is touched, so these run
// without one; the full path (JWT, links, CSV body) is tested through the
// app in internal/server.
func TestExportCSVRefusals(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	links := export.NewLinks([]byte("a-link-key-of-at-least-32-characters!"), "https://shala.example")
	slots := make(chan struct{}, 1)
	r := chi.NewRouter()
	r.Method(http.MethodGet, "/exports/{file}", web.ExportCSV(web.ExportDeps{Log: slog.New(slog.DiscardHandler),
		Links: links, Slots: slots, Now: func() time.Time { return now }}))
	get := func(target string) (*httptest.ResponseRecorder, string) {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
		var body struct {
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		return w, body.Extensions.Code
	}
	link := func(form string, at time.Time) string {
		l, _ := links.Sign(form, nil, at)
		u, _ := url.Parse(l)
		return u.RequestURI()
	}

	for _, tt := range []struct {
		name, target string
		status       int
		code         string
	}{
		{"not a .csv", "/exports/village_survey.xlsx", 404, "NOT_FOUND"},
		{"not a form id", "/exports/%22%0d%0aX:y.csv", 404, "NOT_FOUND"},
		{"no credentials and no JWT configured", "/exports/village_survey.csv", 401, "UNAUTHORIZED"},
		{"a link for another form", "/exports/village_survey.csv?" + mustQuery(link("other_form", now)), 403, "BAD_SIGNATURE"},
		{"an expired link", link("village_survey", now.Add(-2*time.Hour)), 410, "LINK_EXPIRED"},
		{"bad choices", link("village_survey", now) + "&choices=codes", 400, "INVALID_INPUT"},
	} {
		w, code := get(tt.target)
		if w.Code != tt.status || code != tt.code {
			t.Errorf("%s: got %d %s (%s), want %d %s", tt.name, w.Code, code, w.Body, tt.status, tt.code)
		}
		if w.Header().Get("Content-Disposition") != "" {
			t.Errorf("%s: an error carries Content-Disposition %q", tt.name, w.Header().Get("Content-Disposition"))
		}
	}

	slots <- struct{}{} // another export is streaming
	w, code := get(link("village_survey", now))
	if w.Code != 429 || code != "RATE_LIMITED" || w.Header().Get("Retry-After") == "" {
		t.Errorf("all slots taken: got %d %s %v, want 429 RATE_LIMITED with Retry-After", w.Code, code, w.Header())
	}
}

func mustQuery(requestURI string) string {
	u, err := url.Parse(requestURI)
	if err != nil {
		panic(err)
	}
	return u.RawQuery
}
