package progress_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestTwoTeachersOfOneClassDoNotDeadlock: two teachers of class 6-A submit
// at once, one statement each — the class teacher HINDI and MATHEMATICS
// for one student, a subject teacher MATHEMATICS for another. Each
// statement's counter rows are taken in one order (subject by subject),
// but the class's version row was taken after each counter row: the class
// teacher held 6-A's version and waited for MATHEMATICS' counter row,
// which the subject teacher held while waiting for 6-A's version, and
// Postgres aborted one submission as a deadlock. The class's version row
// is now taken after every counter row of the statement.
//
// A third transaction holds 6-A's version row until both statements wait,
// which makes the interleaving certain: the class teacher, first in the
// row's queue, gets it first.
func TestTwoTeachersOfOneClassDoNotDeadlock(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := f.ctx
	school := f.school("Shimla", "W")
	s1, s2 := f.student(school, 6, "A"), f.student(school, 6, "A")
	x, _ := f.assessment(spec{grades: map[int][]string{6: {"HINDI", "MATHEMATICS"}}, deadlines: map[string]string{"Shimla": "W"}})

	conn := func() (*pgxpool.Conn, int) {
		t.Helper()
		c, err := f.pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Release)
		var pid int
		if err := c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			t.Fatal(err)
		}
		return c, pid
	}
	holder, _ := conn()
	classTeacher, classPid := conn()
	subjectTeacher, subjectPid := conn()
	// waiting returns once pid waits for a lock; it fails the test if the
	// statement ends (done) first.
	waiting := func(pid int, done chan error) {
		t.Helper()
		for {
			select {
			case err := <-done:
				t.Fatalf("backend %d's statement ended before it waited for a lock: %v", pid, err)
			default:
			}
			var waits bool
			if err := f.pool.QueryRow(ctx, `SELECT coalesce(wait_event_type = 'Lock', false) FROM pg_stat_activity WHERE pid = $1`, pid).
				Scan(&waits); err != nil {
				t.Fatal(err)
			}
			if waits {
				return
			}
		}
	}

	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM school_class WHERE school_id = $1 AND grade = 6 AND section = 'A' FOR UPDATE`, school); err != nil {
		t.Fatal(err)
	}
	submit := func(c *pgxpool.Conn, sql string, args ...any) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := c.Exec(context.Background(), sql, args...)
			done <- err
		}()
		return done
	}
	first := submit(classTeacher, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, present, marks)
		VALUES ($1, $2, $3, 'HINDI', true, 40), ($1, $2, $3, 'MATHEMATICS', true, 50)`, x, school, s1)
	waiting(classPid, first)
	second := submit(subjectTeacher, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, present, marks)
		VALUES ($1, $2, $3, 'MATHEMATICS', true, 60)`, x, school, s2)
	waiting(subjectPid, second)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	for who, done := range map[string]chan error{"class teacher": first, "subject teacher": second} {
		if err := <-done; err != nil {
			t.Errorf("%s's submission: %v", who, err)
		}
	}
	f.noDrift("after both submissions")
}
