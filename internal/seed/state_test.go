package seed_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/progress"
	"github.com/shala-edu/shala/internal/seed"
)

// TestStateSeedAtSmallScale loads the state data set at a tiny scale (the
// full one is the benchmark's): every district, assessments of every kind,
// results only for those under way, counters that match a recount, and a
// school's listing that shows them; a second run changes nothing.
func TestStateSeedAtSmallScale(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	var said int
	res, err := seed.State(ctx, pool, seed.StateOptions{Scale: 0.002, Seed: 7, Progress: func(string, ...any) { said++ }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Districts != 12 || res.Schools != 36 || res.Assessments != 20 || res.Students < 36*20 || res.Results < int64(res.Students) ||
		res.TSP == 0 || res.FinalClasses == 0 || said == 0 {
		t.Errorf("got %+v (progress told %d times), want 12 districts, 36 schools, 20 assessments, results, TSP counts, final classes", res, said)
	}
	count := func(q string, args ...any) int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	if got := count(`SELECT count(*) FROM assessment_result`); got != res.Results {
		t.Errorf("%d result rows, reported %d", got, res.Results)
	}
	if got := count(`SELECT count(DISTINCT assessment_id) FROM assessment_result`); got != 10 {
		t.Errorf("results for %d assessments, want the 10 under way", got)
	}
	if got := count(`SELECT count(DISTINCT district) FROM school`); got != 12 {
		t.Errorf("%d districts, want 12", got)
	}
	// Results follow the write rules the triggers were off for.
	if got := count(`SELECT count(*) FROM assessment_result r JOIN student s ON s.id = r.student_id
		WHERE s.school_id <> r.school_id OR s.grade <> r.class_grade OR s.section <> r.class_section
		OR NOT EXISTS (SELECT 1 FROM assessment_subject x WHERE x.assessment_id = r.assessment_id AND x.grade = r.class_grade AND x.subject = r.subject)
		OR (r.present AND r.marks IS NULL AND r.grade IS NULL) OR (NOT r.present AND (r.marks IS NOT NULL OR r.grade IS NOT NULL))
		OR r.marks > coalesce((SELECT max_marks FROM assessment_component c WHERE c.id = r.component_id), 100)`); got != 0 {
		t.Errorf("%d results break the write rules", got)
	}
	// TSP counts name the learning objectives or units the state defined.
	if got := count(`SELECT count(*) FROM assessment_tsp t WHERE NOT EXISTS (SELECT 1 FROM assessment_unit u
		WHERE u.assessment_id = t.assessment_id AND u.grade = t.grade AND u.subject = t.subject AND u.unit = t.unit)`); got != 0 {
		t.Errorf("%d TSP counts name no defined learning objective or unit", got)
	}
	if got := count(`SELECT count(*) FROM assessment_unit u JOIN assessment a ON a.id = u.assessment_id WHERE a.type = 'TERM1' AND u.grade = 6`); got != 2*2*3 {
		t.Errorf("Term-1 (units) lists %d units for class 6, want 3 for each of its 2 subjects in 2 assessments", got)
	}
	diffs, err := progress.Drift(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		t.Errorf("counters differ from a recount: %q", diffs)
	}
	var school uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT school_id FROM assessment_progress GROUP BY 1 ORDER BY sum(students) DESC LIMIT 1`).Scan(&school); err != nil {
		t.Fatal(err)
	}
	l, err := progress.NewStore(pool).Listing(ctx, school)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Assessments) != 20 || l.Assessments[0].Totals.Students == 0 {
		t.Errorf("the busiest school lists %d assessments, the first with %d student-subjects: want 20, results in the first",
			len(l.Assessments), l.Assessments[0].Totals.Students)
	}
	// Writes after the load keep the counters right: a teacher's result in
	// an assessment not under way yet.
	if _, err := pool.Exec(ctx, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, present, marks)
		SELECT a.id, s.school_id, s.id, x.subject, true, 50 FROM student s
		JOIN assessment a ON a.type = 'FA3' AND a.evaluation = 'MARKS'
		JOIN assessment_subject x ON x.assessment_id = a.id AND x.grade = s.grade
		WHERE s.school_id = $1 LIMIT 5`, school); err != nil {
		t.Fatal(err)
	}
	if diffs, err := progress.Drift(ctx, pool); err != nil || len(diffs) > 0 {
		t.Errorf("after a write: %q %v", diffs, err)
	}

	again, err := seed.State(ctx, pool, seed.StateOptions{Scale: 0.002, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadySeeded || again.Schools != res.Schools {
		t.Errorf("second run: %+v, want already seeded with %d schools", again, res.Schools)
	}
}
