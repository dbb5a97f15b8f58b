package progress_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shala-edu/shala/internal/progress"
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
		{"every learning objective truncated (and the bundles' items with them)", func() {
			w.exec(`TRUNCATE learning_objective CASCADE`)
		}, true,
			[]string{"Q 6-A HINDI of -", "X 6-A HINDI of 1", "Z 6-A HINDI of -", "Z 6-A MATHEMATICS of -", "Z 6-B HINDI of -"}},
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
// adding units to the same class and subject at once. The numbers are
// counted when a transaction commits, one transaction at a time: the
// second, committing while the first is counting (SET CONSTRAINTS …
// IMMEDIATE counts at once), waits for it and counts its unit too, so it
// neither misses it nor fails.
func TestUnitCountsHoldWithConcurrentMasterDataWriters(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.assessment(spec{name: "Z", unitType: "UNIT", grades: map[int][]string{6: {"HINDI"}},
		deadlines: map[string]string{"Shimla": "W"}})
	first := w.begin(pgx.TxOptions{})
	if _, err := first.Exec(w.ctx, `INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U6', 'u', true);
		SET CONSTRAINTS assessment_unit_recount IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := w.pool.Exec(w.ctx, `INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U7', 'u', true)`)
		second <- err
	}()
	// The second writer's count waits for the first's: wait until Postgres
	// shows it waiting on a lock, then commit the first.
	w.waitForLockWait("INSERT INTO learning_objective%", "the second writer", second)
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

// TestUnitCountsAtCommit: a transaction that deletes an assessment's
// subjects and writes them back (a builder save that changes nothing)
// changes no number and no school's ETag; a writer at REPEATABLE READ that
// cannot see a count committed after its snapshot fails to commit (and is
// retried) instead of keeping a wrong number.
func TestUnitCountsAtCommit(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	z, _ := w.assessment(spec{name: "Z", unitType: "UNIT", grades: map[int][]string{6: {"HINDI"}, 7: {"HINDI"}},
		deadlines: map[string]string{"Shimla": "W"}})
	w.exec(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'U1', 'u', true)`)
	solan := w.version(w.solan)
	tx := w.begin(pgx.TxOptions{})
	for _, sql := range []string{`DELETE FROM assessment_subject WHERE assessment_id = $1`,
		`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 6, 'HINDI'), ($1, 7, 'HINDI')`} {
		if _, err := tx.Exec(w.ctx, sql, z); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(w.ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.version(w.solan); got != solan {
		t.Errorf("a save that changed nothing moved a Solan school's ETag (%s → %s)", solan, got)
	}

	// REPEATABLE READ: its snapshot is taken before the other commits. The
	// other adds class 7 SCIENCE to Z, where nothing is defined yet (no
	// number changes); the REPEATABLE READ one defines its first unit, but
	// cannot see that Z asks it.
	rr := w.begin(pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if _, err := rr.Exec(w.ctx, `INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (7, 'SCIENCE', 'S1', 's', true)`); err != nil {
		t.Fatal(err)
	}
	w.exec(`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 7, 'SCIENCE')`, z)
	err := rr.Commit(w.ctx)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "40001" {
		t.Errorf("REPEATABLE READ commit after another count: %v; want a serialization failure (40001)", err)
	}
	w.noDrift("after the refused commit")
}

// TestBuilderSavesDoNotDeadlockOnUnitCounts: a save editing an assessment
// (its scope's row locked first) and a save creating another (its new
// scope first, then its subjects) at once: the numbers of units are
// counted at commit, after every other lock, so neither waits for the
// other in the wrong order.
func TestBuilderSavesDoNotDeadlockOnUnitCounts(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, _ := w.assessment(spec{name: "A", unitType: "UNIT", grades: map[int][]string{6: {"HINDI"}}, deadlines: map[string]string{"Shimla": "W"}})
	b, _ := w.assessment(spec{name: "B", unitType: "UNIT", grades: map[int][]string{6: {"HINDI"}}}) // being created: no deadline yet
	w.exec(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (7, 'HINDI', 'U1', 'u', true)`)
	edit, create := w.begin(pgx.TxOptions{}), w.begin(pgx.TxOptions{})
	if _, err := edit.Exec(w.ctx, `UPDATE assessment SET unit_type = unit_type, name = 'A edited' WHERE id = $1`, a); err != nil {
		t.Fatal(err)
	}
	if _, err := create.Exec(w.ctx, `INSERT INTO assessment_deadline (assessment_id, district, session, due_at) VALUES ($1, 'Solan', 'W', now() + interval '9 days')`, b); err != nil {
		t.Fatal(err)
	}
	created := make(chan error, 1)
	go func() {
		_, err := create.Exec(w.ctx, `INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 7, 'HINDI')`, b)
		if err == nil {
			err = create.Commit(w.ctx)
		}
		created <- err
	}()
	// The edit now opens A in Solan too: it waits for the create's scope
	// row until the create commits.
	_, err := edit.Exec(w.ctx, `INSERT INTO assessment_deadline (assessment_id, district, session, due_at) VALUES ($1, 'Solan', 'W', now() + interval '9 days')`, a)
	if err != nil {
		t.Errorf("the edit: %v", err)
	} else if err := edit.Commit(w.ctx); err != nil {
		t.Errorf("the edit's commit: %v", err)
	}
	if err := <-created; err != nil {
		t.Errorf("the create: %v", err)
	}
	if got := w.int(`SELECT units FROM assessment_unit_count WHERE assessment_id = $1 AND grade = 7`, b); got != 1 {
		t.Errorf("B's class 7 HINDI: %d units; want 1", got)
	}
	w.noDrift("after both saves")
}

