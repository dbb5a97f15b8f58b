package server_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/sheets/sheetstest"
)

const jwtSecret = `{"type":"HS256","key":"a-hasura-jwt-key-of-at-least-32-characters"}`

// setupExports is setup with a Google Sheets test server configured and
// Hasura JWTs verified; mint makes a token for a role.
func setupExports(t *testing.T) (*bundle, *sheetstest.Server, func(role string) string) {
	t.Helper()
	sheetsSrv := sheetstest.New(t)
	cfg := apptest.Config(t)
	cfg.WebhookSecret = secret
	cfg.SheetsCredentials = config.Secret(sheetsSrv.CredentialsJSON())
	cfg.SheetsURL = sheetsSrv.URL
	cfg.SheetsWrites = 0
	cfg.JWTSecret = jwtSecret
	pool := pgtest.New(t)
	a := apptest.New(t, cfg, app.Options{Pool: pool})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	jc, err := auth.ParseConfig(jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.NewIssuer(jc, nil, "", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(role string) string {
		tok, err := iss.Mint("user-1", []string{role}, role, nil, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return &bundle{app: a, jobs: apptest.JobsFinished(t, a), pool: pool, queue: a.Queue, url: srv.URL, reg: a.Registry, client: srv.Client()}, sheetsSrv, mint
}

func (b *bundle) get(t *testing.T, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.url+path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestExports(t *testing.T) {
	t.Parallel()
	b, sheetsSrv, mint := setupExports(t)
	const book = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
	sheetsSrv.AddSpreadsheet(book)
	b.registerHousehold(t)
	status, out := b.action(t, "submitForm", "state_admin", map[string]any{"xml": xformFile(t, "household_submission.xml")})
	if status != 200 || out["responseId"] == nil {
		t.Fatalf("submitForm: %d %v", status, out)
	}
	responseID := out["responseId"].(string)

	t.Run("connectSheet", func(t *testing.T) {
		if status, out := b.action(t, "connectSheet", "state_admin", map[string]any{"formId": "household_survey",
			"spreadsheetId": book, "sheetName": "Responses"}); status != 403 {
			t.Errorf("as state_admin: got %d %v, want 403", status, out)
		}
		if status, out := b.action(t, "connectSheet", "admin", map[string]any{"formId": "household_survey",
			"spreadsheetId": "not a sheet", "sheetName": "Responses"}); status != 400 || code(out) != "INVALID_INPUT" ||
			!strings.HasPrefix(fmt.Sprint(out["message"]), "spreadsheetId:") {
			t.Errorf("bad spreadsheet id: got %d %v, want 400 naming spreadsheetId", status, out)
		}
		if status, out := b.action(t, "connectSheet", "admin", map[string]any{"formId": "no_such_form",
			"spreadsheetId": book, "sheetName": "Responses"}); status != 404 {
			t.Errorf("unknown form: got %d %v, want 404", status, out)
		}
		status, out := b.action(t, "connectSheet", "admin", map[string]any{"formId": "household_survey",
			"spreadsheetId": "https://docs.google.com/spreadsheets/d/" + book + "/edit#gid=0", "sheetName": "Responses"})
		if status != 200 || out["spreadsheetId"] != book || out["shareWith"] != sheetsSrv.Account() || out["enabled"] != true {
			t.Fatalf("connectSheet: got %d %v", status, out)
		}
		b.startWorkers(t)
		b.waitFor(t, "the response in the sheet", func() bool { return len(sheetsSrv.Rows(book, "Responses")) == 2 })
		rows := sheetsSrv.Rows(book, "Responses")
		if rows[0][0] != "KEY" || rows[1][0] != responseID {
			t.Errorf("sheet: got %v, want the header and the response", rows)
		}
		b.waitFor(t, "rows_written", func() bool {
			return b.count(t, `SELECT rows_written FROM sheet_export WHERE spreadsheet_id = $1`, book) == 1
		})
	})

	t.Run("CSV with a signed link", func(t *testing.T) {
		status, out := b.action(t, "exportLink", "state_admin", map[string]any{"formId": "household_survey"})
		if status != 200 {
			t.Fatalf("exportLink: %d %v", status, out)
		}
		link, err := url.Parse(out["url"].(string))
		if err != nil || link.Host != "shala.example" || link.Path != "/exports/household_survey.csv" {
			t.Fatalf("url %v: %v", out["url"], err)
		}
		if _, err := time.Parse(time.RFC3339, out["expiresAt"].(string)); err != nil {
			t.Errorf("expiresAt %v: %v", out["expiresAt"], err)
		}
		resp, body := b.get(t, link.RequestURI(), nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="household_survey.csv"`) {
			t.Fatalf("GET link: %d %v %s", resp.StatusCode, resp.Header, body)
		}
		if !bytes.HasPrefix(body, []byte("\xEF\xBB\xBF\"KEY\",\"SubmissionDate\",\"FormVersion\",")) || !strings.Contains(string(body), responseID) {
			t.Errorf("body: got %.300q", body)
		}
		q := link.Query()
		q.Set("since", "2000-01-01T00:00:00Z")
		if resp, body := b.get(t, link.Path+"?"+q.Encode(), nil); resp.StatusCode != 403 || !strings.Contains(string(body), "BAD_SIGNATURE") {
			t.Errorf("tampered link: got %d %s, want 403 BAD_SIGNATURE", resp.StatusCode, body)
		}
		if status, out := b.action(t, "exportLink", "school", map[string]any{"formId": "household_survey"}); status != 403 {
			t.Errorf("exportLink as school: got %d %v, want 403", status, out)
		}
		if status, out := b.action(t, "exportLink", "admin", map[string]any{"formId": "nope"}); status != 404 {
			t.Errorf("exportLink of an unknown form: got %d %v, want 404", status, out)
		}
	})

	t.Run("CSV with a Hasura JWT", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			hdr    map[string]string
			status int
		}{
			{"admin", map[string]string{"Authorization": "Bearer " + mint("admin")}, 200},
			{"state_admin", map[string]string{"Authorization": "Bearer " + mint("state_admin")}, 200},
			{"school", map[string]string{"Authorization": "Bearer " + mint("school")}, 403},
			{"a role the token does not allow", map[string]string{"Authorization": "Bearer " + mint("school"), "X-Hasura-Role": "admin"}, 403},
			{"no credentials", nil, 401},
			{"a forged token", map[string]string{"Authorization": "Bearer " + mint("admin") + "x"}, 401},
		} {
			resp, body := b.get(t, "/exports/household_survey.csv?choices=labels", tt.hdr)
			if resp.StatusCode != tt.status {
				t.Errorf("%s: got %d %s, want %d", tt.name, resp.StatusCode, body, tt.status)
			}
		}
		admin := map[string]string{"Authorization": "Bearer " + mint("admin")}
		if resp, body := b.get(t, "/exports/no_such_form.csv", admin); resp.StatusCode != 404 || !strings.Contains(string(body), "NOT_FOUND") {
			t.Errorf("unknown form: got %d %s", resp.StatusCode, body)
		}
		if resp, body := b.get(t, "/exports/household_survey.csv?choices=codes", admin); resp.StatusCode != 400 {
			t.Errorf("bad choices: got %d %s", resp.StatusCode, body)
		}
		if resp, body := b.get(t, "/exports/household_survey.csv?since=yesterday", admin); resp.StatusCode != 400 {
			t.Errorf("bad since: got %d %s", resp.StatusCode, body)
		}
		// As typed into a browser: the offset's '+' is not encoded (a query
		// decodes it as a space).
		if resp, body := b.get(t, "/exports/household_survey.csv?since=2000-01-01T05:30:00+05:30", admin); resp.StatusCode != 200 ||
			!strings.Contains(string(body), responseID) {
			t.Errorf("since with an unencoded +05:30: got %d %.300s, want the response", resp.StatusCode, body)
		}
		if resp, body := b.get(t, "/exports/household_survey.csv?since=2999-01-01T00:00:00Z", admin); resp.StatusCode != 200 ||
			strings.Count(string(body), "\r\n") != 1 {
			t.Errorf("since after every response: got %d %q, want the header only", resp.StatusCode, body)
		}
	})
}
