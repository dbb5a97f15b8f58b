package progress_test

import (
	"strings"
	"testing"
)

// TestTruncateEmptiesWhatItFed: TRUNCATE fires no row or transition-table
// triggers, yet the counters and versions must follow it like any write.
func TestTruncateEmptiesWhatItFed(t *testing.T) {
	t.Parallel()
	for _, table := range []string{"assessment_result", "assessment_tsp", "assessment_class", "student"} {
		t.Run(table, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 50, nil)
			w.mustResult(w.y, w.a, w.s2, "HINDI", nil, true, nil, "A")
			w.exec(`INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, students_cleared, students_present)
				VALUES ($1, $2, 6, 'A', 'MATHEMATICS', 2, 3)`, w.x, w.a)
			// One final class with counters, one without (7-A wrote nothing).
			w.exec(`INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, 'A', true), ($1, $2, 7, 'A', true)`,
				w.x, w.a)
			w.noDrift("before")
			before, err := w.store.Version(w.ctx, w.a)
			if err != nil {
				t.Fatal(err)
			}
			w.exec(`TRUNCATE ` + table + ` CASCADE`)
			w.noDrift("after TRUNCATE " + table)
			if after, err := w.store.Version(w.ctx, w.a); err != nil || after == before {
				t.Errorf("version %q after TRUNCATE %s (%v), want a new one", after, table, err)
			}
			l, err := w.store.Listing(w.ctx, w.a)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range describe(l) {
				switch {
				case table == "assessment_class" && strings.Contains(line, "final true"),
					table == "assessment_result" && strings.HasPrefix(line, "X 6-A MATHEMATICS") && !strings.HasPrefix(line, "X 6-A MATHEMATICS: 0/0/0/0/0 tsp 1/3/2"),
					table == "student" && strings.Contains(line, "enrolled") && !strings.Contains(line, "enrolled 0"):
					t.Errorf("after TRUNCATE %s the listing still shows %q", table, line)
				}
			}
		})
	}
}

// TestGradePointsEditRecountsGradedAssessments: "passed" of a GRADE
// assessment compares average grade points with the top grade's, so an
// edit of grade_mapping changes it and the listings that show it.
func TestGradePointsEditRecountsGradedAssessments(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.mustResult(w.y, w.a, w.s1, "HINDI", nil, true, nil, "C") // 6 of 10 ≥ 50%: passed
	w.mustResult(w.y, w.a, w.s2, "HINDI", nil, true, nil, "A")
	passed := func() int {
		return w.int(`SELECT sum(passed) FROM assessment_progress WHERE assessment_id = $1 AND school_id = $2`, w.y, w.a)
	}
	if got := passed(); got != 2 {
		t.Fatalf("passed %d, want 2", got)
	}
	before, err := w.store.Version(w.ctx, w.a)
	if err != nil {
		t.Fatal(err)
	}
	w.exec(`UPDATE grade_mapping SET value = 4 WHERE letter = 'C'`)
	if got := passed(); got != 1 {
		t.Errorf("passed %d after C fell to 4 points, want 1", got)
	}
	w.noDrift("after the edit")
	if after, err := w.store.Version(w.ctx, w.a); err != nil || after == before {
		t.Errorf("version %q after the edit (%v), want a new one", after, err)
	}
	w.exec(`INSERT INTO grade_mapping (letter, value) VALUES ('A+', 12)`) // a new top grade raises the bar
	if got := passed(); got != 1 {
		t.Errorf("passed %d with A+ at 12 points, want 1 (A: 10 of 12)", got)
	}
	w.noDrift("after a new top grade")
}

// TestTruncateOfWhatIsOpenMovesTheVersions: TRUNCATE of the deadlines or
// subjects (or of the assessments, cascading to them) changes what every
// listing shows, and fires no row trigger: the versions must move anyway,
// or an app holding the old listing is told nothing changed.
func TestTruncateOfWhatIsOpenMovesTheVersions(t *testing.T) {
	t.Parallel()
	for _, table := range []string{"assessment_deadline", "assessment_subject", "assessment"} {
		t.Run(table, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			before, err := w.store.Listing(w.ctx, w.a)
			if err != nil {
				t.Fatal(err)
			}
			w.exec(`TRUNCATE ` + table + ` CASCADE`)
			after, err := w.store.Listing(w.ctx, w.a, before.ETag)
			if err != nil {
				t.Fatal(err)
			}
			if after.NotModified {
				t.Errorf("after TRUNCATE %s the listing of %s is notModified, want the new listing", table, before.ETag)
			}
			if fresh, err := w.store.Listing(w.ctx, w.a); err != nil {
				t.Fatal(err)
			} else if got, was := strings.Join(describe(fresh), "\n"), strings.Join(describe(before), "\n"); got == was {
				t.Errorf("after TRUNCATE %s the listing is still\n%s", table, got)
			}
		})
	}
}
