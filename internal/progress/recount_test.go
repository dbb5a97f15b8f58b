package progress_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shala-edu/shala/internal/progress"
)

// mixSeed is the random mix's seed: PROGRESS_MIX_SEED reruns another one.
func mixSeed(t *testing.T) uint64 {
	if s := os.Getenv("PROGRESS_MIX_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("PROGRESS_MIX_SEED: %v", err)
		}
		return n
	}
	return 20261201
}

type mixAssessment struct {
	id     uuid.UUID
	grade  bool             // GRADE evaluation
	grades map[int][]string // grade → subjects
	comps  []*uuid.UUID     // components (nil: no component)
	max    map[*uuid.UUID]int
}

// TestCountersMatchARecountAfterARandomMix applies a seeded random mix of
// result inserts, updates (one row and many) and deletes — also several
// kinds at once in one statement (upserts of a student's components,
// MERGE, writable CTEs) and COPY — TSP writes, class finalisations,
// student moves, departures and registrations, and pass-rule edits — in
// transactions of one to four steps, some rolled back, some steps refused
// by the write rules — and compares the maintained counters with a count
// from scratch along the way. A step refused by the counters' own checks
// is a maintenance bug, not a write rule: it fails the test.
func TestCountersMatchARecountAfterARandomMix(t *testing.T) {
	t.Parallel()
	seed := mixSeed(t)
	t.Logf("seed %d (PROGRESS_MIX_SEED to rerun another)", seed)
	rng := rand.New(rand.NewPCG(seed, 0x11))
	f := setup(t)
	ctx := f.ctx

	schools := []uuid.UUID{f.school("Shimla", "W"), f.school("Shimla", "W"), f.school("Solan", "W")}
	sections := []string{"A", "B", ""}
	var students []uuid.UUID
	for range 36 {
		students = append(students, f.student(schools[rng.IntN(len(schools))], 6+rng.IntN(2), sections[rng.IntN(len(sections))]))
	}
	deadlines := map[string]string{"Shimla": "W", "Solan": "W"}
	x, xc := f.assessment(spec{name: "X", grades: map[int][]string{6: {"HINDI", "MATHEMATICS"}, 7: {"SCIENCE", "MATHEMATICS"}},
		components: map[string]int{"THEORY": 80, "PRACTICAL": 20}, deadlines: deadlines})
	y, _ := f.assessment(spec{name: "Y", evaluation: "GRADE", noTotal: true, pass: 50, grades: map[int][]string{6: {"HINDI"}, 7: {"HINDI", "EVS"}},
		deadlines: deadlines})
	z, _ := f.assessment(spec{name: "Z", unitType: "LO", total: 50, grades: map[int][]string{6: {"EVS"}, 7: {"EVS"}}, deadlines: deadlines})
	th, pr := xc["THEORY"], xc["PRACTICAL"]
	assessments := []mixAssessment{
		{id: x, grades: map[int][]string{6: {"HINDI", "MATHEMATICS"}, 7: {"SCIENCE", "MATHEMATICS"}}, comps: []*uuid.UUID{&th, &pr, nil},
			max: map[*uuid.UUID]int{&th: 80, &pr: 20, nil: 100}},
		{id: y, grade: true, grades: map[int][]string{6: {"HINDI"}, 7: {"HINDI", "EVS"}}, comps: []*uuid.UUID{nil}},
		{id: z, grades: map[int][]string{6: {"EVS"}, 7: {"EVS"}}, comps: []*uuid.UUID{nil}, max: map[*uuid.UUID]int{nil: 50}},
	}
	letters := []string{"A", "B", "C", "D", "E"}
	subjectsOf := map[int][]string{6: {"HINDI", "MATHEMATICS", "EVS"}, 7: {"HINDI", "MATHEMATICS", "SCIENCE", "EVS"}}

	finalising := false
	pick := func(ids []uuid.UUID) uuid.UUID { return ids[rng.IntN(len(ids))] }
	anyResult := func(tx pgx.Tx) (uuid.UUID, bool) {
		var id uuid.UUID
		err := tx.QueryRow(ctx, `SELECT id FROM assessment_result ORDER BY id OFFSET $1 LIMIT 1`, rng.IntN(200)).Scan(&id)
		if err != nil {
			err = tx.QueryRow(ctx, `SELECT id FROM assessment_result ORDER BY id LIMIT 1`).Scan(&id)
		}
		return id, err == nil
	}
	type step struct {
		name   string
		weight int
		do     func(tx pgx.Tx) error
	}
	score := func(a mixAssessment, comp *uuid.UUID) (present bool, marks, grade any) {
		if rng.IntN(6) == 0 {
			return false, nil, nil
		}
		if a.grade {
			return true, nil, letters[rng.IntN(len(letters))]
		}
		return true, rng.IntN(a.max[comp] + 1), nil
	}
	// studentSubject picks a student and one of the subjects the assessment
	// with components asks of the student's grade.
	studentSubject := func(tx pgx.Tx) (a mixAssessment, st, school uuid.UUID, subject string, err error) {
		a, st = assessments[0], pick(students)
		var grade int
		if err := tx.QueryRow(ctx, `SELECT school_id, grade FROM student WHERE id = $1`, st).Scan(&school, &grade); err != nil {
			return a, st, school, "", err
		}
		subjects := a.grades[grade]
		return a, st, school, subjects[rng.IntN(len(subjects))], nil
	}
	steps := []step{
		{"write a result", 40, func(tx pgx.Tx) error {
			a := assessments[rng.IntN(len(assessments))]
			st := pick(students)
			var school uuid.UUID
			var grade int
			if err := tx.QueryRow(ctx, `SELECT school_id, grade FROM student WHERE id = $1`, st).Scan(&school, &grade); err != nil {
				return err
			}
			subjects := a.grades[grade]
			if len(subjects) == 0 || rng.IntN(10) == 0 {
				subjects = subjectsOf[grade] // sometimes one the assessment does not ask: refused
			}
			comp := a.comps[rng.IntN(len(a.comps))]
			present, marks, letter := score(a, comp)
			_, err := tx.Exec(ctx, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks, grade)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (assessment_id, student_id, subject, component_id) DO UPDATE SET present = EXCLUDED.present,
					marks = EXCLUDED.marks, grade = EXCLUDED.grade`, a.id, school, st, subjects[rng.IntN(len(subjects))], comp, present, marks, letter)
			return err
		}},
		{"write a class's results at once", 6, func(tx pgx.Tx) error {
			a := assessments[rng.IntN(len(assessments))]
			comp := a.comps[rng.IntN(len(a.comps))]
			present, marks, letter := score(a, comp)
			school := pick(schools)
			grade := 6 + rng.IntN(2)
			subjects := a.grades[grade]
			_, err := tx.Exec(ctx, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks, grade)
				SELECT $1, $2, s.id, $3, $4, $5, $6, $7 FROM student s WHERE s.school_id = $2 AND s.grade = $8 AND s.status = 'ACTIVE'
				ON CONFLICT (assessment_id, student_id, subject, component_id) DO UPDATE SET present = EXCLUDED.present,
					marks = EXCLUDED.marks, grade = EXCLUDED.grade`, a.id, school, subjects[rng.IntN(len(subjects))], comp, present, marks, letter, grade)
			return err
		}},
		// One statement that inserts some of a student's rows and updates
		// or deletes others fires several statement triggers (an upsert:
		// UPDATE then INSERT; MERGE and writable CTEs: one per kind), each
		// seeing the table as the whole statement left it.
		{"write a student's components at once (upsert)", 10, func(tx pgx.Tx) error {
			a, st, school, subject, err := studentSubject(tx)
			if err != nil {
				return err
			}
			comps, marks, present := []any{}, []any{}, []bool{}
			for _, c := range a.comps {
				if rng.IntN(4) == 0 {
					continue
				}
				p, m, _ := score(a, c)
				comps, present, marks = append(comps, uuidOrNil(c)), append(present, p), append(marks, m)
			}
			_, err = tx.Exec(ctx, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
				SELECT $1, $2, $3, $4, u.c, u.p, u.m FROM unnest($5::uuid[], $6::bool[], $7::numeric[]) AS u (c, p, m)
				ON CONFLICT (assessment_id, student_id, subject, component_id) DO UPDATE SET present = EXCLUDED.present,
					marks = EXCLUDED.marks`, a.id, school, st, subject, comps, present, marks)
			return err
		}},
		{"replace a student's component by another (writable CTE)", 3, func(tx pgx.Tx) error {
			a, st, school, subject, err := studentSubject(tx)
			if err != nil {
				return err
			}
			i := rng.IntN(len(a.comps))
			gone, put := a.comps[i], a.comps[(i+1)%len(a.comps)]
			p, m, _ := score(a, put)
			_, err = tx.Exec(ctx, `WITH gone AS (DELETE FROM assessment_result WHERE assessment_id = $1 AND student_id = $3 AND subject = $4
					AND component_id IS NOT DISTINCT FROM $5)
				INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
				VALUES ($1, $2, $3, $4, $6, $7, $8)
				ON CONFLICT (assessment_id, student_id, subject, component_id) DO UPDATE SET present = EXCLUDED.present,
					marks = EXCLUDED.marks`, a.id, school, st, subject, uuidOrNil(gone), uuidOrNil(put), p, m)
			return err
		}},
		{"merge a student's components", 3, func(tx pgx.Tx) error {
			a, st, school, subject, err := studentSubject(tx)
			if err != nil {
				return err
			}
			comps, marks, present, drop := []any{}, []any{}, []bool{}, []bool{}
			for _, c := range a.comps {
				p, m, _ := score(a, c)
				comps, present, marks, drop = append(comps, uuidOrNil(c)), append(present, p), append(marks, m), append(drop, rng.IntN(3) == 0)
			}
			_, err = tx.Exec(ctx, `MERGE INTO assessment_result r
				USING unnest($5::uuid[], $6::bool[], $7::numeric[], $8::bool[]) AS v (c, p, m, drop)
				ON r.assessment_id = $1 AND r.student_id = $3 AND r.subject = $4 AND r.component_id IS NOT DISTINCT FROM v.c
				WHEN MATCHED AND v.drop THEN DELETE
				WHEN MATCHED THEN UPDATE SET present = v.p, marks = v.m
				WHEN NOT MATCHED AND NOT v.drop THEN INSERT (assessment_id, school_id, student_id, subject, component_id, present, marks)
					VALUES ($1, $2, $3, $4, v.c, v.p, v.m)`, a.id, school, st, subject, comps, present, marks, drop)
			return err
		}},
		{"copy a class's results in", 3, func(tx pgx.Tx) error {
			a := assessments[0]
			comp := a.comps[rng.IntN(len(a.comps))]
			school, grade := pick(schools), 6+rng.IntN(2)
			subjects := a.grades[grade]
			subject := subjects[rng.IntN(len(subjects))]
			rows, err := tx.Query(ctx, `SELECT s.id FROM student s WHERE s.school_id = $1 AND s.grade = $2 AND NOT EXISTS (
				SELECT 1 FROM assessment_result r WHERE r.assessment_id = $3 AND r.student_id = s.id AND r.subject = $4
				AND r.component_id IS NOT DISTINCT FROM $5)`, school, grade, a.id, subject, uuidOrNil(comp))
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil {
				return err
			}
			var copied [][]any
			for _, id := range ids {
				p, m, _ := score(a, comp)
				copied = append(copied, []any{a.id, school, id, subject, uuidOrNil(comp), p, m})
			}
			_, err = tx.CopyFrom(ctx, pgx.Identifier{"assessment_result"},
				[]string{"assessment_id", "school_id", "student_id", "subject", "component_id", "present", "marks"}, pgx.CopyFromRows(copied))
			return err
		}},
		{"update a result", 15, func(tx pgx.Tx) error {
			id, ok := anyResult(tx)
			if !ok {
				return nil
			}
			switch rng.IntN(3) {
			case 0:
				_, err := tx.Exec(ctx, `UPDATE assessment_result SET present = false, marks = NULL, grade = NULL WHERE id = $1`, id)
				return err
			case 1:
				_, err := tx.Exec(ctx, `UPDATE assessment_result r SET present = true,
					marks = CASE WHEN a.evaluation = 'MARKS' THEN $2 END, grade = CASE WHEN a.evaluation = 'GRADE' THEN $3 END
					FROM assessment a WHERE a.id = r.assessment_id AND r.id = $1`, id, rng.IntN(21), letters[rng.IntN(len(letters))])
				return err
			default:
				_, err := tx.Exec(ctx, `UPDATE assessment_result SET marks = marks WHERE id = $1`, id)
				return err
			}
		}},
		{"update many results", 4, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE assessment_result SET marks = greatest(marks - $2, 0) WHERE school_id = $1 AND marks IS NOT NULL`,
				pick(schools), rng.IntN(10))
			return err
		}},
		{"delete a result", 8, func(tx pgx.Tx) error {
			id, ok := anyResult(tx)
			if !ok {
				return nil
			}
			_, err := tx.Exec(ctx, `DELETE FROM assessment_result WHERE id = $1`, id)
			return err
		}},
		{"delete a student's results", 2, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `DELETE FROM assessment_result WHERE student_id = $1`, pick(students))
			return err
		}},
		{"write a TSP count", 6, func(tx pgx.Tx) error {
			grade := 6 + rng.IntN(2)
			present := rng.IntN(30)
			_, err := tx.Exec(ctx, `INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, unit, students_cleared, students_present)
				VALUES ($1, $2, $3, $4, 'EVS', $5, $6, $7)
				ON CONFLICT (assessment_id, school_id, grade, section, subject, unit) DO UPDATE SET students_cleared = EXCLUDED.students_cleared,
					students_present = EXCLUDED.students_present`,
				z, pick(schools), grade, []string{"A", "B"}[rng.IntN(2)], fmt.Sprintf("LO-%d", rng.IntN(3)), rng.IntN(present+1), present)
			return err
		}},
		{"delete a TSP count", 2, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `DELETE FROM assessment_tsp WHERE id = (SELECT id FROM assessment_tsp ORDER BY random() LIMIT 1)`)
			return err
		}},
		{"finalise a class", 2, func(tx pgx.Tx) error {
			if !finalising {
				return nil // finalised classes refuse writes: only in the second half
			}
			_, err := tx.Exec(ctx, `INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, $3, $4, true)
				ON CONFLICT (assessment_id, school_id, grade, section) DO UPDATE SET final = true`,
				assessments[rng.IntN(len(assessments))].id, pick(schools), 6+rng.IntN(2), []string{"A", "B"}[rng.IntN(2)])
			return err
		}},
		{"move a student", 8, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE student SET grade = $2, section = nullif($3, '') WHERE id = $1`,
				pick(students), 6+rng.IntN(2), sections[rng.IntN(len(sections))])
			return err
		}},
		{"a student leaves or comes back", 3, func(tx pgx.Tx) error {
			if rng.IntN(2) == 0 {
				_, err := tx.Exec(ctx, `UPDATE student SET status = 'LEFT', left_on = current_date WHERE id = $1`, pick(students))
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE student SET status = 'ACTIVE', left_on = NULL, enabled = true WHERE id = $1`, pick(students))
			return err
		}},
		{"a student disabled", 1, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE student SET enabled = false WHERE id = $1`, pick(students))
			return err
		}},
		{"promote a school's grade 6", 1, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE student SET grade = 7 WHERE school_id = $1 AND grade = 6`, pick(schools))
			return err
		}},
		{"register a student", 2, func(tx pgx.Tx) error {
			var id uuid.UUID
			err := tx.QueryRow(ctx, `INSERT INTO student (school_id, name, gender, grade, section) VALUES ($1, 'नया', 'MALE', $2, 'A') RETURNING id`,
				pick(schools), 6+rng.IntN(2)).Scan(&id)
			if err == nil {
				students = append(students, id)
			}
			return err
		}},
		{"edit a pass rule", 1, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE assessment SET pass_percent = $2 WHERE id = $1`, assessments[rng.IntN(len(assessments))].id, 20+rng.IntN(60))
			return err
		}},
	}
	total := 0
	for _, s := range steps {
		total += s.weight
	}
	choose := func() step {
		n := rng.IntN(total)
		for _, s := range steps {
			if n < s.weight {
				return s
			}
			n -= s.weight
		}
		panic("weights")
	}

	done := map[string]int{}
	refused := 0
	const transactions = 600
	for i := range transactions {
		finalising = i > transactions/2
		tx, err := f.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		registered := len(students)
		// abort fails the test with the transaction rolled back (an open
		// one would keep the pool from closing).
		abort := func(format string, args ...any) {
			t.Helper()
			if err := tx.Rollback(ctx); err != nil {
				t.Log(err)
			}
			t.Fatalf(format, args...)
		}
		for range 1 + rng.IntN(4) {
			s := choose()
			if _, err := tx.Exec(ctx, "SAVEPOINT step"); err != nil {
				abort("%v", err)
			}
			if err := s.do(tx); err != nil {
				if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && (pgErr.TableName == "assessment_progress" || pgErr.TableName == "school_class") {
					abort("transaction %d, %q: the counters refused the write (seed %d): %v", i+1, s.name, seed, err)
				}
				refused++ // a write rule said no (final class, subject not asked, …)
				if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT step"); err != nil {
					abort("%v", err)
				}
				continue
			}
			done[s.name]++
		}
		if rng.IntN(8) == 0 {
			students = students[:registered]
			err = tx.Rollback(ctx)
		} else {
			err = tx.Commit(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%150 == 149 {
			f.noDrift(fmt.Sprintf("after transaction %d (seed %d)", i+1, seed))
		}
	}
	f.noDrift(fmt.Sprintf("at the end (seed %d)", seed))
	for _, s := range steps {
		if done[s.name] == 0 {
			t.Errorf("the mix never did %q: the test does not cover it", s.name)
		}
	}
	rows := f.int(`SELECT count(*) FROM assessment_progress WHERE students > 0 OR tsp_units > 0`)
	t.Logf("steps done %v, refused %d, %d non-empty counter rows", done, refused, rows)
	if rows < 10 || f.int(`SELECT count(*) FROM assessment_progress WHERE passed > 0`) == 0 || f.int(`SELECT count(*) FROM assessment_progress WHERE final`) == 0 {
		t.Error("the mix left too little to compare (no passes or no final class): tune its weights")
	}
}

// TestConcurrentWritesOfOneStudentCountThemOnce: two teachers write the two
// components of the same students at the same time (and a third rewrites
// them), each statement computing its own difference; the count of
// students must still be one per student, as a recount says.
func TestConcurrentWritesOfOneStudentCountThemOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	school := f.school("Shimla", "W")
	var students []uuid.UUID
	for range 30 {
		students = append(students, f.student(school, 6, "A"))
	}
	x, comps := f.assessment(spec{grades: map[int][]string{6: {"MATHEMATICS"}}, components: map[string]int{"THEORY": 80, "PRACTICAL": 20},
		deadlines: map[string]string{"Shimla": "W"}})
	writers := []struct {
		comp  uuid.UUID
		marks int
	}{{comps["THEORY"], 30}, {comps["PRACTICAL"], 5}, {comps["THEORY"], 10}, {comps["PRACTICAL"], 20}}
	var wg sync.WaitGroup
	errs := make(chan error, len(writers))
	for wi, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, st := range students {
				present := (i+wi)%5 != 0
				var marks any
				if present {
					marks = w.marks
				}
				if _, err := f.pool.Exec(context.Background(), `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
					VALUES ($1, $2, $3, 'MATHEMATICS', $4, $5, $6) ON CONFLICT (assessment_id, student_id, subject, component_id)
					DO UPDATE SET present = EXCLUDED.present, marks = EXCLUDED.marks`, x, school, st, w.comp, present, marks); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := f.int(`SELECT students FROM assessment_progress WHERE assessment_id = $1`, x); got != len(students) {
		t.Errorf("%d students counted, want %d", got, len(students))
	}
	f.noDrift("after concurrent writers")
}

// TestDriftFindsCountersOutOfStepAndRebuildRepairsThem: a write that
// bypasses the triggers (as a bulk load does) is found by Drift, and
// Rebuild counts everything again.
func TestDriftFindsCountersOutOfStepAndRebuildRepairsThem(t *testing.T) {
	t.Parallel()
	f := setup(t)
	school := f.school("Shimla", "W")
	st := f.student(school, 6, "A")
	x, _ := f.assessment(spec{grades: map[int][]string{6: {"HINDI"}}, deadlines: map[string]string{"Shimla": "W"}})
	f.exec(`ALTER TABLE assessment_result DISABLE TRIGGER assessment_result_progress_insert;
		ALTER TABLE student DISABLE TRIGGER student_class_insert`)
	f.mustResult(x, school, st, "HINDI", nil, true, 50, nil)
	f.student(school, 7, "B")
	f.exec(`ALTER TABLE assessment_result ENABLE TRIGGER assessment_result_progress_insert;
		ALTER TABLE student ENABLE TRIGGER student_class_insert`)
	diffs, err := progress.Drift(f.ctx, f.pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 2 {
		t.Fatalf("drift: %q, want the uncounted result and the uncounted student", diffs)
	}
	before, err := f.store.Version(f.ctx, school)
	if err != nil {
		t.Fatal(err)
	}
	if err := progress.Rebuild(f.ctx, f.pool); err != nil {
		t.Fatal(err)
	}
	f.noDrift("after rebuilding")
	if after, err := f.store.Version(f.ctx, school); err != nil || after == before {
		t.Errorf("version %q after rebuilding (%v), want a new one: the listing changed", after, err)
	}
}

// uuidOrNil is a component for a query argument: its id, or NULL.
func uuidOrNil(c *uuid.UUID) any {
	if c == nil {
		return nil
	}
	return *c
}
