package progress

import (
	"context"
	"maps"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/pgtest"
)

// TestUnitCacheNeverServesOtherVersions: the listing's numbers of units
// come from a cache of one version; a listing whose snapshot is older than
// the numbers the database holds now is told so (and read again), and the
// last attempt reads them in its own snapshot.
func TestUnitCacheNeverServesOtherVersions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	s := NewStore(pool)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	version := func() int64 {
		t.Helper()
		var v int64
		if err := pool.QueryRow(ctx, unitVersionSQL).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	exec(`INSERT INTO academic_year (id, starts_on, ends_on, is_current) VALUES ('2026-27', '2026-04-01', '2027-03-31', true)`)
	exec(`INSERT INTO school (id, udise, name, district, block, session) VALUES ('5e000000-0000-4000-8000-000000000001', '02110500001', 'GPS', 'Shimla', 'Theog', 'W')`)
	sub := uuid.New()
	exec(`INSERT INTO form_submission (id, xml, instance_id, form_id, form_version, status, source)
		VALUES ($1, '<a/>', 'uuid:b', 'assessment_builder', '1', 'accepted', 'action')`, sub)
	a := uuid.New()
	exec(`INSERT INTO assessment (id, submission_id, builder_instance_id, name, type, academic_year, unit_type, evaluation, outcome, total_marks, pass_percent)
		VALUES ($1, $2, 'uuid:b', 'U', 'SA1', '2026-27', 'UNIT', 'MARKS', 'TSP', 100, 33)`, a, sub)
	exec(`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 6, 'HINDI')`, a)
	exec(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U1', 'u', true)`)
	before := version()
	exec(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U2', 'u', true)`)
	now := version()
	if now <= before {
		t.Fatalf("version %d after a unit was added, %d before: want it bumped", now, before)
	}
	want := map[unitKey]int{{a, 6, "HINDI"}: 2}

	// A snapshot from before the change: not ok, and the cache holds now's.
	got, ok, err := s.unitsAt(ctx, before)
	if err != nil || ok || !maps.Equal(got, want) {
		t.Errorf("unitsAt(%d) = %v, %v, %v; want %v, not ok (the database is at %d)", before, got, ok, err, want, now)
	}
	if s.units.version != now {
		t.Errorf("cache at version %d; want %d", s.units.version, now)
	}
	// An older snapshot never takes the cache back.
	if _, _, err := s.unitsAt(ctx, before); err != nil || s.units.version != now {
		t.Errorf("after an older reader: cache at %d (%v); want %d", s.units.version, err, now)
	}
	// now's numbers come from the cache, without reading: rows deleted
	// behind its back (assessment_unit_count has no trigger; no real
	// writer does this) would show if they were read.
	exec(`DELETE FROM assessment_unit_count`)
	if got, ok, err := s.unitsAt(ctx, now); err != nil || !ok || !maps.Equal(got, want) {
		t.Errorf("unitsAt(%d) = %v, %v, %v; want %v from the cache", now, got, ok, err, want)
	}
	exec(`SELECT assessment_unit_count_refresh()`)

	// The last attempt reads the numbers in the listing's own snapshot, and
	// both ways give the same listing.
	school := uuid.MustParse("5e000000-0000-4000-8000-000000000001")
	exec(`INSERT INTO assessment_deadline (assessment_id, district, session, due_at) VALUES ($1, 'Shimla', 'W', now() + interval '9 days')`, a)
	exec(`INSERT INTO student (school_id, name, gender, grade, section) VALUES ($1, 'छात्रा', 'FEMALE', 6, 'A')`, school)
	s.units = unitCache{} // drop the cache
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
		t.Errorf("tspUnitsExpected = %v; want 2", n)
	}
}
