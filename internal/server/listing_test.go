package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/progress"
)

const listingJWTSecret = `{"type": "HS256", "key": "listing-test-signing-key-of-32-characters+"}`

// listingBundle is shala with a JWT secret, serving two Shimla schools with
// an assessment open to both and a result of school A's.
type listingBundle struct {
	url       string
	client    *http.Client
	pool      *pgxpool.Pool
	a, b      uuid.UUID
	student   uuid.UUID
	x         uuid.UUID
	issuer    *auth.Issuer
	jwtConfig *auth.Config
}

func setupListing(t *testing.T, withSecret bool) *listingBundle {
	t.Helper()
	pool := pgtest.New(t)
	cfg := apptest.Config(t)
	cfg.WebhookSecret = secret
	if withSecret {
		cfg.JWTSecret = config.Secret(listingJWTSecret)
	}
	a := apptest.New(t, cfg, app.Options{Pool: pool})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	jc, err := auth.ParseConfig(listingJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.NewIssuer(jc, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	lb := &listingBundle{url: srv.URL, client: srv.Client(), pool: pool, issuer: iss, jwtConfig: jc}
	ctx := context.Background()
	q := func(dst *uuid.UUID, sql string, args ...any) {
		t.Helper()
		if err := pool.QueryRow(ctx, sql, args...).Scan(dst); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	q(&lb.a, `INSERT INTO school (udise, name, district, block, session) VALUES ('02110100001', 'GSSS Kufri', 'Shimla', 'Mashobra', 'W') RETURNING id`)
	q(&lb.b, `INSERT INTO school (udise, name, district, block, session) VALUES ('02110100002', 'GSSS Fagu', 'Shimla', 'Theog', 'W') RETURNING id`)
	q(&lb.student, `INSERT INTO student (school_id, name, gender, grade, section) VALUES ($1, 'आरव', 'MALE', 6, 'A') RETURNING id`, lb.a)
	var other, sub uuid.UUID
	q(&other, `INSERT INTO student (school_id, name, gender, grade, section) VALUES ($1, 'प्रिया', 'FEMALE', 6, 'A') RETURNING id`, lb.b)
	q(&sub, `INSERT INTO form_submission (xml, instance_id, status, source) VALUES ('<assessment/>', 'uuid:b1', 'accepted', 'action') RETURNING id`)
	if _, err := pool.Exec(ctx, `INSERT INTO academic_year (id, starts_on, ends_on, is_current) VALUES ('2026-27', '2026-04-01', '2027-03-31', true)`); err != nil {
		t.Fatal(err)
	}
	q(&lb.x, `INSERT INTO assessment (submission_id, builder_instance_id, name, type, academic_year, unit_type, evaluation, outcome, total_marks, pass_percent)
		VALUES ($1, 'uuid:b1', 'SA-1 गणित', 'SA1', '2026-27', 'NONE', 'MARKS', 'TSP', 100, 33) RETURNING id`, sub)
	for _, sql := range []string{
		`INSERT INTO assessment_deadline (assessment_id, district, session, due_at) VALUES ($1, 'Shimla', 'W', now() + interval '30 days')`,
		`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 6, 'MATHEMATICS')`,
	} {
		if _, err := pool.Exec(ctx, sql, lb.x); err != nil {
			t.Fatal(err)
		}
	}
	lb.write(t, lb.a, lb.student, 72)
	lb.write(t, lb.b, other, 10)
	return lb
}

func (lb *listingBundle) write(t *testing.T, school, student uuid.UUID, marks int) {
	t.Helper()
	if _, err := lb.pool.Exec(context.Background(), `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, present, marks)
		VALUES ($1, $2, $3, 'MATHEMATICS', true, $4) ON CONFLICT (assessment_id, student_id, subject, component_id) DO UPDATE SET marks = EXCLUDED.marks`,
		lb.x, school, student, marks); err != nil {
		t.Fatal(err)
	}
}

func (lb *listingBundle) token(t *testing.T, roles []string, defaultRole string, vars map[string]string) string {
	t.Helper()
	tok, err := lb.issuer.Mint("teacher-1", roles, defaultRole, vars, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (lb *listingBundle) schoolToken(t *testing.T, school uuid.UUID) string {
	return lb.token(t, []string{"school"}, "school", map[string]string{"x-hasura-school-id": school.String(), "x-hasura-user-id": "teacher-1"})
}

func (lb *listingBundle) get(t *testing.T, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	return getAssessments(t, lb.client, lb.url, hdr)
}

// getAssessments GETs the REST listing of the shala at base with headers hdr.
func getAssessments(t *testing.T, client *http.Client, base string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/schools/me/assessments", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
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

func (lb *listingBundle) action(t *testing.T, session map[string]string, input map[string]any) (int, []byte) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"action": map[string]string{"name": "schoolAssessments"}, "input": input,
		"session_variables": session, "request_query": "query { schoolAssessments { etag } }"})
	req, _ := http.NewRequest(http.MethodPost, lb.url+"/actions/schoolAssessments", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hasura.SecretHeader, secret)
	resp, err := lb.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func decodeListing(t *testing.T, body []byte) progress.Listing {
	t.Helper()
	var l progress.Listing
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("listing %s: %v", body, err)
	}
	return l
}

// studentsWithResults is the one number that tells the schools' listings apart.
func studentsWithResults(l progress.Listing) string {
	var parts []string
	for _, a := range l.Assessments {
		parts = append(parts, fmt.Sprintf("%s %d/%d passed %d", a.Name, a.Totals.Students, a.Totals.Enrolled, a.Totals.Passed))
	}
	return strings.Join(parts, "; ")
}

func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	return e.Extensions.Code
}

func TestSchoolAssessmentsActionListsTheSessionsSchoolOnly(t *testing.T) {
	t.Parallel()
	lb := setupListing(t, false)
	sessionA := map[string]string{"x-hasura-role": "school", "x-hasura-school-id": lb.a.String(), "x-hasura-user-id": "t1"}

	status, body := lb.action(t, sessionA, map[string]any{})
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	la := decodeListing(t, body)
	if got, want := studentsWithResults(la), "SA-1 गणित 1/1 passed 1"; got != want || la.NotModified || la.ETag == "" {
		t.Errorf("school A: %q notModified %v etag %q, want %q", got, la.NotModified, la.ETag, want)
	}
	// The action's JSON has every field of the GraphQL type, none null.
	if !strings.Contains(string(body), `"classes":[{"grade":6,"section":"A","enrolled":1,"final":false,"subjects":[{"subject":"MATHEMATICS","students":1`) {
		t.Errorf("body %s lacks the class's progress", body)
	}

	status, body = lb.action(t, map[string]string{"x-hasura-role": "school", "x-hasura-school-id": lb.b.String()}, map[string]any{})
	lbListing := decodeListing(t, body)
	if got, want := studentsWithResults(lbListing), "SA-1 गणित 1/1 passed 0"; status != http.StatusOK || got != want {
		t.Errorf("school B: %d %q, want %q", status, got, want)
	}

	t.Run("the current etag answers notModified", func(t *testing.T) {
		for _, etag := range []string{la.ETag, `"` + la.ETag + `"`, `W/"` + la.ETag + `"`} {
			status, body := lb.action(t, sessionA, map[string]any{"ifNoneMatch": etag})
			l := decodeListing(t, body)
			if status != http.StatusOK || !l.NotModified || l.ETag != la.ETag || !strings.Contains(string(body), `"assessments":[]`) {
				t.Errorf("ifNoneMatch %s: %d %s, want notModified with an empty list", etag, status, body)
			}
		}
	})
	t.Run("another school's etag does not", func(t *testing.T) {
		status, body := lb.action(t, sessionA, map[string]any{"ifNoneMatch": lbListing.ETag})
		if l := decodeListing(t, body); status != http.StatusOK || l.NotModified || len(l.Assessments) != 1 {
			t.Errorf("school B's etag for school A: %d %s", status, body)
		}
	})
	t.Run("a write makes the etag stale", func(t *testing.T) {
		lb.write(t, lb.a, lb.student, 5)
		status, body := lb.action(t, sessionA, map[string]any{"ifNoneMatch": la.ETag})
		l := decodeListing(t, body)
		if status != http.StatusOK || l.NotModified || l.ETag == la.ETag || studentsWithResults(l) != "SA-1 गणित 1/1 passed 0" {
			t.Errorf("after a write: %d %s", status, body)
		}
	})
	t.Run("only the school role, only with a school", func(t *testing.T) {
		for _, tt := range []struct {
			session map[string]string
			code    string
		}{
			{map[string]string{"x-hasura-role": "state_admin", "x-hasura-school-id": lb.a.String()}, "FORBIDDEN"},
			{map[string]string{"x-hasura-role": "district_admin", "x-hasura-district": "Shimla"}, "FORBIDDEN"},
			{map[string]string{"x-hasura-role": "school"}, "NO_SCHOOL"},
			{map[string]string{"x-hasura-role": "school", "x-hasura-school-id": "not-a-uuid"}, "NO_SCHOOL"},
			{map[string]string{"x-hasura-role": "school", "x-hasura-school-id": uuid.NewString()}, "NO_SUCH_SCHOOL"},
		} {
			status, body := lb.action(t, tt.session, map[string]any{})
			if status < 400 || status >= 500 || errorCode(t, body) != tt.code {
				t.Errorf("session %v: %d %s, want %s", tt.session, status, body, tt.code)
			}
		}
	})
	t.Run("an input field cannot choose the school", func(t *testing.T) {
		status, body := lb.action(t, sessionA, map[string]any{"schoolId": lb.b.String()})
		if status == http.StatusOK && decodeListing(t, body).ETag == lbListing.ETag {
			t.Errorf("school A's session with schoolId B got school B's listing: %s", body)
		}
	})
}

func TestSchoolAssessmentsRESTAuthorisesByTheHasuraJWT(t *testing.T) {
	t.Parallel()
	lb := setupListing(t, true)
	tokA := lb.schoolToken(t, lb.a)

	resp, body := lb.get(t, map[string]string{"Authorization": "Bearer " + tokA})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	la := decodeListing(t, body)
	if got, want := studentsWithResults(la), "SA-1 गणित 1/1 passed 1"; got != want {
		t.Errorf("school A: %q, want %q", got, want)
	}
	etag := resp.Header.Get("ETag")
	if etag != `"`+la.ETag+`"` || resp.Header.Get("Cache-Control") != "private, no-cache" || !strings.Contains(resp.Header.Get("Vary"), "Authorization") {
		t.Errorf("headers %v, want ETag %q, private no-cache, Vary Authorization", resp.Header, la.ETag)
	}

	t.Run("If-None-Match answers 304", func(t *testing.T) {
		for _, inm := range []string{etag, "W/" + etag, `"stale", ` + etag, "*"} {
			resp, body := lb.get(t, map[string]string{"Authorization": "Bearer " + tokA, "If-None-Match": inm})
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Errorf("If-None-Match %s: %d %q ETag %q, want 304, no body, the same ETag", inm, resp.StatusCode, body, resp.Header.Get("ETag"))
			}
		}
		resp, _ := lb.get(t, map[string]string{"Authorization": "Bearer " + tokA, "If-None-Match": `"stale"`})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("a stale ETag: %d, want 200", resp.StatusCode)
		}
	})
	t.Run("school B's token gets school B's listing", func(t *testing.T) {
		resp, body := lb.get(t, map[string]string{"Authorization": "Bearer " + lb.schoolToken(t, lb.b), "If-None-Match": etag})
		if resp.StatusCode != http.StatusOK || studentsWithResults(decodeListing(t, body)) != "SA-1 गणित 1/1 passed 0" {
			t.Errorf("school B with A's ETag: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("X-Hasura-Role chooses among the allowed roles", func(t *testing.T) {
		multi := lb.token(t, []string{"school", "state_admin"}, "state_admin", map[string]string{"x-hasura-school-id": lb.a.String()})
		if resp, body := lb.get(t, map[string]string{"Authorization": "Bearer " + multi}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("default role state_admin: %d %s, want 403", resp.StatusCode, body)
		}
		if resp, body := lb.get(t, map[string]string{"Authorization": "Bearer " + multi, "X-Hasura-Role": "school"}); resp.StatusCode != http.StatusOK {
			t.Errorf("X-Hasura-Role school: %d %s, want 200", resp.StatusCode, body)
		}
		if resp, body := lb.get(t, map[string]string{"Authorization": "Bearer " + tokA, "X-Hasura-Role": "state_admin"}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a role the token does not allow: %d %s, want 403", resp.StatusCode, body)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		past, err := auth.NewIssuer(lb.jwtConfig, nil, "", func() time.Time { return time.Now().Add(-2 * time.Hour) })
		if err != nil {
			t.Fatal(err)
		}
		expired, err := past.Mint("t", []string{"school"}, "school", map[string]string{"x-hasura-school-id": lb.a.String()}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		otherKey, err := auth.ParseConfig(`{"type": "HS256", "key": "another-signing-key-of-32-characters-long"}`)
		if err != nil {
			t.Fatal(err)
		}
		forger, err := auth.NewIssuer(otherKey, nil, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := forger.Mint("t", []string{"school"}, "school", map[string]string{"x-hasura-school-id": lb.a.String()}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		noSchool := lb.token(t, []string{"school"}, "school", nil)
		for _, tt := range []struct {
			name   string
			auth   string
			status int
			code   string
		}{
			{"no token", "", http.StatusUnauthorized, "UNAUTHORIZED"},
			{"not a bearer token", "Basic dGVhY2hlcjpwdw==", http.StatusUnauthorized, "UNAUTHORIZED"},
			{"garbage", "Bearer not.a.jwt", http.StatusUnauthorized, "UNAUTHORIZED"},
			{"expired", "Bearer " + expired, http.StatusUnauthorized, "UNAUTHORIZED"},
			{"signed with another key", "Bearer " + forged, http.StatusUnauthorized, "UNAUTHORIZED"},
			{"no school in the claims", "Bearer " + noSchool, http.StatusForbidden, "NO_SCHOOL"},
			{"a district admin", "Bearer " + lb.token(t, []string{"district_admin"}, "district_admin", map[string]string{"x-hasura-district": "Shimla"}),
				http.StatusForbidden, "FORBIDDEN"},
		} {
			resp, body := lb.get(t, map[string]string{"Authorization": tt.auth})
			if resp.StatusCode != tt.status || errorCode(t, body) != tt.code {
				t.Errorf("%s: %d %s, want %d %s", tt.name, resp.StatusCode, body, tt.status, tt.code)
			}
			if tt.status == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
			}
			if strings.Contains(string(body), "MATHEMATICS") {
				t.Errorf("%s: the refusal carries listing data: %s", tt.name, body)
			}
		}
	})
	t.Run("a write makes the ETag stale", func(t *testing.T) {
		lb.write(t, lb.a, lb.student, 5)
		resp, body := lb.get(t, map[string]string{"Authorization": "Bearer " + tokA, "If-None-Match": etag})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag || studentsWithResults(decodeListing(t, body)) != "SA-1 गणित 1/1 passed 0" {
			t.Errorf("after a write: %d ETag %s %s", resp.StatusCode, resp.Header.Get("ETag"), body)
		}
	})
}

func TestSchoolAssessmentsRESTWithoutAJWTSecretIsUnauthorized(t *testing.T) {
	t.Parallel()
	lb := setupListing(t, false)
	resp, body := lb.get(t, map[string]string{"Authorization": "Bearer " + lb.schoolToken(t, lb.a)})
	if resp.StatusCode != http.StatusUnauthorized || errorCode(t, body) != "UNAUTHORIZED" {
		t.Errorf("no HASURA_GRAPHQL_JWT_SECRET: %d %s, want 401", resp.StatusCode, body)
	}
}

// TestSchoolAssessmentsWhileTheDatabaseIsDown: the listing cannot be read
// while Postgres is down; the app is told to try again (the action as
// 429 UNAVAILABLE with Retry-After, which Hasura passes on; the REST
// listing as 503 with Retry-After), not handed a bare "internal error".
func TestSchoolAssessmentsWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	dead, err := pgxpool.New(t.Context(), "postgres://postgres@127.0.0.1:1/shala?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	b := setupWith(t, dead, discard, func(c *config.Config) { c.JWTSecret = config.Secret(listingJWTSecret) })
	school := uuid.New()
	for _, ifNoneMatch := range []any{nil, "some-etag"} {
		body, _ := json.Marshal(map[string]any{"action": map[string]string{"name": "schoolAssessments"},
			"input":             map[string]any{"ifNoneMatch": ifNoneMatch},
			"session_variables": map[string]string{"x-hasura-role": "school", "x-hasura-school-id": school.String()},
			"request_query":     "query { schoolAssessments { etag } }"})
		req, _ := http.NewRequest(http.MethodPost, b.url+"/actions/schoolAssessments", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(hasura.SecretHeader, secret)
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != hasura.ActionRetryStatus || errorCode(t, out) != "UNAVAILABLE" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("action (ifNoneMatch %v): %d %s Retry-After %q, want %d UNAVAILABLE with Retry-After", ifNoneMatch, resp.StatusCode, out,
				resp.Header.Get("Retry-After"), hasura.ActionRetryStatus)
		}
	}
	tok := listingToken(t, school)
	for _, inm := range []string{"", `"some-etag"`, "*"} {
		hdr := map[string]string{"Authorization": "Bearer " + tok}
		if inm != "" {
			hdr["If-None-Match"] = inm
		}
		resp, out := getAssessments(t, b.client, b.url, hdr)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("GET (If-None-Match %q): %d %s Retry-After %q, want 503 with Retry-After", inm, resp.StatusCode, out, resp.Header.Get("Retry-After"))
		}
	}
}

// TestSchoolAssessmentsRESTWhileTheKeyServerIsDown: with jwk_url keys that
// cannot be fetched, a token can be told neither valid nor invalid; the
// app is told to try again (503, Retry-After), not that its sign-in is
// invalid (401), which signs a teacher out — by the listing and by the
// transfer-document upload alike.
func TestSchoolAssessmentsRESTWhileTheKeyServerIsDown(t *testing.T) {
	t.Parallel()
	keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(keys.Close)
	b := setupWith(t, pgtest.New(t), discard, func(c *config.Config) {
		c.JWTSecret = config.Secret(`{"jwk_url": "` + keys.URL + `"}`)
	})
	tok := listingToken(t, uuid.New())
	resp, out := getAssessments(t, b.client, b.url, map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET: %d %s Retry-After %q, want 503 with Retry-After", resp.StatusCode, out, resp.Header.Get("Retry-After"))
	}
	// The other REST endpoint signed in with the app's Hasura JWT.
	req, _ := http.NewRequest(http.MethodPost, b.url+"/students/documents", strings.NewReader("%PDF-1.4"))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("POST /students/documents: %d %s Retry-After %q, want 503 with Retry-After", resp.StatusCode, out, resp.Header.Get("Retry-After"))
	}
}

// listingToken is a school role's Hasura JWT for school, signed with
// listingJWTSecret's key.
func listingToken(t *testing.T, school uuid.UUID) string {
	t.Helper()
	jc, err := auth.ParseConfig(listingJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.NewIssuer(jc, nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Mint("teacher-1", []string{"school"}, "school", map[string]string{"x-hasura-school-id": school.String()}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
