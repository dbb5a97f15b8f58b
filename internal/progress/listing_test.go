package progress_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/progress"
)

// describe renders a listing as lines a failure message can show.
func describe(l *progress.Listing) []string {
	var out []string
	for _, a := range l.Assessments {
		t := a.Totals
		out = append(out, fmt.Sprintf("%s: classes %d final %d enrolled %d | %s", a.Name, t.Classes, t.FinalClasses, t.Enrolled, counts(t.Counts)))
		for _, s := range a.Subjects {
			out = append(out, fmt.Sprintf("%s %s: %d of %d", a.Name, s.Subject, s.Students, s.Enrolled))
		}
		for _, c := range a.Classes {
			out = append(out, fmt.Sprintf("%s %d-%s: enrolled %d final %v", a.Name, c.Grade, c.Section, c.Enrolled, c.Final))
			for _, s := range c.Subjects {
				out = append(out, fmt.Sprintf("%s %d-%s %s: %s of %s", a.Name, c.Grade, c.Section, s.Subject, counts(s.Counts),
					expected(s.TSPUnitsExpected)))
			}
		}
	}
	return out
}

func counts(c progress.Counts) string {
	return fmt.Sprintf("%d/%d/%d/%d/%d tsp %d/%d/%d", c.Students, c.Present, c.Absent, c.Scored, c.Passed, c.TSPUnits, c.TSPPresent, c.TSPCleared)
}

// expected renders a class subject's units: "-" when none are defined.
func expected(n *int) string {
	if n == nil {
		return "-"
	}
	return fmt.Sprint(*n)
}

func diffLines(got, want []string) string {
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "  missing: %s\n", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "  unexpected: %s\n", g)
		}
	}
	return b.String()
}

// world is two schools of Shimla (W) and one of Solan, with assessments
// open to Shimla, one of them graded, and ones the schools must not see.
type world struct {
	*fixture
	a, b, solan    uuid.UUID // schools
	s1, s2, s3, s4 uuid.UUID // a's grade-6 students (s3 has no section: class A; s4 is in 6-B)
	s5             uuid.UUID // a's 7-A student
	x, y           uuid.UUID // MARKS with components, GRADE
	theory, pract  uuid.UUID
}

func newWorld(t *testing.T) *world {
	f := setup(t)
	w := &world{fixture: f}
	w.a, w.b, w.solan = f.school("Shimla", "W"), f.school("Shimla", "W"), f.school("Solan", "W")
	w.s1, w.s2, w.s3, w.s4 = f.student(w.a, 6, "A"), f.student(w.a, 6, "A"), f.student(w.a, 6, ""), f.student(w.a, 6, "B")
	w.s5 = f.student(w.a, 7, "A")
	var comps map[string]uuid.UUID
	w.x, comps = f.assessment(spec{name: "X", grades: map[int][]string{6: {"HINDI", "MATHEMATICS"}, 7: {"SCIENCE"}},
		components: map[string]int{"THEORY": 80, "PRACTICAL": 20}, deadlines: map[string]string{"Shimla": "W", "Solan": "W"}})
	w.theory, w.pract = comps["THEORY"], comps["PRACTICAL"]
	w.y, _ = f.assessment(spec{name: "Y", evaluation: "GRADE", total: nil, noTotal: true, pass: 50,
		grades: map[int][]string{6: {"HINDI"}}, deadlines: map[string]string{"Shimla": "W"}, dueInterval: "40 days"})
	// Not for Shimla W schools: disabled, last year's, Solan's only, Shimla's summer schools.
	f.assessment(spec{name: "disabled", enabled: ptr(false), grades: map[int][]string{6: {"HINDI"}}, deadlines: map[string]string{"Shimla": "W"}})
	f.assessment(spec{name: "last year", year: "2025-26", grades: map[int][]string{6: {"HINDI"}}, deadlines: map[string]string{"Shimla": "W"}})
	f.assessment(spec{name: "Solan only", grades: map[int][]string{6: {"HINDI"}}, deadlines: map[string]string{"Solan": "W"}})
	f.assessment(spec{name: "summer", grades: map[int][]string{6: {"HINDI"}}, deadlines: map[string]string{"Shimla": "S"}})
	return w
}

