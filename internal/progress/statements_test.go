package progress_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestOneStatementChangingAStudentTwoWaysCountsOnce: a statement that
// inserts some of a student's component rows and updates or deletes
// others fires more than one statement trigger (an upsert — Hasura's
// insert with on_conflict — fires the UPDATE one and then the INSERT one;
// MERGE and writable CTEs one per kind of change), and every one of them
// sees the table as the whole statement left it. The counters must still
// move from the student's state before the statement to the state after
// it, exactly once.
func TestOneStatementChangingAStudentTwoWaysCountsOnce(t *testing.T) {
	t.Parallel()
	const upsert = `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
		SELECT $1, $2, $3, 'MATHEMATICS', u.c, u.p, u.m FROM unnest($4::uuid[], $5::bool[], $6::numeric[]) AS u (c, p, m)
		ON CONFLICT (assessment_id, student_id, subject, component_id) DO UPDATE SET present = EXCLUDED.present, marks = EXCLUDED.marks`
	for _, tt := range []struct {
		name string
		// before writes the student's theory row; change then writes in
		// one statement (args: assessment, school, student, theory,
		// practical).
		before    func(w *world)
		change    string
		args      func(w *world) []any
		wantCount string // students/present/absent/scored/passed of 6-A MATHEMATICS
		// same: the counts end as they were, so the version stays.
		same bool
	}{
		{
			name:   "upsert: theory was absent, both components now present",
			before: func(w *world) { w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, false, nil, nil) },
			change: upsert,
			args: func(w *world) []any {
				return []any{w.x, w.a, w.s1, []any{w.theory, w.pract}, []bool{true, true}, []any{50, 15}}
			},
			wantCount: "1/1/0/1/1",
		},
		{
			name: "upsert: theory lowered, practical added, the total still short",
			before: func(w *world) {
				w.mustResult(w.x, w.a, w.s2, "MATHEMATICS", &w.theory, true, 60, nil) // another student who passed
				w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 30, nil) // 30 < 33
			},
			change: upsert,
			args: func(w *world) []any {
				return []any{w.x, w.a, w.s1, []any{w.theory, w.pract}, []bool{true, true}, []any{10, 20}} // 30 again
			},
			wantCount: "2/2/0/2/1",
			same:      true,
		},
		{
			name:   "writable CTE: theory deleted, practical inserted",
			before: func(w *world) { w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, true, 50, nil) },
			change: `WITH gone AS (DELETE FROM assessment_result WHERE student_id = $3 AND component_id = $4)
				INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
				VALUES ($1, $2, $3, 'MATHEMATICS', $5, true, 20)`,
			args:      func(w *world) []any { return []any{w.x, w.a, w.s1, w.theory, w.pract} },
			wantCount: "1/1/0/1/0",
		},
		{
			name:   "MERGE: theory updated, practical inserted",
			before: func(w *world) { w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, false, nil, nil) },
			change: `MERGE INTO assessment_result r
				USING (VALUES ($4::uuid, 40), ($5::uuid, 15)) AS v (c, m) ON r.student_id = $3 AND r.subject = 'MATHEMATICS' AND r.component_id = v.c
				WHEN MATCHED THEN UPDATE SET present = true, marks = v.m
				WHEN NOT MATCHED THEN INSERT (assessment_id, school_id, student_id, subject, component_id, present, marks)
					VALUES ($1, $2, $3, 'MATHEMATICS', v.c, true, v.m)`,
			args:      func(w *world) []any { return []any{w.x, w.a, w.s1, w.theory, w.pract} },
			wantCount: "1/1/0/1/1",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			tt.before(w)
			before, err := w.store.Version(w.ctx, w.a)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.pool.Exec(w.ctx, tt.change, tt.args(w)...); err != nil {
				t.Fatalf("the statement was refused: %v", err)
			}
			w.noDrift("after the statement")
			var got string
			if err := w.pool.QueryRow(w.ctx, `SELECT format('%s/%s/%s/%s/%s', students, present, absent, scored, passed) FROM assessment_progress
				WHERE assessment_id = $1 AND school_id = $2 AND grade = 6 AND section = 'A' AND subject = 'MATHEMATICS'`, w.x, w.a).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.wantCount {
				t.Errorf("6-A MATHEMATICS counts %s, want %s", got, tt.wantCount)
			}
			after, err := w.store.Version(w.ctx, w.a)
			if err != nil {
				t.Fatal(err)
			}
			if changed := after != before; changed == tt.same {
				t.Errorf("version changed %v, want %v", changed, !tt.same)
			}
		})
	}

	t.Run("several such statements in one transaction, one rolled back to a savepoint", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		w.mustResult(w.x, w.a, w.s1, "MATHEMATICS", &w.theory, false, nil, nil)
		w.mustResult(w.x, w.a, w.s2, "MATHEMATICS", &w.pract, true, 20, nil)
		err := pgx.BeginFunc(w.ctx, w.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(w.ctx, upsert, w.x, w.a, w.s1, []any{w.theory, w.pract}, []bool{true, true}, []any{50, 15}); err != nil {
				return err
			}
			if _, err := tx.Exec(w.ctx, "SAVEPOINT s"); err != nil {
				return err
			}
			// Refused (90 marks over the theory's 80) half-way through.
			if _, err := tx.Exec(w.ctx, upsert, w.x, w.a, w.s2, []any{w.pract, w.theory}, []bool{true, true}, []any{5, 90}); err == nil {
				t.Error("marks over the maximum were accepted")
			}
			if _, err := tx.Exec(w.ctx, "ROLLBACK TO SAVEPOINT s"); err != nil {
				return err
			}
			_, err := tx.Exec(w.ctx, upsert, w.x, w.a, w.s2, []any{w.pract}, []bool{true}, []any{18})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		w.noDrift("after the transaction")
	})
}
