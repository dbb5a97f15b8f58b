package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/bbb/bbbtest"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/lesson"
	"github.com/shala-edu/shala/internal/pgtest"
)

const lessonJWTSecret = `{"type":"HS256","key":"a-shared-secret-of-at-least-32-characters!"}`

type lessonBundle struct {
	pool *pgxpool.Pool
	url  string
	cfg  *config.Config
	// noFollow sees redirects instead of following them.
	noFollow *http.Client
}

func setupLessons(t *testing.T) *lessonBundle {
	t.Helper()
	pool := pgtest.New(t)
	cfg := apptest.Config(t)
	cfg.JWTSecret = lessonJWTSecret
	cfg.ModeratorAppURL = "https://teach.example/app"
	cfg.BBBHosts = "127.0.0.1"
	cfg.PublicRate, cfg.PublicBurst = 1000, 1000
	a := apptest.New(t, cfg, app.Options{Pool: pool})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &lessonBundle{pool: pool, url: srv.URL, cfg: cfg,
		noFollow: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// action calls a Hasura action as Hasura does and decodes the answer into
// out (on 2xx) or returns the error body.
func (b *lessonBundle) action(t *testing.T, name string, session map[string]string, input, out any) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"action": map[string]string{"name": name}, "input": input,
		"session_variables": session, "request_query": "mutation { " + name + " }"})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, b.url+"/actions/"+name, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hasura.SecretHeader, apptest.WebhookSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s answer %s: %v", name, raw, err)
		}
		return resp.StatusCode, nil
	}
	var e map[string]any
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("%s error %s: %v", name, raw, err)
	}
	return resp.StatusCode, e
}

func lessonErrCode(e map[string]any) string {
	ext, _ := e["extensions"].(map[string]any)
	c, _ := ext["code"].(string)
	return c
}