func TestListingShowsTheSchoolsProgressAndNoOtherSchools(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	th, pr := &w.theory, &w.pract
	w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", th, true, 30, nil)
	w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", pr, true, 10, nil) // 40 ≥ 33: passed
	w.mustResult(w.x, w.a, w.s2, "MATHEMATICS", th, true, 20, nil) // 20: not passed (yet)
	w.mustResult(w.x, w.a, w.s3, "MATHEMATICS", th, false, nil, nil)
	w.mustResult(w.x, w.a, w.s3, "MATHEMATICS", pr, false, nil, nil) // absent in both
	w.mustResult(w.x, w.a, w.s1, "HINDI", th, false, nil, nil)
	w.mustResult(w.x, w.a, w.s1, "HINDI", pr, true, 15, nil) // present in one: 15, not passed
	w.mustResult(w.x, w.a, w.s4, "HINDI", th, true, 70, nil) // 6-B, passed
	w.exec(`INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, students_cleared, students_present)
		VALUES ($1, $2, 6, 'A', 'MATHEMATICS', 2, 3)`, w.x, w.a)
	w.exec(`INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, 'B', true)`, w.x, w.a)
	w.mustResult(w.y, w.a, w.s1, "HINDI", nil, true, nil, "B") // 8 ≥ 5: passed
	w.mustResult(w.y, w.a, w.s2, "HINDI", nil, true, nil, "D") // 4: not passed
	w.mustResult(w.y, w.a, w.s3, "HINDI", nil, false, nil, nil)
	// The other Shimla school and the Solan school write too.
	other := w.student(w.b, 6, "A")
	w.mustResult(w.x, w.b, other, "MATHEMATICS", th, true, 80, nil)
	sol := w.student(w.solan, 6, "A")
	w.mustResult(w.x, w.solan, sol, "MATHEMATICS", th, true, 5, nil)

	l, err := w.store.Listing(w.ctx, w.a)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"X: classes 3 final 1 enrolled 5 | 5/4/1/4/2 tsp 1/3/2",
		"X HINDI: 2 of 4", "X MATHEMATICS: 3 of 4", "X SCIENCE: 0 of 1",
		"X 6-A: enrolled 3 final false",
		"X 6-A HINDI: 1/1/0/1/0 tsp 0/0/0 of 1",
		"X 6-A MATHEMATICS: 3/2/1/2/1 tsp 1/3/2 of 1",
		"X 6-B: enrolled 1 final true",
		"X 6-B HINDI: 1/1/0/1/1 tsp 0/0/0 of 1",
		"X 6-B MATHEMATICS: 0/0/0/0/0 tsp 0/0/0 of 1",
		"X 7-A: enrolled 1 final false",
		"X 7-A SCIENCE: 0/0/0/0/0 tsp 0/0/0 of 1",
		"Y: classes 2 final 0 enrolled 4 | 3/2/1/2/1 tsp 0/0/0",
		"Y HINDI: 3 of 4",
		"Y 6-A: enrolled 3 final false",
		"Y 6-A HINDI: 3/2/1/2/1 tsp 0/0/0 of 1",
		"Y 6-B: enrolled 1 final false",
		"Y 6-B HINDI: 0/0/0/0/0 tsp 0/0/0 of 1",
	}
	if got := describe(l); !slices.Equal(got, want) {
		t.Errorf("school A's listing:\n%s\ngot:\n%s", diffLines(got, want), strings.Join(got, "\n"))
	}
	if l.NotModified || l.ETag == "" {
		t.Errorf("etag %q notModified %v, want a version and the listing", l.ETag, l.NotModified)
	}
	if a := l.Assessments[0]; a.Evaluation != "MARKS" || *a.TotalMarks != 100 || *a.PassPercent != 33 || a.AcademicYear != "2026-27" || a.DueAt.IsZero() {
		t.Errorf("assessment X fields: %+v", a)
	}

	lb, err := w.store.Listing(w.ctx, w.b)
	if err != nil {
		t.Fatal(err)
	}
	wantB := []string{
		"X: classes 1 final 0 enrolled 1 | 1/1/0/1/1 tsp 0/0/0",
		"X HINDI: 0 of 1", "X MATHEMATICS: 1 of 1",
		"X 6-A: enrolled 1 final false",
		"X 6-A HINDI: 0/0/0/0/0 tsp 0/0/0 of 1",
		"X 6-A MATHEMATICS: 1/1/0/1/1 tsp 0/0/0 of 1",
		"Y: classes 1 final 0 enrolled 1 | 0/0/0/0/0 tsp 0/0/0",
		"Y HINDI: 0 of 1",
		"Y 6-A: enrolled 1 final false",
		"Y 6-A HINDI: 0/0/0/0/0 tsp 0/0/0 of 1",
	}
	if got := describe(lb); !slices.Equal(got, wantB) {
		t.Errorf("school B's listing:\n%s\ngot:\n%s", diffLines(got, wantB), strings.Join(got, "\n"))
	}
	if lb.ETag == l.ETag {
		t.Error("two schools share an ETag")
	}

	ls, err := w.store.Listing(w.ctx, w.solan)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range ls.Assessments {
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"X", "Solan only"}) {
		t.Errorf("Solan school lists %v, want [X, Solan only]", names)
	}

	if _, err := w.store.Listing(w.ctx, uuid.New()); fault.As(err).Code != progress.CodeNoSuchSchool {
		t.Errorf("unknown school: %v, want %s", err, progress.CodeNoSuchSchool)
	}
	w.noDrift("after the writes")
}