// TestRebuildAndBuilderSaveDoNotDeadlock: Rebuild (an operator repairing
// drift, the seed) takes the units' lock after the scopes', in the order
// a builder save takes them.
func TestRebuildAndBuilderSaveDoNotDeadlock(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, _ := w.assessment(spec{name: "A", unitType: "UNIT", grades: map[int][]string{6: {"HINDI"}}, deadlines: map[string]string{"Shimla": "W"}})
	save := w.begin(pgx.TxOptions{})
	if _, err := save.Exec(w.ctx, `UPDATE assessment SET unit_type = unit_type, name = 'A edited' WHERE id = $1`, a); err != nil {
		t.Fatal(err)
	}
	rebuilt := make(chan error, 1)
	go func() {
		rebuilt <- pgx.BeginFunc(w.ctx, w.pool, func(tx pgx.Tx) error { return progress.Rebuild(w.ctx, tx) })
	}()
	// The rebuild waits for the save's scope row; then the save commits.
	w.waitForLockWait("%assessment_progress_rebuild%", "the rebuild", rebuilt)
	if err := save.Commit(w.ctx); err != nil {
		t.Errorf("the save: %v", err)
	}
	if err := <-rebuilt; err != nil {
		t.Errorf("the rebuild: %v", err)
	}
	w.noDrift("after both")
}

// begin opens a transaction the test ends; it is rolled back at cleanup
// if the test did not commit it.
func (f *fixture) begin(opts pgx.TxOptions) pgx.Tx {
	f.t.Helper()
	tx, err := f.pool.BeginTx(f.ctx, opts)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { tx.Rollback(context.WithoutCancel(f.ctx)) })
	return tx
}

// waitForLockWait returns once Postgres shows a statement like pattern
// waiting on a lock; it fails the test if done reports first (the
// statement did not wait).
func (f *fixture) waitForLockWait(pattern, what string, done <-chan error) {
	f.t.Helper()
	for f.int(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
		AND wait_event_type = 'Lock' AND query LIKE $1`, pattern) == 0 {
		select {
		case err := <-done:
			f.t.Fatalf("%s did not wait: %v", what, err)
		default:
		}
	}
}