func (b *lessonBundle) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := b.noFollow.Get(b.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// lessonAdmin is TeleKlasa's administrator (a user's JWT, not the admin
// secret); hasuraAdmin is Hasura's own admin.
var (
	lessonAdmin = map[string]string{"x-hasura-role": "lesson_admin", "x-hasura-user-id": "teleklasa-admin-1"}
	hasuraAdmin = map[string]string{"x-hasura-role": "admin", "x-hasura-user-id": "admin-1"}
)

func (b *lessonBundle) moderator(t *testing.T, name string) map[string]string {
	t.Helper()
	uid := "t-" + uuid.NewString()[:8]
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO moderator (user_id, display_name) VALUES ($1, $2)`, uid, name); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"x-hasura-role": "moderator", "x-hasura-user-id": uid}
}

type lessonGroupOut struct {
	ID       uuid.UUID `json:"id"`
	Students []struct {
		ID    uuid.UUID `json:"id"`
		Name  string    `json:"name"`
		Token string    `json:"token"`
	} `json:"students"`
}

func (b *lessonBundle) group(t *testing.T, mod map[string]string, students ...string) lessonGroupOut {
	t.Helper()
	var g lessonGroupOut
	if st, e := b.action(t, "createGroup", mod, map[string]any{"name": "6-A", "region": "shimla", "students": students}, &g); st != 200 {
		t.Fatalf("createGroup: %d %v", st, e)
	}
	return g
}

func (b *lessonBundle) addServer(t *testing.T) *bbbtest.Server {
	t.Helper()
	ts := bbbtest.New(t, bbbtest.Options{})
	var out struct {
		ID      uuid.UUID `json:"id"`
		Enabled bool      `json:"enabled"`
	}
	st, e := b.action(t, "addBBBServer", lessonAdmin, map[string]any{"url": ts.URL, "secret": ts.Secret, "region": "shimla", "capacity": 300, "cpuCount": 8}, &out)
	if st != 200 || !out.Enabled {
		t.Fatalf("addBBBServer: %d %v %+v", st, e, out)
	}
	return ts
}

// runningLesson starts a lesson of a new group of one student, Asha.
func (b *lessonBundle) runningLesson(t *testing.T) lessonGroupOut {
	t.Helper()
	mod := b.moderator(t, "M")
	g := b.group(t, mod, "Asha")
	var started struct {
		LessonID uuid.UUID `json:"lessonId"`
	}
	if st, e := b.action(t, "startLesson", mod, map[string]any{"groupId": g.ID}, &started); st != 200 {
		t.Fatalf("startLesson: %d %v", st, e)
	}
	return g
}

func TestLessonEndToEnd(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	ts := b.addServer(t)
	mod := b.moderator(t, "Meena Sharma")
	g := b.group(t, mod, "Asha Devi\nRavi", "  ")
	if len(g.Students) != 2 {
		t.Fatalf("students: %+v", g.Students)
	}
	tok := g.Students[0].Token

	// Before the lesson: the waiting page, and the status it polls.
	resp, page := b.get(t, "/j/"+strings.ToLower(tok))
	if resp.StatusCode != 200 || !strings.Contains(page, "कक्षा अभी शुरू नहीं हुई है") || !strings.Contains(page, "has not started yet") ||
		!strings.Contains(page, "Asha Devi") || !strings.Contains(page, "/status") {
		t.Fatalf("waiting page: %d\n%s", resp.StatusCode, page)
	}
	if resp.Header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "nonce-") ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("waiting page headers: %v", resp.Header)
	}
	resp, body := b.get(t, "/j/"+tok+"/status")
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"state":"waiting"}` {
		t.Errorf("status before: %d %s", resp.StatusCode, body)
	}

	// The moderator starts the lesson.
	var started struct {
		LessonID uuid.UUID `json:"lessonId"`
		JoinURL  string    `json:"joinUrl"`
		Reused   bool      `json:"reused"`
	}
	if st, e := b.action(t, "startLesson", mod, map[string]any{"groupId": g.ID}, &started); st != 200 {
		t.Fatalf("startLesson: %d %v", st, e)
	}
	if !strings.HasPrefix(started.JoinURL, ts.URL+"join?") || !strings.Contains(started.JoinURL, "fullName=Meena+Sharma") {
		t.Errorf("join URL %s", started.JoinURL)
	}
	resp, body = b.get(t, "/j/"+tok+"/status")
	if strings.TrimSpace(body) != `{"state":"ready"}` {
		t.Errorf("status after: %d %s", resp.StatusCode, body)
	}
	resp, _ = b.get(t, "/j/"+tok)
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), ts.URL+"join?") {
		t.Fatalf("join: %d → %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	jr, err := b.noFollow.Get(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	jr.Body.Close()
	m, _ := ts.Meeting(started.LessonID.String())
	if len(m.Attendees) != 1 || m.Attendees[0].FullName != "Asha Devi" {
		t.Errorf("attendees: %+v", m.Attendees)
	}

	// Ending releases the group: a new start is a new lesson.
	var ended struct {
		LessonID uuid.UUID `json:"lessonId"`
		EndedAt  time.Time `json:"endedAt"`
	}
	if st, e := b.action(t, "endLesson", mod, map[string]any{"lessonId": started.LessonID}, &ended); st != 200 || ended.EndedAt.IsZero() {
		t.Fatalf("endLesson: %d %v %+v", st, e, ended)
	}
	if _, body := b.get(t, "/j/"+tok+"/status"); strings.TrimSpace(body) != `{"state":"waiting"}` {
		t.Errorf("status after the end: %s", body)
	}
}

func TestLessonActionErrors(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	mod := b.moderator(t, "M")
	g := b.group(t, mod, "Asha", "Neha")
	var modID uuid.UUID
	if err := b.pool.QueryRow(context.Background(), `SELECT id FROM moderator WHERE user_id = $1`, mod["x-hasura-user-id"]).Scan(&modID); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	cases := []struct {
		name, action string
		session      map[string]string
		input        map[string]any
		status       int
		code         string
	}{
		{"no server", "startLesson", mod, map[string]any{"groupId": g.ID}, 422, string(lesson.CodeNoServer)},
		{"not a moderator role", "startLesson", map[string]string{"x-hasura-role": "school", "x-hasura-user-id": "x"}, map[string]any{"groupId": g.ID}, 403, "FORBIDDEN"},
		{"no moderator profile", "createGroup", map[string]string{"x-hasura-role": "moderator", "x-hasura-user-id": "nobody"},
			map[string]any{"name": "6-A", "region": "shimla", "students": []string{}}, 403, string(lesson.CodeNotModerator)},
		{"another moderator's group", "addStudents", b.moderator(t, "Other"), map[string]any{"groupId": g.ID, "students": []string{"X"}}, 404, "NOT_FOUND"},
		{"moderators cannot add servers", "addBBBServer", mod, map[string]any{"url": "https://x.example/bigbluebutton/api/", "secret": "12345678", "region": "x", "capacity": 1}, 403, "FORBIDDEN"},
		{"bad region", "createGroup", mod, map[string]any{"name": "6-A", "region": "Shimla Hills", "students": []string{}}, 400, "INVALID_INPUT"},
		{"a lesson admin adds students to any group", "addStudents", lessonAdmin, map[string]any{"groupId": g.ID, "students": []string{"Neha"}}, 200, ""},
		{"a lesson admin cannot start a lesson", "startLesson", lessonAdmin, map[string]any{"groupId": g.ID}, 403, "FORBIDDEN"},
		{"a lesson admin resets any student's token", "resetAccessToken", lessonAdmin, map[string]any{"studentId": g.Students[0].ID}, 200, ""},
		{"a lesson admin removes any student", "removeStudent", lessonAdmin, map[string]any{"studentId": g.Students[1].ID}, 200, ""},
		{"a lesson admin makes a moderator's link", "createModeratorLink", lessonAdmin, map[string]any{"moderatorId": modID}, 200, ""},
		{"a lesson admin resets a moderator's link", "resetModeratorLink", lessonAdmin, map[string]any{"moderatorId": modID}, 200, ""},
		{"a lesson admin ends any lesson", "endLesson", lessonAdmin, map[string]any{"lessonId": uuid.New()}, 404, "NOT_FOUND"},
		{"a lesson admin disables servers", "disableBBBServer", lessonAdmin, map[string]any{"id": uuid.New(), "reason": "maintenance"}, 404, "NOT_FOUND"},
		{"Hasura's admin disables servers", "disableBBBServer", hasuraAdmin, map[string]any{"id": uuid.New(), "reason": "maintenance"}, 404, "NOT_FOUND"},
		{"a moderator cannot disable servers", "disableBBBServer", mod, map[string]any{"id": uuid.New(), "reason": "maintenance"}, 403, "FORBIDDEN"},
		{"link made by the admin", "createModeratorLink", mod, map[string]any{}, 409, string(lesson.CodeLinkExists)},
	}
	for _, c := range cases {
		st, e := b.action(t, c.action, c.session, c.input, &out)
		if st != c.status || lessonErrCode(e) != c.code {
			t.Errorf("%s: got %d %v, want %d %s", c.name, st, e, c.status, c.code)
		}
	}
}

// TestJoinLinkPreview: messaging apps fetch every link they are sent to
// draw a preview card. During a lesson such a fetch must not use one of the
// student's sessions, call BBB, or be handed the signed join URL.
func TestJoinLinkPreview(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	ts := b.addServer(t)
	g := b.runningLesson(t)
	for _, ua := range []string{"WhatsApp/2.23.20.0 A", "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
		"TelegramBot (like TwitterBot)", "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"} {
		req, _ := http.NewRequest(http.MethodGet, b.url+"/j/"+g.Students[0].Token, nil)
		req.Header.Set("User-Agent", ua)
		resp, err := b.noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.Contains(string(page), "TeleKlasa") {
			t.Errorf("%s: %d → %q", ua, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	var grants int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM lesson_join`).Scan(&grants); err != nil || grants != 0 {
		t.Errorf("%d join links handed out to previewers (%v), want 0", grants, err)
	}
	if n := ts.Calls("getMeetingInfo"); n != 0 {
		t.Errorf("%d getMeetingInfo calls for previews, want 0", n)
	}
	// A browser still goes straight in.
	if resp, _ := b.get(t, "/j/"+g.Students[0].Token); resp.StatusCode != http.StatusFound {
		t.Errorf("a browser: %d, want 302", resp.StatusCode)
	}
}

// TestWaitingPagePaths: the waiting page polls its status endpoint and
// goes back to the link; however the link was written (lower case, a
// trailing slash), those paths must answer, or the page falls back to
// reloading itself every 10 s.
func TestWaitingPagePaths(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	mod := b.moderator(t, "M")
	g := b.group(t, mod, "Asha")
	tok := g.Students[0].Token
	script := regexp.MustCompile(`var status = ("[^"]*"), join = ("[^"]*")[,;]`)
	for _, link := range []string{"/j/" + tok, "/j/" + strings.ToLower(tok), "/j/" + tok + "/"} {
		resp, page := b.get(t, link)
		m := script.FindStringSubmatch(page)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("%s: %d, no polling script in\n%s", link, resp.StatusCode, page)
		}
		var status, join string
		if err := json.Unmarshal([]byte(m[1]), &status); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(m[2]), &join); err != nil {
			t.Fatal(err)
		}
		if resp, body := b.get(t, status); resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"state":"waiting"}` {
			t.Errorf("%s: its page polls %s: %d %s; want 200 waiting", link, status, resp.StatusCode, body)
		}
		if resp, _ := b.get(t, join); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: its page goes in by %s: %d; want 200", link, join, resp.StatusCode)
		}
	}
}

// TestJoinServerDown: a lesson runs but its server does not answer. The
// student waits on a page that says so (not "not started yet") and tries
// again after a longer pause than the usual poll: the status says "ready"
// all along, so a 10 s poll would reload the page, and call the dead server,
// from every phone every 10 s.
func TestJoinServerDown(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	ts := b.addServer(t)
	g := b.runningLesson(t)
	ts.SetDown(true)
	resp, page := b.get(t, "/j/"+g.Students[0].Token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("join with the server down: %d, want the waiting page", resp.StatusCode)
	}
	if strings.Contains(page, "has not started yet") || !strings.Contains(page, "cannot be reached right now") {
		t.Errorf("the page does not say the lesson started but cannot be reached:\n%s", page)
	}
	m := regexp.MustCompile(`first =\s*(\d+)\s*;`).FindStringSubmatch(page)
	if m == nil || m[1] != "30" {
		t.Errorf("first poll after %v s, want 30:\n%s", m, page)
	}
	ts.SetDown(false)
	if resp, _ := b.get(t, "/j/"+g.Students[0].Token); resp.StatusCode != http.StatusFound {
		t.Errorf("join with the server back: %d, want 302", resp.StatusCode)
	}
}

func TestJoinLinkGuessing(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	mod := b.moderator(t, "M")
	g := b.group(t, mod, "Asha")
	resp, page := b.get(t, "/j/ZZZZZ9")
	if resp.StatusCode != 404 || !strings.Contains(page, "This link is not valid") || !strings.Contains(page, "लिंक") {
		t.Fatalf("unknown token: %d %s", resp.StatusCode, page)
	}
	for i := range 20 {
		resp, _ = b.get(t, fmt.Sprintf("/j/ZZZZ%02d", i+10))
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after many wrong tokens: %d, want 429 with Retry-After", resp.StatusCode)
	}
	// Out of guesses, a right token is refused too: a hit cannot be told
	// from a miss.
	if resp, _ := b.get(t, "/j/"+g.Students[0].Token); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a valid token out of guesses: %d, want 429", resp.StatusCode)
	}
	// The phone gets the bilingual page, not JSON; the waiting page's
	// poll gets JSON; the moderator's link a page too (the same budget).
	resp, page = b.get(t, "/j/"+g.Students[0].Token)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") ||
		!strings.Contains(page, "Too many tries") || !strings.Contains(page, "कोशिश") {
		t.Errorf("429 page: %s %q, want the bilingual page", ct, page)
	}
	resp, page = b.get(t, "/j/"+g.Students[0].Token+"/status")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
		!strings.Contains(page, "RATE_LIMITED") {
		t.Errorf("429 status poll: %d %s %q, want JSON RATE_LIMITED", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	resp, page = b.get(t, "/m/"+strings.Repeat("Z", 43))
	if resp.StatusCode != http.StatusTooManyRequests || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(page, "Too many tries") {
		t.Errorf("429 moderator link: %d %s, want the page", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestHeartbeatEndpoint(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	ts := b.addServer(t)
	body := []byte(fmt.Sprintf(`{"hostname":%q,"timestamp":%d,"load5":0.5,"cpus":8,"users":12,"meetings":1}`, ts.Host, time.Now().Unix()))
	post := func(sig string, body []byte) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, b.url+"/bbb/heartbeat", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set(lesson.SignatureHeader, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	if st, got := post(lesson.Sign(ts.Secret, body), body); st != 200 || !strings.Contains(got, `"enabled":true`) {
		t.Errorf("signed heartbeat: %d %s", st, got)
	}
	if st, got := post(lesson.Sign("wrong-secret", body), body); st != 401 || !strings.Contains(got, string(lesson.CodeBadSignature)) {
		t.Errorf("wrong signature: %d %s", st, got)
	}
	if st, _ := post("", bytes.Repeat([]byte(" "), 20<<10)); st != http.StatusRequestEntityTooLarge {
		t.Errorf("20 KiB body: %d, want 413", st)
	}
	var users int
	if err := b.pool.QueryRow(context.Background(), `SELECT users FROM bbb_server WHERE hostname = $1`, ts.Host).Scan(&users); err != nil || users != 12 {
		t.Errorf("users %d (%v), want 12", users, err)
	}
}

func TestModeratorLink(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	mod := b.moderator(t, "Meena")
	g := b.group(t, mod, "Asha")
	other := b.group(t, b.moderator(t, "Other"), "Ravi")
	var link struct {
		ModeratorID uuid.UUID `json:"moderatorId"`
		Token       string    `json:"token"`
		URL         string    `json:"url"`
	}
	if st, e := b.action(t, "createModeratorLink", mod, map[string]any{}, &link); st != 200 {
		t.Fatalf("createModeratorLink: %d %v", st, e)
	}
	if link.URL != "https://shala.example/m/"+link.Token {
		t.Errorf("link URL %s", link.URL)
	}
	// GET (what a link preview fetches) mints nothing: it is a page that
	// posts back.
	resp, page := b.get(t, "/m/"+link.Token+"?g="+g.ID.String())
	if resp.StatusCode != 200 || !strings.Contains(page, `method="post"`) || resp.Header.Get("Location") != "" {
		t.Fatalf("GET: %d %s", resp.StatusCode, page)
	}
	verifier, err := auth.NewVerifier(lessonJWTConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	signIn := func(query string) url.Values {
		t.Helper()
		resp, err := b.noFollow.Post(b.url+"/m/"+link.Token+query, "application/x-www-form-urlencoded", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "https://teach.example/app#") {
			t.Fatalf("POST: %d → %s", resp.StatusCode, loc)
		}
		frag, err := url.ParseQuery(loc[strings.Index(loc, "#")+1:])
		if err != nil {
			t.Fatal(err)
		}
		return frag
	}
	frag := signIn("?g=" + g.ID.String())
	claims, err := verifier.Verify(context.Background(), frag.Get("token"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := claims.Session("")
	if err != nil || sess["x-hasura-role"] != "moderator" || sess["x-hasura-user-id"] != mod["x-hasura-user-id"] {
		t.Errorf("session %v (%v)", sess, err)
	}
	if left := time.Until(claims.ExpiresAt); left <= 0 || left > b.cfg.ModeratorTokenTTL {
		t.Errorf("token expires in %s, want within %s", left, b.cfg.ModeratorTokenTTL)
	}
	if frag.Get("group") != g.ID.String() {
		t.Errorf("deep link to own group lost: %v", frag)
	}
	if frag := signIn("?g=" + other.ID.String()); frag.Has("group") {
		t.Errorf("deep link to another moderator's group kept: %v", frag)
	}
	if resp, _ := b.get(t, "/m/"+strings.Repeat("x", 43)); resp.StatusCode != 404 {
		t.Errorf("unknown link: %d", resp.StatusCode)
	}
}

func TestBBBAlertsCron(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	body := []byte(`{"id":"` + uuid.NewString() + `","name":"bbb_alerts","scheduled_time":"2026-11-25T10:00:00Z","payload":{}}`)
	req, _ := http.NewRequest(http.MethodPost, b.url+"/cron/bbb_alerts", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hasura.SecretHeader, apptest.WebhookSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("cron: %d", resp.StatusCode)
	}
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'lesson.bbb_alerts'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d alert jobs (%v), want 1", n, err)
	}
}

func lessonJWTConfig(t *testing.T) *auth.Config {
	t.Helper()
	c, err := auth.ParseConfig(lessonJWTSecret)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLessonAdminEndsAnotherModeratorsLesson: TeleKlasa's administrator
// ends a live lesson of a group they do not moderate.
func TestLessonAdminEndsAnotherModeratorsLesson(t *testing.T) {
	t.Parallel()
	b := setupLessons(t)
	b.addServer(t)
	g := b.runningLesson(t)
	var lessonID uuid.UUID
	if err := b.pool.QueryRow(context.Background(), `SELECT id FROM lesson WHERE group_id = $1 AND ended_at IS NULL`, g.ID).Scan(&lessonID); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if st, e := b.action(t, "endLesson", b.moderator(t, "Other"), map[string]any{"lessonId": lessonID}, &out); st != 404 {
		t.Errorf("another moderator's endLesson: %d %v, want 404", st, e)
	}
	if st, e := b.action(t, "endLesson", lessonAdmin, map[string]any{"lessonId": lessonID}, &out); st != 200 || out["endedAt"] == nil {
		t.Errorf("lesson admin's endLesson: %d %v %v, want 200 with endedAt", st, e, out)
	}
}