func TestNotModifiedWhenTheVersionMatches(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 30, nil)
	full, err := w.store.Listing(w.ctx, w.a)
	if err != nil {
		t.Fatal(err)
	}
	same, err := w.store.Listing(w.ctx, w.a, "stale", full.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if !same.NotModified || same.ETag != full.ETag || len(same.Assessments) != 0 || same.Assessments == nil {
		t.Errorf("with the current version: notModified %v etag %q %d assessments, want true, %q, an empty list",
			same.NotModified, same.ETag, len(same.Assessments), full.ETag)
	}
	stale, err := w.store.Listing(w.ctx, w.a, "stale")
	if err != nil {
		t.Fatal(err)
	}
	if stale.NotModified || len(stale.Assessments) != 2 {
		t.Errorf("with a stale version: notModified %v, %d assessments, want the listing", stale.NotModified, len(stale.Assessments))
	}
	// Another school's version never matches.
	other, err := w.store.Listing(w.ctx, w.b, full.ETag)
	if err != nil {
		t.Fatal(err)
	}
	if other.NotModified {
		t.Error("school B's listing answered notModified to school A's ETag")
	}
}

// TestVersionChangesWithWhatTheListingShows: every write that changes the
// school's listing changes its version in the same transaction; writes that
// change nothing it shows (another school's, a mark within the same pass
// state) leave it.
func TestVersionChangesWithWhatTheListingShows(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	version := func() string { return w.version(w.a) }
	listing := func() []string {
		t.Helper()
		l, err := w.store.Listing(w.ctx, w.a)
		if err != nil {
			t.Fatal(err)
		}
		return describe(l)
	}
	steps := []struct {
		name    string
		do      func() error
		changes bool
	}{
		{"a result", func() error { return w.result(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 40, nil) }, true},
		{"marks that keep the student passed", func() error { return w.result(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 41, nil) }, false},
		{"marks that fail the student", func() error { return w.result(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 3, nil) }, true},
		{"another school's result", func() error {
			return w.result(w.x, w.b, w.student(w.b, 6, "A"), "MATHEMATICS", &w.theory, true, 50, nil)
		}, false},
		{"a TSP count", func() error {
			_, err := w.pool.Exec(w.ctx, `INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, students_cleared, students_present)
				VALUES ($1, $2, 6, 'A', 'HINDI', 1, 2)`, w.x, w.a)
			return err
		}, true},
		{"a student moved to another section", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE student SET section = 'B' WHERE id = $1`, w.s2)
			return err
		}, true},
		{"a student's name corrected", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE student SET name = 'सुधार' WHERE id = $1`, w.s2)
			return err
		}, false},
		{"a student left", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE student SET status = 'LEFT', left_on = current_date WHERE id = $1`, w.s5)
			return err
		}, true},
		{"a new student", func() error { w.student(w.a, 7, "A"); return nil }, true},
		{"a class created, not final", func() error {
			_, err := w.pool.Exec(w.ctx, `INSERT INTO assessment_class (assessment_id, school_id, grade, section) VALUES ($1, $2, 6, 'A')`, w.x, w.a)
			return err
		}, false},
		{"the class finalised", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE assessment_class SET final = true WHERE assessment_id = $1 AND school_id = $2`, w.x, w.a)
			return err
		}, true},
		{"the assessment renamed", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE assessment SET name = 'X renamed' WHERE id = $1`, w.x)
			return err
		}, true},
		{"its SMS template edited (not listed)", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE assessment SET sms_template = 'EXAM_RESULT_ANNOUNCEMENT' WHERE id = $1`, w.x)
			return err
		}, false},
		{"an assessment updated to what it was", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE assessment SET name = name, enabled = enabled WHERE id = $1`, w.x)
			return err
		}, false},
		{"its deadline moved", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE assessment_deadline SET due_at = due_at + interval '1 day' WHERE assessment_id = $1 AND district = 'Shimla'`, w.x)
			return err
		}, true},
		{"a subject added", func() error {
			_, err := w.pool.Exec(w.ctx, `INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 7, 'HINDI')`, w.y)
			return err
		}, true},
		{"an assessment created for Shimla", func() error {
			w.assessment(spec{name: "new", grades: map[int][]string{6: {"EVS"}}, deadlines: map[string]string{"Shimla": "W"}})
			return nil
		}, true},
		{"an assessment created for Solan", func() error {
			w.assessment(spec{name: "Solan's", grades: map[int][]string{6: {"EVS"}}, deadlines: map[string]string{"Solan": "S"}})
			return nil
		}, false},
		{"an assessment disabled", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE assessment SET enabled = false WHERE id = $1`, w.y)
			return err
		}, true},
		{"the current year changed", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE academic_year SET is_current = false; UPDATE academic_year SET is_current = true WHERE id = '2025-26'`)
			return err
		}, true},
		{"the school moved to another district", func() error {
			_, err := w.pool.Exec(w.ctx, `UPDATE school SET district = 'Solan' WHERE id = $1`, w.a)
			return err
		}, true},
	}
	before, shown := version(), listing()
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		after, now := version(), listing()
		if changed := after != before; changed != s.changes {
			t.Errorf("%s: version changed %v, want %v", s.name, changed, s.changes)
		}
		if !s.changes && !slices.Equal(now, shown) {
			t.Errorf("%s: the version stayed but the listing changed:\n%s", s.name, diffLines(now, shown))
		}
		before, shown = after, now
	}
	w.noDrift("after the steps")
}

