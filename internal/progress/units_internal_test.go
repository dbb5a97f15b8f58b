package progress

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/pgtest"
)

// unitBundle is a school with one class 6 student, a UNIT assessment open
// to it asking class 6 HINDI, and one unit U1 defined for it.
type unitBundle struct {
	ctx       context.Context
	store     *Store
	school, a uuid.UUID
	exec      func(sql string, args ...any)
	tokenNow  func() string
}

func setupUnits(t *testing.T) *unitBundle {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	b := &unitBundle{ctx: ctx, store: NewStore(pool), school: uuid.New(), a: uuid.New()}
	b.exec = func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	b.tokenNow = func() string {
		t.Helper()
		var v string
		if err := pool.QueryRow(ctx, unitTokenSQL).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	b.exec(`INSERT INTO academic_year (id, starts_on, ends_on, is_current) VALUES ('2026-27', '2026-04-01', '2027-03-31', true)`)
	b.exec(`INSERT INTO school (id, udise, name, district, block, session) VALUES ($1, '02110500001', 'GPS', 'Shimla', 'Theog', 'W')`, b.school)
	b.exec(`INSERT INTO form_submission (xml, instance_id, form_id, form_version, status, source)
		VALUES ('<a/>', 'uuid:b', 'assessment_builder', '1', 'accepted', 'action')`)
	b.exec(`INSERT INTO assessment (id, submission_id, builder_instance_id, name, type, academic_year, unit_type, evaluation, outcome, total_marks, pass_percent)
		SELECT $1, id, 'uuid:b', 'U', 'SA1', '2026-27', 'UNIT', 'MARKS', 'TSP', 100, 33 FROM form_submission`, b.a)
	b.exec(`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 6, 'HINDI')`, b.a)
	b.exec(`INSERT INTO assessment_deadline (assessment_id, district, session, due_at) VALUES ($1, 'Shimla', 'W', now() + interval '9 days')`, b.a)
	b.exec(`INSERT INTO student (school_id, name, gender, grade, section) VALUES ($1, 'छात्रा', 'FEMALE', 6, 'A')`, b.school)
	b.exec(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U1', 'u', true)`)
	return b
}

// TestUnitCacheNeverServesOtherVersions: the listing's numbers of units
// come from a cache of one version; a listing whose snapshot is older than
// the numbers the database holds now is told so (and read again), and the
// last attempt reads them in its own snapshot.
func TestUnitCacheNeverServesOtherVersions(t *testing.T) {
	t.Parallel()
	b := setupUnits(t)
	ctx, s, exec, version, a, school := b.ctx, b.store, b.exec, b.tokenNow, b.a, b.school
	before := version()
	exec(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U2', 'u', true)`)
	now := version()
	if now == before {
		t.Fatalf("token %s after a unit was added, as before: want a new one", now)
	}
	want := map[unitKey]int{{a, 6, "HINDI"}: 2}

	// A snapshot from before the change: not ok, and the cache holds now's.
	got, ok, err := s.unitsAt(ctx, before)
	if err != nil || ok || !maps.Equal(got, want) {
		t.Errorf("unitsAt(%s) = %v, %v, %v; want %v, not ok (the database is at %s)", before, got, ok, err, want, now)
	}
	if s.units.token != now {
		t.Errorf("cache at token %s; want %s", s.units.token, now)
	}
	// now's numbers come from the cache, without reading: rows deleted
	// behind its back (assessment_unit_count has no trigger; no real
	// writer does this) would show if they were read.
	exec(`DELETE FROM assessment_unit_count`)
	if got, ok, err := s.unitsAt(ctx, now); err != nil || !ok || !maps.Equal(got, want) {
		t.Errorf("unitsAt(%s) = %v, %v, %v; want %v from the cache", now, got, ok, err, want)
	}
	// A cache holding other numbers is never served for a token it does
	// not hold: they are read again.
	if got, ok, err := s.unitsAt(ctx, "a token never issued"); err != nil || ok || len(got) != 0 {
		t.Errorf("unitsAt(another token) = %v, %v, %v; want the table as it is now (empty), not ok", got, ok, err)
	}
	exec(`SELECT assessment_unit_count_refresh()`)

	// The last attempt reads the numbers in the listing's own snapshot, and
	// both ways give the same listing.
	s.units.units = nil // drop the cache
	cached, err := s.read(ctx, school, false)
	if err != nil {
		t.Fatal(err)
	}
	own, err := s.read(ctx, school, true)
	if err != nil {
		t.Fatal(err)
	}
	c, o := cached.AppendJSON(nil), own.AppendJSON(nil)
	if string(c) != string(o) {
		t.Errorf("cached numbers:\n%s\nthe snapshot's:\n%s", c, o)
	}
	if n := own.Assessments[0].Classes[0].Subjects[0].TSPUnitsExpected; n == nil || *n != 2 {
		t.Errorf("tspUnitsExpected = %v; want 2", deref(n))
	}
}

// TestListingReadAgainWhenUnitsMoveUnderIt: master data changing between a
// listing's snapshot and its look-up of the numbers makes it read the
// listing again, so its numbers are always its ETag's.
func TestListingReadAgainWhenUnitsMoveUnderIt(t *testing.T) {
	t.Parallel()
	b := setupUnits(t)
	ctx, s, exec, school := b.ctx, b.store, b.exec, b.school

	reads := 0
	s.testBeforeUnits = func() {
		if reads++; reads == 1 { // after the first snapshot only
			exec(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U2', 'u', true)`)
		}
	}
	l, err := s.Listing(ctx, school)
	if err != nil {
		t.Fatal(err)
	}
	if reads != 2 {
		t.Errorf("the listing was read %d times; want 2 (read again after the units moved)", reads)
	}
	if n := l.Assessments[0].Classes[0].Subjects[0].TSPUnitsExpected; n == nil || *n != 2 {
		t.Errorf("tspUnitsExpected = %v; want 2 (both units)", deref(n))
	}
	if now, err := s.Version(ctx, school); err != nil || l.ETag != now {
		t.Errorf("listing ETag %s, version now %s (%v): want the same", l.ETag, now, err)
	}

	// Moving under every attempt, with the cache dropped each time (as a
	// process that never held those numbers): the third attempt reads them
	// in its own snapshot. U2 was active; each attempt toggles it after its
	// snapshot, so the third saw it active again: two units.
	reads = 0
	s.testBeforeUnits = func() {
		reads++
		exec(`UPDATE learning_objective SET active = NOT active WHERE code = 'U2'`)
		s.units.mu.Lock()
		s.units.units = nil
		s.units.mu.Unlock()
	}
	l, err = s.Listing(ctx, school)
	if err != nil {
		t.Fatal(err)
	}
	if reads != 3 {
		t.Errorf("the listing was read %d times; want 3", reads)
	}
	if n := l.Assessments[0].Classes[0].Subjects[0].TSPUnitsExpected; n == nil || *n != 2 {
		t.Errorf("tspUnitsExpected = %v; want 2 (its own snapshot's)", deref(n))
	}
	// A listing already in the cache's version is served from it, even if
	// the numbers move just after its snapshot: they are its ETag's.
	s.testBeforeUnits = nil
	if _, err := s.Listing(ctx, school); err != nil { // fills the cache
		t.Fatal(err)
	}
	reads = 0
	s.testBeforeUnits = func() {
		reads++
		exec(`UPDATE learning_objective SET active = NOT active WHERE code = 'U2'`)
	}
	before, err := s.Version(ctx, school)
	if err != nil {
		t.Fatal(err)
	}
	l, err = s.Listing(ctx, school)
	if err != nil {
		t.Fatal(err)
	}
	if reads != 1 || l.ETag != before {
		t.Errorf("read %d times, ETag %s; want once, with the ETag from before the change (%s)", reads, l.ETag, before)
	}
	// U2 was inactive before this listing's toggle: its numbers are one unit.
	if n := l.Assessments[0].Classes[0].Subjects[0].TSPUnitsExpected; n == nil || *n != 1 {
		t.Errorf("tspUnitsExpected = %v; want 1 (the numbers of its snapshot)", deref(n))
	}
}

func deref(n *int) any {
	if n == nil {
		return nil
	}
	return *n
}

// TestUnitsReadStopsWaitingWithItsCaller: a listing whose context ends
// while the shared read of the numbers waits (the table locked) gives up
// with its context's error; the read goes on for the others.
func TestUnitsReadStopsWaitingWithItsCaller(t *testing.T) {
	t.Parallel()
	b := setupUnits(t)
	lock, err := b.store.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Exec(b.ctx, `LOCK TABLE assessment_unit_count IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := b.store.unitsAt(ctx, b.tokenNow())
		done <- err
	}()
	// Cancel once the read waits on the lock.
	for {
		var waiting int
		if err := b.store.pool.QueryRow(b.ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE '%FROM assessment_unit_count%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("unitsAt after its context ended: %v; want context.Canceled", err)
	}
	if err := lock.Rollback(b.ctx); err != nil {
		t.Fatal(err)
	}
	// The shared read finishes for whoever asks next.
	if _, ok, err := b.store.unitsAt(b.ctx, b.tokenNow()); err != nil || !ok {
		t.Errorf("unitsAt after the lock: ok %v, %v", ok, err)
	}
}
