package lesson_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/bbb/bbbtest"
	"github.com/shala-edu/shala/internal/lesson"
)

// setupGroup is setup with a moderator ("M") and their group of 30 in
// region shimla.
func setupGroup(t *testing.T) (*bundle, lesson.Caller, lesson.Group) {
	t.Helper()
	b := setup(t)
	mod := b.moderator(t, "M")
	g, _ := b.group(t, mod, "shimla", 30)
	return b, mod, g
}

// serverOf is the server a lesson was placed on.
func (b *bundle) serverOf(t *testing.T, lessonID uuid.UUID) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := b.pool.QueryRow(context.Background(), `SELECT server_id FROM lesson WHERE id = $1`, lessonID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

type serverState struct {
	enabled          bool
	by, reason       string
	booked, capacity int
}

func (b *bundle) state(t *testing.T, id uuid.UUID) serverState {
	t.Helper()
	var s serverState
	var by, reason *string
	err := b.pool.QueryRow(context.Background(), `SELECT enabled, disabled_by, disabled_reason, booked, capacity FROM bbb_server WHERE id = $1`, id).
		Scan(&s.enabled, &by, &reason, &s.booked, &s.capacity)
	if err != nil {
		t.Fatal(err)
	}
	if by != nil {
		s.by = *by
	}
	if reason != nil {
		s.reason = *reason
	}
	return s
}

func (b *bundle) prefer(t *testing.T, groupID, serverID uuid.UUID, priority int) {
	t.Helper()
	b.exec(t, `INSERT INTO group_preferred_server (group_id, server_id, priority) VALUES ($1, $2, $3)`, groupID, serverID, priority)
}

func TestAllocation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("no servers", func(t *testing.T) {
		t.Parallel()
		b, mod, g := setupGroup(t)
		if _, err := b.rooms.Start(ctx, mod, g.ID); code(err) != lesson.CodeNoServer {
			t.Errorf("got %v, want NO_SERVER_AVAILABLE", err)
		}
	})
	excluded := map[string]func(b *bundle, t *testing.T, id uuid.UUID){
		"stale heartbeat": func(b *bundle, t *testing.T, id uuid.UUID) {
			b.exec(t, `UPDATE bbb_server SET last_heartbeat_at = now() - interval '61 seconds' WHERE id = $1`, id)
		},
		"disabled": func(b *bundle, t *testing.T, id uuid.UUID) {
			if _, err := b.servers.Disable(ctx, "a", id, "maintenance"); err != nil {
				t.Fatal(err)
			}
		},
		"overloaded": func(b *bundle, t *testing.T, id uuid.UUID) {
			b.exec(t, `UPDATE bbb_server SET cpu_count = 4, load_5m = 3.2 WHERE id = $1`, id)
		},
		"full": func(b *bundle, t *testing.T, id uuid.UUID) {
			b.exec(t, `UPDATE bbb_server SET capacity = 300, users = 271 WHERE id = $1`, id)
		},
	}
	for name, exclude := range excluded {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, mod, g := setupGroup(t)
			bad, _ := b.server(t, serverOpts{})
			exclude(b, t, bad)
			if _, err := b.rooms.Start(ctx, mod, g.ID); code(err) != lesson.CodeNoServer {
				t.Fatalf("only an excluded server: got %v, want NO_SERVER_AVAILABLE", err)
			}
			good, _ := b.server(t, serverOpts{})
			s, err := b.rooms.Start(ctx, mod, g.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got := b.serverOf(t, s.LessonID); got != good {
				t.Errorf("placed on %s, want the usable %s", got, good)
			}
		})
	}
	t.Run("just under the load limit", func(t *testing.T) {
		t.Parallel()
		b, mod, g := setupGroup(t)
		id, _ := b.server(t, serverOpts{})
		b.exec(t, `UPDATE bbb_server SET cpu_count = 4, load_5m = 3.19, capacity = 300, users = 270 WHERE id = $1`, id)
		if _, err := b.rooms.Start(ctx, mod, g.ID); err != nil {
			t.Errorf("load 0.7975 per CPU and exactly room for 30: %v", err)
		}
	})
	t.Run("region preference", func(t *testing.T) {
		t.Parallel()
		b, mod, g := setupGroup(t)
		_, _ = b.server(t, serverOpts{region: "delhi", capacity: 1000})
		local, _ := b.server(t, serverOpts{region: "shimla", capacity: 300})
		b.exec(t, `UPDATE bbb_server SET users = 200 WHERE id = $1`, local)
		s, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.serverOf(t, s.LessonID); got != local {
			t.Errorf("placed on %s, want the group's region's %s (fuller, but local)", got, local)
		}
	})
	t.Run("preferred beats region", func(t *testing.T) {
		t.Parallel()
		b, mod, g := setupGroup(t)
		_, _ = b.server(t, serverOpts{region: "shimla"})
		second, _ := b.server(t, serverOpts{region: "delhi"})
		first, _ := b.server(t, serverOpts{region: "delhi"})
		b.exec(t, `UPDATE bbb_server SET users = 250 WHERE id = $1`, first)
		b.prefer(t, g.ID, second, 2)
		b.prefer(t, g.ID, first, 1)
		s, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.serverOf(t, s.LessonID); got != first {
			t.Errorf("placed on %s, want the priority-1 preferred server %s", got, first)
		}
	})
	t.Run("failover disables the dead server", func(t *testing.T) {
		t.Parallel()
		b, mod, g := setupGroup(t)
		dead, deadTS := b.server(t, serverOpts{})
		alive, aliveTS := b.server(t, serverOpts{})
		b.prefer(t, g.ID, dead, 1)
		deadTS.SetDown(true)
		s, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.serverOf(t, s.LessonID); got != alive {
			t.Errorf("placed on %s, want %s", got, alive)
		}
		if st := b.state(t, dead); st.enabled || st.by != lesson.DisabledUnreachable || !strings.Contains(st.reason, "create") || st.booked != 0 {
			t.Errorf("dead server: %+v; want disabled as unreachable with the reason, no seats booked", st)
		}
		if st := b.state(t, alive); st.booked != 30 {
			t.Errorf("alive server booked %d, want 30", st.booked)
		}
		if ms := aliveTS.Meetings(); len(ms) != 1 || ms[0].ID != s.LessonID.String() {
			t.Errorf("meetings on the alive server: %+v", ms)
		}
		if !strings.Contains(s.JoinURL, aliveTS.Host) {
			t.Errorf("join URL is not on the alive server")
		}
	})
	t.Run("at most two more servers", func(t *testing.T) {
		t.Parallel()
		b, mod, g := setupGroup(t)
		var dead []uuid.UUID
		for i := range 3 {
			id, ts := b.server(t, serverOpts{})
			ts.Fail("create", bbbtest.Failure{Status: 502})
			b.prefer(t, g.ID, id, i+1)
			dead = append(dead, id)
		}
		spare, spareTS := b.server(t, serverOpts{})
		_, err := b.rooms.Start(ctx, mod, g.ID)
		if code(err) != lesson.CodeNoServer {
			t.Fatalf("got %v, want NO_SERVER_AVAILABLE after three servers", err)
		}
		for _, id := range dead {
			if st := b.state(t, id); st.enabled || st.booked != 0 {
				t.Errorf("failed server %s: %+v", id, st)
			}
		}
		if st := b.state(t, spare); !st.enabled || st.booked != 0 || spareTS.Calls("create") != 0 {
			t.Errorf("a fourth server was tried: %+v, %d creates", st, spareTS.Calls("create"))
		}
		var status string
		var booked int
		if err := b.pool.QueryRow(ctx, `SELECT status, booked FROM lesson WHERE group_id = $1`, g.ID).Scan(&status, &booked); err != nil ||
			status != "failed" || booked != 0 {
			t.Errorf("lesson: %s, booked %d (%v); want failed, 0", status, booked, err)
		}
	})
	t.Run("a refused create moves on without disabling", func(t *testing.T) {
		t.Parallel()
		b, mod, g := setupGroup(t)
		first, ts := b.server(t, serverOpts{})
		b.prefer(t, g.ID, first, 1)
		ts.Fail("create", bbbtest.Failure{Key: "maxMeetingsReached", Message: "full"})
		second, _ := b.server(t, serverOpts{})
		s, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.serverOf(t, s.LessonID); got != second {
			t.Errorf("placed on %s, want %s", got, second)
		}
		if st := b.state(t, first); !st.enabled || st.booked != 0 {
			t.Errorf("refusing server: %+v; want enabled, nothing booked", st)
		}
	})
}

