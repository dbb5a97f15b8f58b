package lesson_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/bbb/bbbtest"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/lesson"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type bundle struct {
	pool    *pgxpool.Pool
	groups  *lesson.Groups
	servers *lesson.Servers
	rooms   *lesson.Rooms
	client  *bbb.Client
}

func setup(t *testing.T) *bundle {
	t.Helper()
	return setupPolicy(t, lesson.DefaultPolicy())
}

func setupPolicy(t *testing.T, p lesson.Policy) *bundle {
	t.Helper()
	pool := pgtest.New(t)
	q, err := queue.New(pool, nil, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	client := bbb.New(10*time.Second, nil)
	return &bundle{pool: pool, client: client, groups: lesson.NewGroups(pool),
		servers: lesson.NewServers(pool, q, client, nil, []string{"*.bbb.test"}),
		rooms:   lesson.NewRooms(pool, q, client, nil, p)}
}

// moderator adds a moderator profile and returns its session.
func (b *bundle) moderator(t *testing.T, name string) lesson.Caller {
	t.Helper()
	userID := "u-" + uuid.NewString()[:8]
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO moderator (user_id, display_name) VALUES ($1, $2)`, userID, name); err != nil {
		t.Fatal(err)
	}
	return lesson.Caller{Role: lesson.RoleModerator, UserID: userID}
}

// group creates a group of n students moderated by c.
func (b *bundle) group(t *testing.T, c lesson.Caller, region string, n int) (lesson.Group, []lesson.Student) {
	t.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("Student %d", i+1)
	}
	g, st, err := b.groups.CreateGroup(context.Background(), c, "6-A", region, names)
	if err != nil {
		t.Fatal(err)
	}
	return g, st
}

type serverOpts struct {
	region   string
	capacity int
	cpus     int
	latency  time.Duration
	before   func(call string)
}

// server starts a BBB test server and registers it through addBBBServer's
// path.
func (b *bundle) server(t *testing.T, o serverOpts) (uuid.UUID, *bbbtest.Server) {
	t.Helper()
	if o.region == "" {
		o.region = "shimla"
	}
	if o.capacity == 0 {
		o.capacity = 300
	}
	ts := bbbtest.New(t, bbbtest.Options{Latency: o.latency, BeforeAnswer: o.before})
	s, err := b.servers.Add(context.Background(), "admin-1", lesson.NewServer{URL: ts.URL, Secret: ts.Secret, Region: o.region,
		Capacity: o.capacity, CPUCount: o.cpus})
	if err != nil {
		t.Fatal(err)
	}
	return s.ID, ts
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func code(err error) fault.Code {
	if err == nil {
		return ""
	}
	return fault.As(err).Code
}

// follow opens a join URL the way a browser does (one redirect from BBB).
func follow(t *testing.T, url string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("join: HTTP %d, want 302", resp.StatusCode)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	t.Run("alphabet without 0 and O", func(t *testing.T) {
		t.Parallel()
		seen := map[rune]bool{}
		for range 20000 {
			tok := lesson.NewAccessToken()
			if len(tok) != lesson.TokenLength {
				t.Fatalf("token %q: length %d", tok, len(tok))
			}
			for _, r := range tok {
				if !strings.ContainsRune(lesson.TokenAlphabet, r) || r == '0' || r == 'O' {
					t.Fatalf("token %q has %q", tok, r)
				}
				seen[r] = true
			}
		}
		if len(seen) != len(lesson.TokenAlphabet) {
			t.Errorf("20,000 tokens used %d of the %d characters", len(seen), len(lesson.TokenAlphabet))
		}
	})
	t.Run("normalize", func(t *testing.T) {
		t.Parallel()
		for in, want := range map[string]string{"abc123": "ABC123", " Zz9yY1 ": "ZZ9YY1"} {
			if got, ok := lesson.NormalizeToken(in); !ok || got != want {
				t.Errorf("NormalizeToken(%q) = %q, %v; want %q", in, got, ok, want)
			}
		}
		for _, bad := range []string{"", "ABC12", "ABC1234", "ABCO12", "ABC012", "ABC-12", "ÄBC123"} {
			if _, ok := lesson.NormalizeToken(bad); ok {
				t.Errorf("NormalizeToken(%q) accepted", bad)
			}
		}
	})
}

func TestGroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("createGroup trims names and ignores blank lines", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mod := b.moderator(t, "Meena Sharma")
		g, st, err := b.groups.CreateGroup(ctx, mod, " 6-A ", "Shimla", []string{"  Asha Devi ", "", "Ravi\n\n  Priya Kumari\r\n", "   "})
		if err != nil {
			t.Fatal(err)
		}
		if g.Name != "6-A" || g.Region != "shimla" {
			t.Errorf("group: got %+v", g)
		}
		var names []string
		for _, s := range st {
			names = append(names, s.Name)
			if _, ok := lesson.NormalizeToken(s.Token); !ok {
				t.Errorf("token %q is not a token", s.Token)
			}
		}
		if got, want := strings.Join(names, "|"), "Asha Devi|Ravi|Priya Kumari"; got != want {
			t.Errorf("students: got %q, want %q", got, want)
		}
		var moderated bool
		if err := b.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM group_moderator gm JOIN moderator m ON m.id = gm.moderator_id
			WHERE gm.group_id = $1 AND m.user_id = $2)`, g.ID, mod.UserID).Scan(&moderated); err != nil || !moderated {
			t.Errorf("the caller does not moderate the new group (%v)", err)
		}
	})
	t.Run("a pasted list's invisible characters: no phantom students", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mod := b.moderator(t, "M")
		// A list saved by Notepad starts with a byte-order mark; lists copied
		// from chats carry zero-width spaces and direction marks, also on
		// lines that look blank.
		_, st, err := b.groups.CreateGroup(ctx, mod, "6-A", "shimla",
			[]string{"\ufeffAsha Devi\n\u200b\n\u200e \u200b\nRavi\u200b\n\ufeff", "\u200f", "प्रिया"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, s := range st {
			names = append(names, s.Name)
		}
		if got, want := strings.Join(names, "|"), "Asha Devi|Ravi|प्रिया"; got != want {
			t.Errorf("students: got %q, want %q", got, want)
		}
		if _, _, err := b.groups.CreateGroup(ctx, mod, "\u200b", "shimla", nil); fault.KindOf(err) != fault.Invalid {
			t.Errorf("a group named by a zero-width space: got %v, want invalid", err)
		}
	})
	t.Run("one transaction: a bad name creates nothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mod := b.moderator(t, "M")
		_, _, err := b.groups.CreateGroup(ctx, mod, "6-B", "shimla", []string{"Asha", strings.Repeat("x", 101)})
		if f := fault.As(err); f.Kind != fault.Invalid || f.Field != "students[1]" || !strings.HasPrefix(f.Message, "students[1]") {
			t.Fatalf("got %v, want an invalid students[1]", err)
		}
		var n int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM lesson_group`).Scan(&n); err != nil || n != 0 {
			t.Errorf("groups after a refused create: %d (%v)", n, err)
		}
	})
	t.Run("without a moderator profile", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, _, err := b.groups.CreateGroup(ctx, lesson.Caller{Role: "moderator", UserID: "nobody"}, "6-A", "shimla", nil)
		if code(err) != lesson.CodeNotModerator {
			t.Errorf("got %v, want NOT_A_MODERATOR", err)
		}
	})
	t.Run("moderators act on their own groups only", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mine, other := b.moderator(t, "A"), b.moderator(t, "B")
		g, st := b.group(t, mine, "shimla", 2)
		if _, err := b.groups.AddStudents(ctx, other, g.ID, []string{"X"}); fault.KindOf(err) != fault.NotFound {
			t.Errorf("addStudents to another's group: got %v, want NotFound", err)
		}
		if _, err := b.groups.ResetAccessToken(ctx, other, st[0].ID); fault.KindOf(err) != fault.NotFound {
			t.Errorf("resetAccessToken of another's student: got %v, want NotFound", err)
		}
		if err := b.groups.RemoveStudent(ctx, other, st[0].ID); fault.KindOf(err) != fault.NotFound {
			t.Errorf("removeStudent of another's student: got %v, want NotFound", err)
		}
		admin := lesson.Caller{Role: lesson.RoleAdmin, UserID: "root"}
		added, err := b.groups.AddStudents(ctx, admin, g.ID, []string{"Neha"})
		if err != nil || len(added) != 1 {
			t.Errorf("admin addStudents: %v, %v", added, err)
		}
		// TeleKlasa's administrator acts on every group too.
		teleklasa := lesson.Caller{Role: lesson.RoleLessonAdmin, UserID: "teleklasa-admin"}
		if again, err := b.groups.ResetAccessToken(ctx, teleklasa, st[0].ID); err != nil || again.Token == st[0].Token {
			t.Errorf("lesson admin resetAccessToken: %+v, %v", again, err)
		}
		if err := b.groups.RemoveStudent(ctx, teleklasa, st[1].ID); err != nil {
			t.Errorf("lesson admin removeStudent: %v", err)
		}
	})
	t.Run("reset and remove", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mod := b.moderator(t, "A")
		g, st := b.group(t, mod, "shimla", 2)
		again, err := b.groups.ResetAccessToken(ctx, mod, st[0].ID)
		if err != nil || again.Token == st[0].Token || again.Name != st[0].Name {
			t.Fatalf("reset: got %+v, %v (old token %s)", again, err, st[0].Token)
		}
		if _, err := b.rooms.Status(ctx, st[0].Token); fault.KindOf(err) != fault.NotFound {
			t.Errorf("old token after a reset: got %v, want NotFound", err)
		}
		if _, err := b.rooms.Status(ctx, strings.ToLower(again.Token)); err != nil {
			t.Errorf("new token (lower case): %v", err)
		}
		if err := b.groups.RemoveStudent(ctx, mod, st[1].ID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.rooms.Status(ctx, st[1].Token); fault.KindOf(err) != fault.NotFound {
			t.Errorf("removed student's token: got %v, want NotFound", err)
		}
		if _, err := b.groups.AddStudents(ctx, mod, g.ID, []string{" ", "\n"}); fault.KindOf(err) != fault.Invalid {
			t.Errorf("addStudents of blank lines only: got %v, want Invalid", err)
		}
	})
	t.Run("moderator links", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mod := b.moderator(t, "Meena")
		l, err := b.groups.CreateModeratorLink(ctx, mod, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.groups.CreateModeratorLink(ctx, mod, nil); code(err) != lesson.CodeLinkExists {
			t.Errorf("second create: got %v, want LINK_EXISTS", err)
		}
		m, err := b.groups.ModeratorByLink(ctx, l.Token)
		if err != nil || m.UserID != mod.UserID || m.DisplayName != "Meena" {
			t.Errorf("by link: got %+v, %v", m, err)
		}
		l2, err := b.groups.ResetModeratorLink(ctx, lesson.Caller{Role: lesson.RoleAdmin}, &l.ModeratorID)
		if err != nil || l2.Token == l.Token {
			t.Fatalf("admin reset: %+v, %v", l2, err)
		}
		if _, err := b.groups.ModeratorByLink(ctx, l.Token); fault.KindOf(err) != fault.NotFound {
			t.Errorf("old link after a reset: got %v, want NotFound", err)
		}
		other := b.moderator(t, "Other")
		if _, err := b.groups.ResetModeratorLink(ctx, other, &l.ModeratorID); fault.KindOf(err) != fault.Forbidden {
			t.Errorf("another moderator's link: got %v, want Forbidden", err)
		}
		var hash []byte
		if err := b.pool.QueryRow(ctx, `SELECT link_token_hash FROM moderator WHERE id = $1`, l.ModeratorID).Scan(&hash); err != nil ||
			strings.Contains(string(hash), l2.Token) || len(hash) != 32 {
			t.Errorf("stored link: %x (%v); want a 32-byte hash", hash, err)
		}
	})
}

func TestAddServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	t.Run("negotiates sha1 only when the server asks for it", func(t *testing.T) {
		t.Parallel()
		for algs, want := range map[string]string{"sha1,sha256,sha512": "sha256", "sha512": "sha512", "sha1": "sha1"} {
			ts := bbbtest.New(t, bbbtest.Options{Algorithms: strings.Split(algs, ",")})
			s, err := b.servers.Add(ctx, "a", lesson.NewServer{URL: ts.URL, Secret: ts.Secret, Region: "shimla", Capacity: 100})
			if err != nil {
				t.Fatal(err)
			}
			var got string
			var enabled bool
			if err := b.pool.QueryRow(ctx, `SELECT checksum_algorithm, enabled FROM bbb_server WHERE id = $1`, s.ID).Scan(&got, &enabled); err != nil {
				t.Fatal(err)
			}
			if got != want || !enabled || !s.Enabled {
				t.Errorf("server accepting %s: stored %s (enabled %v), want %s", algs, got, enabled, want)
			}
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{})
		_, err := b.servers.Add(ctx, "a", lesson.NewServer{URL: ts.URL, Secret: "wrong-secret", Region: "shimla", Capacity: 100})
		if f := fault.As(err); f.Code != lesson.CodeChecksumRefused || f.Field != "secret" || httperr.Status(f.Kind) >= 500 {
			t.Errorf("got %v, want CHECKSUM_REFUSED on secret", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{})
		ts.SetDown(true)
		_, err := b.servers.Add(ctx, "a", lesson.NewServer{URL: ts.URL, Secret: ts.Secret, Region: "shimla", Capacity: 100})
		if code(err) != lesson.CodeServerUnreachable {
			t.Errorf("got %v, want SERVER_UNREACHABLE", err)
		}
	})
	t.Run("twice", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{})
		in := lesson.NewServer{URL: ts.URL, Secret: ts.Secret, Region: "shimla", Capacity: 100}
		if _, err := b.servers.Add(ctx, "a", in); err != nil {
			t.Fatal(err)
		}
		if _, err := b.servers.Add(ctx, "a", in); code(err) != lesson.CodeServerExists {
			t.Errorf("got %v, want SERVER_EXISTS", err)
		}
	})
	t.Run("bad input names the field", func(t *testing.T) {
		t.Parallel()
		for field, in := range map[string]lesson.NewServer{
			"url":      {URL: "https://bbb.example.org/", Secret: "12345678", Region: "x", Capacity: 1},
			"secret":   {URL: "https://bbb.example.org/bigbluebutton/api/", Secret: "short", Region: "x", Capacity: 1},
			"region":   {URL: "https://bbb.example.org/bigbluebutton/api/", Secret: "12345678", Region: "Shimla Hills!", Capacity: 1},
			"capacity": {URL: "https://bbb.example.org/bigbluebutton/api/", Secret: "12345678", Region: "x", Capacity: 0},
			"cpuCount": {URL: "https://bbb.example.org/bigbluebutton/api/", Secret: "12345678", Region: "x", Capacity: 1, CPUCount: -1},
		} {
			_, err := b.servers.Add(ctx, "a", in)
			if f := fault.As(err); f.Kind != fault.Invalid || f.Field != field {
				t.Errorf("%s: got %v", field, err)
			}
		}
	})
	t.Run("the secret is kept out of the table Hasura tracks", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{Secret: "s3cr3t-value-xyz"})
		if _, err := b.servers.Add(ctx, "a", lesson.NewServer{URL: ts.URL, Secret: ts.Secret, Region: "shimla", Capacity: 10}); err != nil {
			t.Fatal(err)
		}
		var row string
		if err := b.pool.QueryRow(ctx, `SELECT string_agg(s::text, ',') FROM bbb_server s`).Scan(&row); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(row, "s3cr3t") {
			t.Errorf("bbb_server holds the secret: %s", row)
		}
	})
}

func TestDisableServer(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id, _ := b.server(t, serverOpts{})
	s, err := b.servers.Disable(context.Background(), "admin-7", id, "  disk full ")
	if err != nil {
		t.Fatal(err)
	}
	if s.Enabled || s.DisabledReason != "disk full" || s.DisabledBy != "operator:admin-7" {
		t.Errorf("got %+v", s)
	}
	if _, err := b.servers.Disable(context.Background(), "a", uuid.New(), "x"); fault.KindOf(err) != fault.NotFound {
		t.Errorf("unknown server: got %v", err)
	}
	if _, err := b.servers.Disable(context.Background(), "a", id, " "); fault.KindOf(err) != fault.Invalid {
		t.Errorf("no reason: got %v", err)
	}
}
