package bbb_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/bbb/bbbtest"
)

// TestChecksumMatchesTheAPIDocumentation is the worked example of BBB's API
// reference ("API Security Model").
func TestChecksumMatchesTheAPIDocumentation(t *testing.T) {
	t.Parallel()
	got := bbb.Checksum(bbb.SHA1, "create", "name=Test+Meeting&meetingID=abc123&attendeePW=111222&moderatorPW=333444",
		"639259d4-9dd8-4b25-bf01-95f9567eaf4b")
	if want := "1fcbb0c4fc1f039f73aa6d697d2db9ba7f803f17"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for alg, n := range map[bbb.Algorithm]int{bbb.SHA1: 40, bbb.SHA256: 64, bbb.SHA512: 128} {
		if got := len(bbb.Checksum(alg, "getMeetings", "", "s")); got != n {
			t.Errorf("%s: got %d hex digits, want %d", alg, got, n)
		}
	}
}

func TestParseAlgorithm(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bbb.Algorithm{"": bbb.SHA256, "SHA1": bbb.SHA1, "sha256": bbb.SHA256, " sha512 ": bbb.SHA512} {
		if got, err := bbb.ParseAlgorithm(in); err != nil || got != want {
			t.Errorf("ParseAlgorithm(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := bbb.ParseAlgorithm("md5"); err == nil {
		t.Error("md5 accepted")
	}
}

func TestNormalizeURL(t *testing.T) {
	t.Parallel()
	good := map[string][2]string{
		"https://BBB1.example.org/bigbluebutton/api":        {"https://bbb1.example.org/bigbluebutton/api/", "bbb1.example.org"},
		"https://bbb1.example.org:8443/bigbluebutton/api/":  {"https://bbb1.example.org:8443/bigbluebutton/api/", "bbb1.example.org:8443"},
		"http://127.0.0.1:4000/bigbluebutton/api/":          {"http://127.0.0.1:4000/bigbluebutton/api/", "127.0.0.1:4000"},
		" https://scalelite.example.org/bigbluebutton/api/": {"https://scalelite.example.org/bigbluebutton/api/", "scalelite.example.org"},
		// The default port and a fully qualified name's final dot name the
		// same server as the plain host (its heartbeats and alerts name it so).
		"https://bbb1.example.org:443/bigbluebutton/api/": {"https://bbb1.example.org/bigbluebutton/api/", "bbb1.example.org"},
		"https://bbb1.example.org./bigbluebutton/api/":    {"https://bbb1.example.org/bigbluebutton/api/", "bbb1.example.org"},
		"http://localhost:80/bigbluebutton/api/":          {"http://localhost/bigbluebutton/api/", "localhost"},
	}
	for in, want := range good {
		base, host, err := bbb.NormalizeURL(in)
		if err != nil || base != want[0] || host != want[1] {
			t.Errorf("NormalizeURL(%q) = %q, %q, %v; want %q, %q", in, base, host, err, want[0], want[1])
		}
	}
	for _, bad := range []string{"", "bbb.example.org", "http://bbb.example.org/bigbluebutton/api/",
		"https://bbb.example.org/", "https://u:p@bbb.example.org/bigbluebutton/api/", "https://bbb.example.org/bigbluebutton/api/?x=1",
		"ftp://bbb.example.org/bigbluebutton/api/"} {
		if _, _, err := bbb.NormalizeURL(bad); err == nil {
			t.Errorf("NormalizeURL(%q) accepted", bad)
		}
	}
}

func server(t *testing.T, s *bbbtest.Server, alg bbb.Algorithm) bbb.Server {
	t.Helper()
	return bbb.Server{URL: s.URL, Secret: s.Secret, Algorithm: alg}
}

// openJoin opens a join URL as a browser does and returns the status of
// BBB's answer (302 into the client when the join is accepted).
func openJoin(t *testing.T, join string) int {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(join)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestClientAgainstBBBValidator runs every call through the test server's
// copy of BBB's checksum validator, with each algorithm.
func TestClientAgainstBBBValidator(t *testing.T) {
	t.Parallel()
	for _, alg := range []bbb.Algorithm{bbb.SHA1, bbb.SHA256, bbb.SHA512} {
		t.Run(string(alg), func(t *testing.T) {
			t.Parallel()
			ts := bbbtest.New(t, bbbtest.Options{})
			srv := server(t, ts, alg)
			c := bbb.New(5*time.Second, nil)
			ctx := context.Background()

			if ms, err := c.GetMeetings(ctx, srv); err != nil || len(ms) != 0 {
				t.Fatalf("getMeetings on an empty server: %v, %v", ms, err)
			}
			// Names with spaces, Devanagari and reserved characters must be
			// signed exactly as sent.
			p := bbb.CreateParams{MeetingID: "lesson-1", Name: "कक्षा 6-A & friends+", AttendeePW: "ap1", ModeratorPW: "mp1",
				Meta: []bbb.Param{{Key: "shala-group", Value: "g/1 ?"}}}
			m, err := c.Create(ctx, srv, p)
			if err != nil {
				t.Fatal(err)
			}
			if m.MeetingID != "lesson-1" || m.CreateTime == 0 || m.Existing {
				t.Errorf("create: got %+v", m)
			}
			if got, _ := ts.Meeting("lesson-1"); got.Name != p.Name || got.Meta["shala-group"] != "g/1 ?" {
				t.Errorf("server holds %+v", got)
			}
			again, err := c.Create(ctx, srv, p)
			if err != nil || !again.Existing || again.CreateTime != m.CreateTime {
				t.Errorf("second create: got %+v, %v; want the same meeting, Existing", again, err)
			}
			running, err := c.IsMeetingRunning(ctx, srv, "lesson-1")
			if err != nil || running {
				t.Errorf("isMeetingRunning before anyone joined: %v, %v; want false", running, err)
			}

			join := srv.JoinURL(bbb.JoinParams{MeetingID: "lesson-1", FullName: "Asha Devi", Role: bbb.Viewer, Password: "ap1",
				UserID: "st-1", CreateTime: m.CreateTime})
			if st := openJoin(t, join); st != http.StatusFound {
				t.Fatalf("join: got HTTP %d, want 302", st)
			}
			info, err := c.GetMeetingInfo(ctx, srv, "lesson-1")
			if err != nil {
				t.Fatal(err)
			}
			if !info.Running || len(info.Attendees) != 1 || info.Attendees[0].UserID != "st-1" || info.Attendees[0].FullName != "Asha Devi" {
				t.Errorf("getMeetingInfo after a join: got %+v", info)
			}
			if running, _ := c.IsMeetingRunning(ctx, srv, "lesson-1"); !running {
				t.Error("isMeetingRunning after a join: false")
			}
			ms, err := c.GetMeetings(ctx, srv)
			if err != nil || len(ms) != 1 || ms[0].ParticipantCount != 1 {
				t.Errorf("getMeetings: %+v, %v", ms, err)
			}
			if err := c.End(ctx, srv, "lesson-1"); err != nil {
				t.Fatal(err)
			}
			// BBB keeps an ended meeting in memory a while, marked ended.
			if info, err := c.GetMeetingInfo(ctx, srv, "lesson-1"); err != nil || !info.ForciblyEnded || info.Running {
				t.Errorf("getMeetingInfo after end: got %+v, %v; want found, forcibly ended, not running", info, err)
			}
			if err := c.End(ctx, srv, "lesson-1"); err != nil {
				t.Errorf("second end: got %v, want it accepted again", err)
			}
			ts.Forget("lesson-1")
			if _, err := c.GetMeetingInfo(ctx, srv, "lesson-1"); !bbb.IsNotFound(err) {
				t.Errorf("getMeetingInfo once removed from memory: got %v, want notFound", err)
			}
			if err := c.End(ctx, srv, "lesson-1"); !bbb.IsNotFound(err) {
				t.Errorf("end once removed from memory: got %v, want notFound", err)
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	c := bbb.New(2*time.Second, nil)
	ctx := context.Background()

	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{})
		_, err := c.GetMeetings(ctx, bbb.Server{URL: ts.URL, Secret: "not-it", Algorithm: bbb.SHA256})
		if !bbb.IsChecksumError(err) || errors.Is(err, bbb.ErrUnreachable) {
			t.Errorf("got %v, want checksumError", err)
		}
	})
	t.Run("algorithm the server does not accept", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{Algorithms: []string{"sha512"}})
		if _, err := c.GetMeetings(ctx, server(t, ts, bbb.SHA256)); !bbb.IsChecksumError(err) {
			t.Errorf("sha256 on a sha512-only server: got %v, want checksumError", err)
		}
		if _, err := c.GetMeetings(ctx, server(t, ts, bbb.SHA512)); err != nil {
			t.Errorf("sha512: %v", err)
		}
	})
	t.Run("tampered query", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{})
		u := server(t, ts, bbb.SHA256).CallURL("getMeetingInfo", []bbb.Param{{Key: "meetingID", Value: "a1"}})
		resp, err := http.Get(strings.Replace(u, "meetingID=a1", "meetingID=a2", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		if !strings.Contains(b.String(), "checksumError") {
			t.Errorf("tampered call answered %s", b.String())
		}
	})
	t.Run("dropped connection is unreachable", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{})
		ts.SetDown(true)
		if _, err := c.GetMeetings(ctx, server(t, ts, bbb.SHA256)); !errors.Is(err, bbb.ErrUnreachable) {
			t.Errorf("got %v, want ErrUnreachable", err)
		}
	})
	t.Run("HTTP error is unreachable", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{})
		ts.Fail("create", bbbtest.Failure{Status: http.StatusBadGateway})
		_, err := c.Create(ctx, server(t, ts, bbb.SHA256), bbb.CreateParams{MeetingID: "m1", Name: "6-A"})
		if !errors.Is(err, bbb.ErrUnreachable) {
			t.Errorf("got %v, want ErrUnreachable", err)
		}
	})
	t.Run("timeout is unreachable", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{Latency: time.Second})
		_, err := bbb.New(50*time.Millisecond, nil).GetMeetings(ctx, server(t, ts, bbb.SHA256))
		if !errors.Is(err, bbb.ErrUnreachable) {
			t.Errorf("got %v, want ErrUnreachable", err)
		}
	})
	t.Run("caller giving up is not the server's fault", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{Latency: time.Second})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := c.GetMeetings(cctx, server(t, ts, bbb.SHA256))
		if errors.Is(err, bbb.ErrUnreachable) || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled and not ErrUnreachable", err)
		}
	})
	t.Run("FAILED answer", func(t *testing.T) {
		t.Parallel()
		ts := bbbtest.New(t, bbbtest.Options{})
		_, err := c.Create(ctx, server(t, ts, bbb.SHA256), bbb.CreateParams{MeetingID: "a,b", Name: "6-A"})
		var e *bbb.Error
		if !errors.As(err, &e) || e.Key != "validationError" {
			t.Errorf("got %v, want validationError", err)
		}
	})
}