// TestBurstSpreadsByCapacity: 200 lessons of 30 students started at once on
// 22 servers of different sizes; every server ends at most one lesson above
// its fair share by capacity.
func TestBurstSpreadsByCapacity(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	caps := map[uuid.UUID]int{}
	total := 0
	for i := range 22 {
		c := 250
		if i%2 == 0 {
			c = 400
		}
		id, _ := b.server(t, serverOpts{capacity: c})
		caps[id] = c
		total += c
	}
	mod := b.moderator(t, "M")
	const lessons, roster = 200, 30
	groups := make([]uuid.UUID, lessons)
	for i := range groups {
		g, _ := b.group(t, mod, "shimla", roster)
		groups[i] = g.ID
	}

	// Every server reports just before the burst (building 200 groups can
	// outlast the 60 s a heartbeat counts on a slow machine).
	b.exec(t, `UPDATE bbb_server SET last_heartbeat_at = now()`)
	work := make(chan uuid.UUID)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range 16 {
		wg.Go(func() {
			for g := range work {
				if _, err := b.rooms.Start(ctx, mod, g); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, g := range groups {
		work <- g
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d starts failed, first: %v", len(errs), errs[0])
	}

	booked := 0
	for id, c := range caps {
		st := b.state(t, id)
		booked += st.booked
		fair := float64(lessons*roster) * float64(c) / float64(total)
		if float64(st.booked) > fair+roster {
			t.Errorf("server of capacity %d: %d seats booked, fair share %.1f + one lesson = %.1f", c, st.booked, fair, fair+roster)
		}
	}
	if booked != lessons*roster {
		t.Errorf("%d seats booked in all, want %d", booked, lessons*roster)
	}
	var live, distinct int
	if err := b.pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT group_id) FROM lesson WHERE status = 'running'`).Scan(&live, &distinct); err != nil ||
		live != lessons || distinct != lessons {
		t.Errorf("running lessons: %d for %d groups (%v), want %d", live, distinct, err, lessons)
	}
	var drift int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM bbb_server s WHERE s.booked <>
		(SELECT coalesce(sum(l.booked), 0) FROM lesson l WHERE l.server_id = s.id AND l.ended_at IS NULL)`).Scan(&drift); err != nil || drift != 0 {
		t.Errorf("%d servers' booked seats differ from their lessons (%v)", drift, err)
	}
}

// TestConcurrentStartsMakeOneMeeting: a second start of a group while the
// first is creating the meeting waits and then reuses that meeting.
func TestConcurrentStartsMakeOneMeeting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	inCreate, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	_, ts := b.server(t, serverOpts{before: func(call string) {
		if call == "create" {
			once.Do(func() {
				close(inCreate)
				<-release
			})
		}
	}})
	contended := make(chan struct{}, 1)
	b.rooms.SetContended(func() { contended <- struct{}{} })
	mod := b.moderator(t, "M")
	g, _ := b.group(t, mod, "shimla", 30)

	type result struct {
		s   lesson.Started
		err error
	}
	first, second := make(chan result, 1), make(chan result, 1)
	go func() {
		s, err := b.rooms.Start(ctx, mod, g.ID)
		first <- result{s, err}
	}()
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	select {
	case <-inCreate: // the first start is creating the meeting
	case r := <-first:
		t.Fatalf("the first start ended before creating a meeting: %v", r.err)
	}
	go func() {
		s, err := b.rooms.Start(ctx, mod, g.ID)
		second <- result{s, err}
	}()
	var r2 result
	select {
	case <-contended: // the second start waits for the first
		unblock()
		r2 = <-second
	case r2 = <-second:
		unblock()
		t.Errorf("the second start did not wait for the first: %+v, %v", r2.s, r2.err)
	}
	r1 := <-first
	if r1.err != nil || r2.err != nil {
		t.Fatalf("starts: %v, %v", r1.err, r2.err)
	}
	if r1.s.LessonID != r2.s.LessonID || !r2.s.Reused || r1.s.Reused {
		t.Errorf("lessons %s and %s (reused %v, %v); want one lesson, the second reusing it", r1.s.LessonID, r2.s.LessonID, r1.s.Reused, r2.s.Reused)
	}
	if ms := ts.Meetings(); len(ms) != 1 {
		t.Errorf("%d meetings on the server, want 1", len(ms))
	}
	var n, booked int
	if err := b.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(booked), 0) FROM lesson WHERE group_id = $1`, g.ID).Scan(&n, &booked); err != nil ||
		n != 1 || booked != 30 {
		t.Errorf("%d lessons booking %d seats (%v), want 1 lesson of 30", n, booked, err)
	}
}

func TestReuse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("running meeting", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, ts := b.server(t, serverOpts{})
		mod := b.moderator(t, "Meena Sharma")
		g, _ := b.group(t, mod, "shimla", 30)
		s1, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		follow(t, s1.JoinURL)
		m, _ := ts.Meeting(s1.LessonID.String())
		if len(m.Attendees) != 1 || m.Attendees[0].FullName != "Meena Sharma" || m.Attendees[0].Role != "MODERATOR" {
			t.Errorf("the moderator joined as %+v", m.Attendees)
		}
		s2, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s2.LessonID != s1.LessonID || !s2.Reused || ts.Calls("create") != 1 || ts.Calls("isMeetingRunning") != 1 {
			t.Errorf("second start: %+v; %d creates, %d isMeetingRunning", s2, ts.Calls("create"), ts.Calls("isMeetingRunning"))
		}
	})
	t.Run("meeting gone from an enabled server is made again", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, ts := b.server(t, serverOpts{})
		mod := b.moderator(t, "M")
		g, _ := b.group(t, mod, "shimla", 30)
		s1, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		ts.Forget(s1.LessonID.String())
		s2, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s2.LessonID != s1.LessonID || len(ts.Meetings()) != 1 {
			t.Errorf("got lesson %s (first %s), %d meetings", s2.LessonID, s1.LessonID, len(ts.Meetings()))
		}
	})
	t.Run("meeting ended in BBB: a new lesson under a new meeting id", func(t *testing.T) {
		t.Parallel()
		l := setupLesson(t, 30)
		b, ts, mod, g, s1 := l.bundle, l.ts, l.mod, l.g, l.s
		follow(t, s1.JoinURL)
		// The teacher pressed "End meeting"; BBB keeps the ended meeting in
		// memory a while, and a meeting made again under its id would be
		// ambiguous to BBB (it finds meetings by the id's prefix).
		if err := b.client.End(ctx, bbb.Server{URL: ts.URL, Secret: ts.Secret, Algorithm: bbb.SHA256}, s1.LessonID.String()); err != nil {
			t.Fatal(err)
		}
		s2, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s2.LessonID == s1.LessonID || s2.Reused {
			t.Errorf("second start: %+v; want a new lesson (the first was ended in BBB)", s2)
		}
		if old, _ := ts.Meeting(s1.LessonID.String()); !old.Ended {
			t.Errorf("the ended meeting was made again: %+v", old)
		}
		if m, ok := ts.Meeting(s2.LessonID.String()); !ok || m.Ended {
			t.Errorf("new meeting: %+v (found %v)", m, ok)
		}
	})
	t.Run("unreachable server: a new lesson elsewhere", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		first, ts := b.server(t, serverOpts{})
		mod := b.moderator(t, "M")
		g, _ := b.group(t, mod, "shimla", 30)
		s1, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		second, _ := b.server(t, serverOpts{})
		ts.SetDown(true)
		s2, err := b.rooms.Start(ctx, mod, g.ID)
		if err != nil {
			t.Fatal(err)
		}
		if s2.LessonID == s1.LessonID || s2.Reused || b.serverOf(t, s2.LessonID) != second {
			t.Errorf("second start: %+v on %s", s2, b.serverOf(t, s2.LessonID))
		}
		if st := b.state(t, first); st.enabled || st.booked != 0 {
			t.Errorf("unreachable server: %+v", st)
		}
		var status string
		if err := b.pool.QueryRow(ctx, `SELECT status FROM lesson WHERE id = $1`, s1.LessonID).Scan(&status); err != nil || status != "ended" {
			t.Errorf("first lesson: %s (%v), want ended", status, err)
		}
		// Its students may still be in the old meeting (the server may only
		// have missed one call): it is ended once the server answers, so
		// they come back through their links to the new lesson instead of
		// waiting for a teacher who is elsewhere.
		var jobs int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'lesson.end_meeting' AND args->>'lesson_id' = $1`,
			s1.LessonID.String()).Scan(&jobs); err != nil || jobs != 1 {
			t.Errorf("end-meeting jobs for the first lesson: %d (%v), want 1", jobs, err)
		}
	})
	t.Run("another moderator's group", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.server(t, serverOpts{})
		mine, other := b.moderator(t, "A"), b.moderator(t, "B")
		g, _ := b.group(t, mine, "shimla", 3)
		if _, err := b.rooms.Start(ctx, other, g.ID); err == nil || code(err) != "NOT_FOUND" {
			t.Errorf("got %v, want NOT_FOUND", err)
		}
	})
}
