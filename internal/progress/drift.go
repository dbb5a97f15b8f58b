package progress

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what Drift and Rebuild run on: a pool, a connection or a
// transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// driftSQL counts everything from scratch (results, TSP rows, final
// classes, students) and lists where the maintained counters differ. A
// counter row of all zeroes is the same as none.
const driftSQL = `WITH kept AS (
	SELECT * FROM assessment_progress
	WHERE (students, present, absent, scored, passed, tsp_units, tsp_present, tsp_cleared) <> (0, 0, 0, 0, 0, 0, 0, 0)
), fresh AS (SELECT * FROM assessment_progress_count(NULL))
SELECT format('progress %s school %s class %s-%s %s: kept %s, counted %s',
	coalesce(k.assessment_id, f.assessment_id), coalesce(k.school_id, f.school_id), coalesce(k.grade, f.grade),
	coalesce(k.section, f.section), coalesce(k.subject, f.subject),
	CASE WHEN k.school_id IS NULL THEN 'nothing' ELSE format('%s/%s/%s/%s/%s tsp %s/%s/%s final %s', k.students, k.present,
		k.absent, k.scored, k.passed, k.tsp_units, k.tsp_present, k.tsp_cleared, k.final) END,
	CASE WHEN f.school_id IS NULL THEN 'nothing' ELSE format('%s/%s/%s/%s/%s tsp %s/%s/%s final %s', f.students, f.present,
		f.absent, f.scored, f.passed, f.tsp_units, f.tsp_present, f.tsp_cleared, f.final) END)
FROM kept k FULL JOIN fresh f
	ON (k.assessment_id, k.school_id, k.grade, k.section, k.subject) = (f.assessment_id, f.school_id, f.grade, f.section, f.subject)
WHERE k.school_id IS NULL OR f.school_id IS NULL
	OR (k.students, k.present, k.absent, k.scored, k.passed, k.tsp_units, k.tsp_present, k.tsp_cleared, k.final)
	IS DISTINCT FROM (f.students, f.present, f.absent, f.scored, f.passed, f.tsp_units, f.tsp_present, f.tsp_cleared, f.final)
UNION ALL
SELECT format('class school %s %s-%s: kept %s students, counted %s', coalesce(k.school_id, f.school_id),
	coalesce(k.grade, f.grade), coalesce(k.section, f.section), coalesce(k.students, 0), coalesce(f.students, 0))
FROM (SELECT * FROM school_class WHERE students <> 0) k
FULL JOIN (SELECT school_id, grade, coalesce(section, 'A') AS section, count(*)::int AS students FROM student
	WHERE status = 'ACTIVE' AND enabled GROUP BY 1, 2, 3) f
	ON (k.school_id, k.grade, k.section) = (f.school_id, f.grade, f.section)
WHERE k.students IS DISTINCT FROM f.students
ORDER BY 1`

// Drift counts every counter from scratch and returns each place the
// maintained counters differ from the count (nil when none do): the check
// that the triggers keep them right. It reads every result, so it is for
// tests, benchmarks and operators, never for serving.
func Drift(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.Query(ctx, driftSQL)
	if err != nil {
		return nil, err
	}
	diffs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("progress drift: %w", err)
	}
	if len(diffs) == 0 {
		return nil, nil
	}
	return diffs, nil
}

// Rebuild counts every counter from scratch: the progress rows, each
// class's enrolment (its version bumped) and a scope row for every
// (district, session) with a deadline. Bulk loads that bypass the triggers
// (the state-scale seed) call it once at the end.
func Rebuild(ctx context.Context, q Querier) error {
	_, err := q.Exec(ctx, `SELECT assessment_progress_rebuild(NULL);
		INSERT INTO school_class AS c (school_id, grade, section, students)
		SELECT school_id, grade, coalesce(section, 'A'), count(*) FROM student WHERE status = 'ACTIVE' AND enabled GROUP BY 1, 2, 3
		ON CONFLICT (school_id, grade, section) DO UPDATE SET students = EXCLUDED.students, version = c.version + 1;
		UPDATE school_class c SET students = 0, version = c.version + 1 WHERE students <> 0 AND NOT EXISTS (
			SELECT 1 FROM student s WHERE s.school_id = c.school_id AND s.grade = c.grade AND coalesce(s.section, 'A') = c.section
			AND s.status = 'ACTIVE' AND s.enabled);
		INSERT INTO school_class (school_id, grade, section)
		SELECT DISTINCT school_id, grade, section FROM assessment_progress ON CONFLICT DO NOTHING;
		INSERT INTO assessment_scope AS v (district, session) SELECT DISTINCT district, session FROM assessment_deadline
		ON CONFLICT (district, session) DO UPDATE SET version = v.version + 1`)
	if err != nil {
		return fmt.Errorf("progress rebuild: %w", err)
	}
	return nil
}