// TestSecretNeverPrinted: the secret does not appear however a Server is
// printed or logged.
func TestSecretNeverPrinted(t *testing.T) {
	t.Parallel()
	s := bbb.Server{URL: "https://bbb.example.org/bigbluebutton/api/", Secret: "TOPSECRET-123", Algorithm: bbb.SHA256}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "server", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), logged.String()} {
		if strings.Contains(out, "TOPSECRET") {
			t.Errorf("secret printed: %s", out)
		}
	}
	ts := bbbtest.New(t, bbbtest.Options{Secret: "TOPSECRET-456"})
	ts.SetDown(true)
	_, err := bbb.New(time.Second, nil).GetMeetings(context.Background(), bbb.Server{URL: ts.URL, Secret: ts.Secret, Algorithm: bbb.SHA1})
	if err == nil || strings.Contains(err.Error(), "TOPSECRET") || strings.Contains(err.Error(), "checksum=") {
		t.Errorf("error carries the secret or the signed URL: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c := bbb.New(time.Second, bbb.NewMetrics(reg))
	ts := bbbtest.New(t, bbbtest.Options{})
	ctx := context.Background()
	if _, err := c.GetMeetings(ctx, server(t, ts, bbb.SHA256)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetMeetingInfo(ctx, server(t, ts, bbb.SHA256), "nope"); !bbb.IsNotFound(err) {
		t.Fatal(err)
	}
	ts.SetDown(true)
	if _, err := c.GetMeetings(ctx, server(t, ts, bbb.SHA256)); err == nil {
		t.Fatal("down server answered")
	}
	want := `
# HELP shala_bbb_requests_total BigBlueButton API calls by call and outcome (ok, failed, unreachable, cancelled).
# TYPE shala_bbb_requests_total counter
shala_bbb_requests_total{call="getMeetingInfo",outcome="failed"} 1
shala_bbb_requests_total{call="getMeetings",outcome="ok"} 1
shala_bbb_requests_total{call="getMeetings",outcome="unreachable"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "shala_bbb_requests_total"); err != nil {
		t.Error(err)
	}
}

// TestChecksumSurvivesReencoding: BBB 2.4 hashed the query after encoding
// it again the Java way (bigbluebutton#12919); shala's encoding is a fixed
// point of that, so names with '*', '~' or quotes are signed right on
// servers that hash the raw query and on those that re-encode it.
func TestChecksumSurvivesReencoding(t *testing.T) {
	t.Parallel()
	for _, reencode := range []bool{false, true} {
		t.Run(fmt.Sprintf("reencode=%v", reencode), func(t *testing.T) {
			t.Parallel()
			ts := bbbtest.New(t, bbbtest.Options{Reencode: reencode})
			srv := server(t, ts, bbb.SHA256)
			c := bbb.New(5*time.Second, nil)
			name := "6-A * Maths ~ D'Souza (हिंदी) 100% ;x"
			m, err := c.Create(context.Background(), srv, bbb.CreateParams{MeetingID: "m-1", Name: name, AttendeePW: "a", ModeratorPW: "m"})
			if err != nil {
				t.Fatalf("create named %q: %v", name, err)
			}
			if got, _ := ts.Meeting("m-1"); got.Name != name {
				t.Errorf("server holds the name %q, want %q", got.Name, name)
			}
			join := srv.JoinURL(bbb.JoinParams{MeetingID: "m-1", FullName: "O'Brien ~ Asha*", Role: bbb.Viewer, CreateTime: m.CreateTime})
			if st := openJoin(t, join); st != http.StatusFound {
				t.Errorf("join: HTTP %d, want 302", st)
			}
		})
	}
}
