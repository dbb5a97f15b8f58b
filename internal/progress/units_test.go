package progress_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// TestListingSaysHowManyUnitsEachClassCounts: "k of n" — each class
// subject of a UNIT, LO or QUESTION assessment carries how many units it
// counts (assessment_unit), follows the master data and bundles, and every
// change of it moves the version; a NONE assessment counts each once.
func TestListingSaysHowManyUnitsEachClassCounts(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	z, _ := w.assessment(spec{name: "Z", unitType: "UNIT", grades: map[int][]string{6: {"HINDI", "MATHEMATICS"}},
		deadlines: map[string]string{"Shimla": "W"}})
	q, _ := w.assessment(spec{name: "Q", unitType: "LO", grades: map[int][]string{6: {"HINDI"}},
		deadlines: map[string]string{"Shimla": "W"}})
	lo := func(code string, unit bool) uuid.UUID {
		t.Helper()
		return w.id(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', $1, $1, $2) RETURNING id`, code, unit)
	}
	version := func() string { return w.version(w.a) }
	// units reads the listing's "of n" for the class subjects asked.
	units := func(lines ...string) []string {
		t.Helper()
		l, err := w.store.Listing(w.ctx, w.a)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range l.Assessments {
			for _, c := range a.Classes {
				for _, s := range c.Subjects {
					if line := fmt.Sprintf("%s %d-%s %s", a.Name, c.Grade, c.Section, s.Subject); slices.Contains(lines, line) {
						got = append(got, line+" of "+expected(s.TSPUnitsExpected))
					}
				}
			}
		}
		slices.Sort(got)
		return got
	}
	asked := []string{"Z 6-A HINDI", "Z 6-B HINDI", "Z 6-A MATHEMATICS", "Q 6-A HINDI", "X 6-A HINDI"}
	var u1, u2 uuid.UUID
	steps := []struct {
		name    string
		do      func()
		changes bool
		want    []string
	}{
		{"nothing defined yet: any unit name is taken", func() {}, false,
			[]string{"Q 6-A HINDI of -", "X 6-A HINDI of 1", "Z 6-A HINDI of -", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of -"}},
		{"the state defines a learning objective and two units", func() {
			lo("LO-1", false)
			u1, u2 = lo("UNIT-1", true), lo("UNIT-2", true)
		}, true,
			[]string{"Q 6-A HINDI of 3", "X 6-A HINDI of 1", "Z 6-A HINDI of 2", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of 2"}},
		{"a unit's description corrected", func() {
			w.exec(`UPDATE learning_objective SET description = 'इकाई 1', position = 5 WHERE id = $1`, u1)
		}, false,
			[]string{"Q 6-A HINDI of 3", "X 6-A HINDI of 1", "Z 6-A HINDI of 2", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of 2"}},
		{"a unit withdrawn", func() {
			w.exec(`UPDATE learning_objective SET active = false WHERE id = $1`, u2)
		}, true,
			[]string{"Q 6-A HINDI of 2", "X 6-A HINDI of 1", "Z 6-A HINDI of 1", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of 1"}},
		{"written back as it was (no count changes)", func() {
			w.exec(`UPDATE learning_objective SET active = false WHERE id = $1`, u2)
		}, false,
			[]string{"Q 6-A HINDI of 2", "X 6-A HINDI of 1", "Z 6-A HINDI of 1", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of 1"}},
		{"the unit back, and a bundle of one unit mapped for Z's class 6 HINDI", func() {
			w.exec(`UPDATE learning_objective SET active = true WHERE id = $1`, u2)
			bundle := w.id(`INSERT INTO unit_bundle (name, unit_type, grade, subject) VALUES ('Term-1 हिंदी', 'UNIT', 6, 'HINDI') RETURNING id`)
			w.exec(`INSERT INTO unit_bundle_item (bundle_id, learning_objective_id) VALUES ($1, $2)`, bundle, u2)
			w.exec(`INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'HINDI', $2)`, z, bundle)
		}, true,
			[]string{"Q 6-A HINDI of 3", "X 6-A HINDI of 1", "Z 6-A HINDI of 1", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of 1"}},
		{"a class count written (k of n: 1 of 1)", func() {
			w.exec(`INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, unit, students_cleared, students_present)
				VALUES ($1, $2, 6, 'A', 'HINDI', 'UNIT-2', 1, 2)`, z, w.a)
		}, true,
			[]string{"Q 6-A HINDI of 3", "X 6-A HINDI of 1", "Z 6-A HINDI of 1", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of 1"}},
		{"Q's unit type changed to UNIT", func() {
			w.exec(`UPDATE assessment SET unit_type = 'UNIT' WHERE id = $1`, q)
		}, true,
			[]string{"Q 6-A HINDI of 2", "X 6-A HINDI of 1", "Z 6-A HINDI of 1", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of 1"}},
		{"the bundle unmapped", func() {
			w.exec(`DELETE FROM assessment_bundle WHERE assessment_id = $1`, z)
		}, true,
			[]string{"Q 6-A HINDI of 2", "X 6-A HINDI of 1", "Z 6-A HINDI of 2", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of 2"}},
	}
	before := version()
	for _, s := range steps {
		s.do()
		after := version()
		if changed := after != before; changed != s.changes {
			t.Errorf("%s: version changed %v, want %v", s.name, changed, s.changes)
		}
		if got := units(asked...); !slices.Equal(got, s.want) {
			t.Errorf("%s:\n got %q\nwant %q", s.name, got, s.want)
		}
		before = after
	}
	l, err := w.store.Listing(w.ctx, w.a)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range l.Assessments {
		for _, c := range a.Classes {
			for _, s := range c.Subjects {
				if a.Name == "Z" && c.Grade == 6 && c.Section == "A" && s.Subject == "HINDI" && s.TSPUnits != 1 {
					t.Errorf("Z 6-A HINDI: tspUnits %d, want 1 (the count written)", s.TSPUnits)
				}
			}
		}
	}
	w.noDrift("after the steps")
}

// TestUnitCountsHoldWithConcurrentMasterDataWriters: two transactions
// adding units to the same class and subject at once: the second waits for
// the first and counts its unit too, so it neither misses it nor fails.
func TestUnitCountsHoldWithConcurrentMasterDataWriters(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.assessment(spec{name: "Z", unitType: "UNIT", grades: map[int][]string{6: {"HINDI"}},
		deadlines: map[string]string{"Shimla": "W"}})
	first, err := w.pool.Begin(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(context.WithoutCancel(w.ctx))
	if _, err := first.Exec(w.ctx, `INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U6', 'u', true)`); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := w.pool.Exec(w.ctx, `INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U7', 'u', true)`)
		second <- err
	}()
	// The second writer waits for the first (the version row): wait until
	// Postgres shows it waiting on a lock, then commit the first.
	for w.int(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO learning_objective%'`) == 0 {
		select {
		case err := <-second:
			t.Fatalf("the second writer did not wait for the first: %v", err)
		default:
		}
	}
	if err := first.Commit(w.ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if got := w.int(`SELECT units FROM assessment_unit_count WHERE grade = 6 AND subject = 'HINDI'`); got != 2 {
		t.Errorf("class 6 HINDI: kept %d units; want 2 (one from each writer)", got)
	}
	w.noDrift("after both writers")
}
