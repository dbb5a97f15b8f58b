package lesson_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/bbb/bbbtest"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/lesson"
)

// liveLesson is a running lesson of a group on one server.
type liveLesson struct {
	*bundle
	ts  *bbbtest.Server
	mod lesson.Caller
	g   lesson.Group
	st  []lesson.Student
	s   lesson.Started
}

// setupLesson is setup with one server and a running lesson of a group of
// n students.
func setupLesson(t *testing.T, n int) liveLesson {
	t.Helper()
	l := liveLesson{bundle: setup(t)}
	_, l.ts = l.server(t, serverOpts{})
	l.mod = l.moderator(t, "M")
	l.g, l.st = l.group(t, l.mod, "shimla", n)
	var err error
	if l.s, err = l.rooms.Start(context.Background(), l.mod, l.g.ID); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestJoin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("waiting, then in", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, ts := b.server(t, serverOpts{})
		mod := b.moderator(t, "M")
		g, st := b.group(t, mod, "shimla", 3)
		j, err := b.rooms.Join(ctx, st[0].Token)
		if err != nil || j.State != lesson.Waiting || j.URL != "" || j.StudentName != "Student 1" || j.GroupName != g.Name {
			t.Fatalf("before the lesson: %+v, %v", j, err)
		}
		s, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j, err := b.rooms.Status(ctx, strings.ToLower(st[0].Token)); err != nil || j.State != lesson.Ready {
			t.Errorf("status once it runs (lower-case token): %+v, %v", j, err)
		}
		j, err = b.rooms.Join(ctx, strings.ToLower(st[0].Token))
		if err != nil || j.State != lesson.Ready || j.URL == "" {
			t.Fatalf("join: %+v, %v", j, err)
		}
		follow(t, j.URL)
		m, _ := ts.Meeting(s.LessonID.String())
		if len(m.Attendees) != 1 || m.Attendees[0].FullName != "Student 1" || m.Attendees[0].Role != "VIEWER" ||
			!strings.HasPrefix(m.Attendees[0].UserID, "st-") {
			t.Errorf("attendees: %+v", m.Attendees)
		}
		var joined *time.Time
		if err := b.pool.QueryRow(ctx, `SELECT last_joined_at FROM group_student WHERE id = $1`, st[0].ID).Scan(&joined); err != nil || joined == nil {
			t.Errorf("last_joined_at not set (%v)", err)
		}
	})
	t.Run("a third live session is refused", func(t *testing.T) {
		t.Parallel()
		p := lesson.DefaultPolicy()
		p.JoinGrace = 0 // count only what getMeetingInfo shows
		b := setupPolicy(t, p)
		_, ts := b.server(t, serverOpts{})
		mod := b.moderator(t, "M")
		g, st := b.group(t, mod, "shimla", 3)
		s, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			j, err := b.rooms.Join(ctx, st[0].Token)
			if err != nil {
				t.Fatalf("join %d: %v", i+1, err)
			}
			follow(t, j.URL)
		}
		if _, err := b.rooms.Join(ctx, st[0].Token); code(err) != lesson.CodeTooManySessions {
			t.Fatalf("third join: got %v, want TOO_MANY_SESSIONS", err)
		}
		if j, err := b.rooms.Join(ctx, st[1].Token); err != nil || j.State != lesson.Ready {
			t.Errorf("another student: %+v, %v", j, err)
		}
		m, _ := ts.Meeting(s.LessonID.String())
		ts.Leave(s.LessonID.String(), m.Attendees[0].UserID)
		if _, err := b.rooms.Join(ctx, st[0].Token); err != nil {
			t.Errorf("after one device left: %v", err)
		}
	})
	t.Run("links handed out count before their browsers arrive", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.server(t, serverOpts{})
		mod := b.moderator(t, "M")
		g, st := b.group(t, mod, "shimla", 1)
		if _, err := b.rooms.Start(ctx, mod, g.ID); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := b.rooms.Join(ctx, st[0].Token); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.rooms.Join(ctx, st[0].Token); code(err) != lesson.CodeTooManySessions {
			t.Errorf("a third link within the grace: got %v, want TOO_MANY_SESSIONS", err)
		}
	})
	t.Run("a device in the meeting and a link on its way are two sessions", func(t *testing.T) {
		t.Parallel()
		l := setupLesson(t, 1)
		b, ts, st, s := l.bundle, l.ts, l.st, l.s
		// The first device is in the meeting, its link handed out long ago.
		j, err := b.rooms.Join(ctx, st[0].Token)
		if err != nil {
			t.Fatal(err)
		}
		follow(t, j.URL)
		b.exec(t, `UPDATE lesson_join SET granted_at = now() - interval '5 minutes'`)
		// A friend's link is handed out; their browser is still loading.
		if _, err := b.rooms.Join(ctx, st[0].Token); err != nil {
			t.Fatalf("second device: %v", err)
		}
		if _, err := b.rooms.Join(ctx, st[0].Token); code(err) != lesson.CodeTooManySessions {
			t.Errorf("third device (one in the meeting, one on its way): got %v, want TOO_MANY_SESSIONS", err)
		}
		if m, _ := ts.Meeting(s.LessonID.String()); len(m.Attendees) != 1 {
			t.Errorf("attendees: %+v", m.Attendees)
		}
	})
	t.Run("a device that dropped out gets back in", func(t *testing.T) {
		t.Parallel()
		l := setupLesson(t, 1)
		b, ts, st, s := l.bundle, l.ts, l.st, l.s
		for i := range 2 {
			j, err := b.rooms.Join(ctx, st[0].Token)
			if err != nil {
				t.Fatalf("device %d: %v", i+1, err)
			}
			follow(t, j.URL)
		}
		// One device's connection drops; it opens the link again at once
		// (its earlier link is still within the grace period).
		m, _ := ts.Meeting(s.LessonID.String())
		ts.Leave(s.LessonID.String(), m.Attendees[0].UserID)
		j, err := b.rooms.Join(ctx, st[0].Token)
		if err != nil {
			t.Fatalf("back in after a drop: %v", err)
		}
		follow(t, j.URL)
		m, _ = ts.Meeting(s.LessonID.String())
		if len(m.Attendees) != 2 || m.Attendees[0].UserID == m.Attendees[1].UserID {
			t.Errorf("attendees after the rejoin: %+v; want two devices, one user id each", m.Attendees)
		}
		if _, err := b.rooms.Join(ctx, st[0].Token); code(err) != lesson.CodeTooManySessions {
			t.Errorf("a third device: got %v, want TOO_MANY_SESSIONS", err)
		}
	})
	t.Run("meeting gone: the lesson ends and its pages wait", func(t *testing.T) {
		t.Parallel()
		l := setupLesson(t, 1)
		b, ts, st, s := l.bundle, l.ts, l.st, l.s
		ts.Forget(s.LessonID.String()) // the teacher ended it in BBB
		if j, err := b.rooms.Join(ctx, st[0].Token); err != nil || j.State != lesson.Waiting {
			t.Errorf("join: %+v, %v; want waiting", j, err)
		}
		// The waiting page polls status: it must not say "ready" and send
		// the page back in again and again.
		if j, err := b.rooms.Status(ctx, st[0].Token); err != nil || j.State != lesson.Waiting {
			t.Errorf("status after the join saw the meeting gone: %+v, %v; want waiting", j, err)
		}
		var status string
		var booked int
		if err := b.pool.QueryRow(ctx, `SELECT l.status, s.booked FROM lesson l JOIN bbb_server s ON s.id = l.server_id WHERE l.id = $1`,
			s.LessonID).Scan(&status, &booked); err != nil || status != "ended" || booked != 0 {
			t.Errorf("lesson %s, server booked %d (%v); want ended, 0", status, booked, err)
		}
	})
	t.Run("meeting ended in BBB, still in its memory: the lesson ends", func(t *testing.T) {
		t.Parallel()
		l := setupLesson(t, 1)
		b, ts, st, s := l.bundle, l.ts, l.st, l.s
		srv := bbb.Server{URL: ts.URL, Secret: ts.Secret, Algorithm: bbb.SHA256}
		if err := b.client.End(ctx, srv, s.LessonID.String()); err != nil { // the teacher's "End meeting"
			t.Fatal(err)
		}
		if j, err := b.rooms.Join(ctx, st[0].Token); err != nil || j.State != lesson.Waiting || j.URL != "" {
			t.Errorf("join: %+v, %v; want waiting, no join URL (BBB would refuse it)", j, err)
		}
		if j, err := b.rooms.Status(ctx, st[0].Token); err != nil || j.State != lesson.Waiting {
			t.Errorf("status: %+v, %v; want waiting", j, err)
		}
	})
	t.Run("server down: wait, the lesson kept", func(t *testing.T) {
		t.Parallel()
		l := setupLesson(t, 1)
		b, ts, st, s := l.bundle, l.ts, l.st, l.s
		ts.SetDown(true)
		if j, err := b.rooms.Join(ctx, st[0].Token); err != nil || j.State != lesson.Waiting || !j.Unreachable {
			t.Errorf("server down: %+v, %v; want waiting, unreachable", j, err)
		}
		var status string
		if err := b.pool.QueryRow(ctx, `SELECT status FROM lesson WHERE id = $1`, s.LessonID).Scan(&status); err != nil || status != "running" {
			t.Errorf("lesson %s (%v); want running (an unreachable server is the sweep's to judge)", status, err)
		}
	})
	t.Run("unknown tokens", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for _, tok := range []string{"ZZZZZZ", "O00000", "", "ABCDEFG", "../../x"} {
			if _, err := b.rooms.Join(ctx, tok); fault.KindOf(err) != fault.NotFound {
				t.Errorf("Join(%q): got %v, want NotFound", tok, err)
			}
			if _, err := b.rooms.Status(ctx, tok); fault.KindOf(err) != fault.NotFound {
				t.Errorf("Status(%q): got %v, want NotFound", tok, err)
			}
		}
	})
}

func TestEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	_, ts := b.server(t, serverOpts{})
	mod, other := b.moderator(t, "M"), b.moderator(t, "O")
	g, _ := b.group(t, mod, "shimla", 30)
	s, err := b.rooms.Start(ctx, mod, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.rooms.End(ctx, other, s.LessonID); fault.KindOf(err) != fault.NotFound {
		t.Errorf("another moderator ends it: got %v, want NotFound", err)
	}
	e, err := b.rooms.End(ctx, mod, s.LessonID)
	if err != nil || e.EndedAt.IsZero() {
		t.Fatalf("end: %+v, %v", e, err)
	}
	var booked, jobs int
	if err := b.pool.QueryRow(ctx, `SELECT booked FROM bbb_server`).Scan(&booked); err != nil || booked != 0 {
		t.Errorf("seats still booked: %d (%v)", booked, err)
	}
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'lesson.end_meeting'`).Scan(&jobs); err != nil || jobs != 1 {
		t.Errorf("end-meeting jobs: %d (%v), want 1", jobs, err)
	}
	again, err := b.rooms.End(ctx, mod, s.LessonID)
	if err != nil || !again.EndedAt.Equal(e.EndedAt) {
		t.Errorf("ending twice: %+v, %v; want the first end", again, err)
	}
	w := &lesson.EndMeetingWorker{Pool: b.pool, BBB: b.client}
	job := &river.Job[lesson.EndMeetingArgs]{Args: lesson.EndMeetingArgs{LessonID: s.LessonID}}
	if err := w.Work(ctx, job); err != nil {
		t.Fatal(err)
	}
	if m, ok := ts.Meeting(s.LessonID.String()); !ok || !m.Ended {
		t.Errorf("meeting on the server: %+v (found %v); want ended", m, ok)
	}
	if err := w.Work(ctx, job); err != nil {
		t.Errorf("ending an ended meeting again: %v", err)
	}
	ts.Forget(s.LessonID.String())
	if err := w.Work(ctx, job); err != nil {
		t.Errorf("ending a meeting that is gone: %v", err)
	}
	ts.SetDown(true)
	if err := w.Work(ctx, job); err == nil {
		t.Error("an unreachable server counted as ended")
	}
	// A new start after the end is a new lesson.
	ts.SetDown(false)
	s2, err := b.rooms.Start(ctx, mod, g.ID)
	if err != nil || s2.LessonID == s.LessonID {
		t.Errorf("start after end: %+v, %v", s2, err)
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	start := func(t *testing.T, b *bundle) (lesson.Started, *bundle) {
		t.Helper()
		mod := b.moderator(t, "M")
		g, _ := b.group(t, mod, "shimla", 30)
		s, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		b.exec(t, `UPDATE lesson SET started_at = now() - interval '3 minutes' WHERE id = $1`, s.LessonID)
		return s, b
	}
	status := func(t *testing.T, b *bundle, s lesson.Started) (string, int) {
		t.Helper()
		var st string
		var booked int
		if err := b.pool.QueryRow(ctx, `SELECT l.status, s.booked FROM lesson l JOIN bbb_server s ON s.id = l.server_id WHERE l.id = $1`,
			s.LessonID).Scan(&st, &booked); err != nil {
			t.Fatal(err)
		}
		return st, booked
	}

	t.Run("meeting gone: ended and released", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, ts := b.server(t, serverOpts{})
		s, _ := start(t, b)
		ts.Forget(s.LessonID.String())
		res, err := b.rooms.Sweep(ctx)
		if err != nil || res.Ended != 1 {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		if st, booked := status(t, b, s); st != "ended" || booked != 0 {
			t.Errorf("lesson %s, server booked %d; want ended, 0", st, booked)
		}
	})
	t.Run("meeting ended in BBB, still in its memory: ended", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, ts := b.server(t, serverOpts{})
		s, _ := start(t, b)
		if err := b.client.End(ctx, bbb.Server{URL: ts.URL, Secret: ts.Secret, Algorithm: bbb.SHA256}, s.LessonID.String()); err != nil {
			t.Fatal(err)
		}
		if res, err := b.rooms.Sweep(ctx); err != nil || res.Ended != 1 {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		if st, booked := status(t, b, s); st != "ended" || booked != 0 {
			t.Errorf("lesson %s, server booked %d; want ended, 0", st, booked)
		}
	})
	t.Run("meeting running: untouched", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.server(t, serverOpts{})
		s, _ := start(t, b)
		if res, err := b.rooms.Sweep(ctx); err != nil || res.Ended != 0 || res.Checked != 1 {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		if st, booked := status(t, b, s); st != "running" || booked != 30 {
			t.Errorf("lesson %s, booked %d", st, booked)
		}
	})
	t.Run("server unreachable: left for the next sweep", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, ts := b.server(t, serverOpts{})
		s, _ := start(t, b)
		ts.SetDown(true)
		if res, err := b.rooms.Sweep(ctx); err != nil || res.Unreachable != 1 || res.Ended != 0 {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		if st, _ := status(t, b, s); st != "running" {
			t.Errorf("lesson %s, want running", st)
		}
	})
	t.Run("a start that never finished", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.server(t, serverOpts{})
		s, _ := start(t, b)
		b.exec(t, `UPDATE lesson SET status = 'starting' WHERE id = $1`, s.LessonID)
		if res, err := b.rooms.Sweep(ctx); err != nil || res.Settled != 1 {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		if st, _ := status(t, b, s); st != "running" {
			t.Errorf("lesson %s, want running (its meeting exists)", st)
		}
	})
	t.Run("too old", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.server(t, serverOpts{})
		s, _ := start(t, b)
		b.exec(t, `UPDATE lesson SET started_at = now() - interval '13 hours' WHERE id = $1`, s.LessonID)
		if res, err := b.rooms.Sweep(ctx); err != nil || res.Ended != 1 {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		var jobs int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'lesson.end_meeting'`).Scan(&jobs); err != nil || jobs != 1 {
			t.Errorf("end-meeting jobs: %d (%v), want 1", jobs, err)
		}
	})
	// oneAtATime: sweeps of one lesson each, and two live lessons.
	oneAtATime := func(t *testing.T) (b *bundle, ts *bbbtest.Server, older, newer lesson.Started) {
		t.Helper()
		p := lesson.DefaultPolicy()
		p.SweepBatch = 1
		b = setupPolicy(t, p)
		_, ts = b.server(t, serverOpts{})
		older, _ = start(t, b)
		newer, _ = start(t, b)
		b.exec(t, `UPDATE lesson SET started_at = now() - interval '4 minutes' WHERE id = $1`, older.LessonID)
		return b, ts, older, newer
	}
	t.Run("more live lessons than a sweep checks: each gets its turn", func(t *testing.T) {
		t.Parallel()
		b, ts, _, newer := oneAtATime(t)
		ts.Forget(newer.LessonID.String()) // the newer lesson's meeting is over
		for i := range 2 {
			if _, err := b.rooms.Sweep(ctx); err != nil {
				t.Fatalf("sweep %d: %v", i+1, err)
			}
		}
		if st, booked := status(t, b, newer); st != "ended" || booked != 30 {
			t.Errorf("after two sweeps of one lesson each: newer lesson %s, server booked %d; want ended, 30 (the older one's)", st, booked)
		}
	})
	t.Run("a sweep out of time: the lessons it did not reach come first next time", func(t *testing.T) {
		t.Parallel()
		b, ts, older, _ := oneAtATime(t)
		ts.Forget(older.LessonID.String()) // the older lesson's meeting is over
		// Too little time left for any check: the run reaches no lesson.
		short, cancel := context.WithTimeout(ctx, lesson.SettleTime/2)
		defer cancel()
		if res, err := b.rooms.Sweep(short); err != nil || res.Checked != 0 {
			t.Fatalf("sweep out of time: %+v, %v; want nothing checked", res, err)
		}
		if res, err := b.rooms.Sweep(ctx); err != nil || res.Checked != 1 {
			t.Fatalf("next sweep: %+v, %v", res, err)
		}
		if st, _ := status(t, b, older); st != "ended" {
			t.Errorf("after a sweep that reached nothing and one of one lesson: older lesson %s; want ended (it was never checked, so it comes first)", st)
		}
	})
	t.Run("booked seats corrected", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id, _ := b.server(t, serverOpts{})
		start(t, b)
		b.exec(t, `UPDATE bbb_server SET booked = 999 WHERE id = $1`, id)
		if res, err := b.rooms.Sweep(ctx); err != nil || res.Rebooked != 1 {
			t.Fatalf("sweep: %+v, %v", res, err)
		}
		if st := b.state(t, id); st.booked != 30 {
			t.Errorf("booked %d after the sweep, want 30", st.booked)
		}
	})
}