func TestPassRuleEditRecountsPassed(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 40, nil)
	w.mustResult(w.x, w.a, w.s2, "MATHEMATICS", &w.theory, true, 60, nil)
	passed := func() int {
		return w.int(`SELECT passed FROM assessment_progress WHERE assessment_id = $1 AND school_id = $2 AND subject = 'MATHEMATICS'`, w.x, w.a)
	}
	if got := passed(); got != 2 {
		t.Fatalf("passed %d at 33%%, want 2", got)
	}
	w.exec(`UPDATE assessment SET pass_percent = 50 WHERE id = $1`, w.x)
	if got := passed(); got != 1 {
		t.Errorf("passed %d after raising the pass mark to 50%%, want 1", got)
	}
	// Without a total, the components' maxima make the pass mark.
	w.exec(`UPDATE assessment SET total_marks = NULL WHERE id = $1`, w.x)
	w.exec(`UPDATE assessment_component SET max_marks = 200 WHERE id = $1`, w.pract)
	if got := passed(); got != 0 {
		t.Errorf("passed %d with components of 80 + 200 at 50%%, want 0", got)
	}
	w.noDrift("after the edits")
}

// TestWritesAtRepeatableReadAreRefused: result writes and recounts (a
// pass-rule edit) read the rows committed before them, which an older
// snapshot would not show.
func TestWritesAtRepeatableReadAreRefused(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	for _, tt := range []struct {
		name string
		sql  string
		args []any
	}{
		{"a result", `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
			VALUES ($1, $2, $3, 'HINDI', $4, true, 10)`, []any{w.x, w.a, w.s1, w.theory}},
		{"a pass-rule edit", `UPDATE assessment SET pass_percent = 40 WHERE id = $1`, []any{w.x}},
	} {
		tx, err := w.pool.BeginTx(w.ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tx.Exec(w.ctx, tt.sql, tt.args...)
		if err == nil || !strings.Contains(err.Error(), "READ COMMITTED") {
			t.Errorf("%s at repeatable read: %v, want a refusal naming READ COMMITTED", tt.name, err)
		}
		if err := tx.Rollback(w.ctx); err != nil {
			t.Fatal(err)
		}
	}
}
