package progress

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what Drift and Rebuild run on: a pool, a connection or a
// transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// progressDriftSQL lists where the maintained counters of the assessments
// $1 and schools $2 (NULL: all) differ from a count from scratch. A counter
// row of all zeroes is the same as none.
const progressDriftSQL = `WITH kept AS (
	SELECT * FROM assessment_progress
	WHERE (students, present, absent, scored, passed, tsp_units, tsp_present, tsp_cleared) <> (0, 0, 0, 0, 0, 0, 0, 0)
		AND assessment_id = ANY (coalesce($1, ARRAY[assessment_id])) AND school_id = ANY (coalesce($2, ARRAY[school_id]))
), fresh AS (
	SELECT * FROM assessment_progress_recount
	WHERE assessment_id = ANY (coalesce($1, ARRAY[assessment_id])) AND school_id = ANY (coalesce($2, ARRAY[school_id]))
)
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
ORDER BY 1`

// classDriftSQL lists classes whose maintained enrolment differs from a
// count of their active, enabled students.
const classDriftSQL = `SELECT format('class school %s %s-%s: kept %s students, counted %s', coalesce(k.school_id, f.school_id),
	coalesce(k.grade, f.grade), coalesce(k.section, f.section), coalesce(k.students, 0), coalesce(f.students, 0))
FROM (SELECT * FROM school_class WHERE students <> 0) k
FULL JOIN (SELECT school_id, grade, coalesce(section, 'A') AS section, count(*)::int AS students FROM student
	WHERE status = 'ACTIVE' AND enabled GROUP BY 1, 2, 3) f
	ON (k.school_id, k.grade, k.section) = (f.school_id, f.grade, f.section)
WHERE k.students IS DISTINCT FROM f.students
ORDER BY 1`

// unitDriftSQL lists the classes and subjects whose kept number of units
// differs from what assessment_unit says now.
const unitDriftSQL = `SELECT format('units assessment %s class %s %s: kept %s, counted %s', coalesce(k.assessment_id, f.assessment_id),
	coalesce(k.grade, f.grade), coalesce(k.subject, f.subject), coalesce(k.units, 0), coalesce(f.units, 0))
FROM assessment_unit_count k FULL JOIN assessment_unit_totals f
	ON (k.assessment_id, k.grade, k.subject) = (f.assessment_id, f.grade, f.subject)
WHERE k.units IS DISTINCT FROM f.units
ORDER BY 1`

// Drift counts every counter from scratch and returns each place the
// maintained counters (progress, class enrolment, units) differ from the count
// (nil when none do): the check that the triggers keep them right. It
// reads every result, so it is for tests, benchmarks and operators, never
// for serving.
func Drift(ctx context.Context, q Querier) ([]string, error) {
	diffs, err := lines(ctx, q, progressDriftSQL, nil, nil)
	if err != nil {
		return nil, err
	}
	classes, err := lines(ctx, q, classDriftSQL)
	if err != nil {
		return nil, err
	}
	units, err := lines(ctx, q, unitDriftSQL)
	if err != nil {
		return nil, err
	}
	if diffs = append(append(diffs, classes...), units...); len(diffs) == 0 {
		return nil, nil
	}
	return diffs, nil
}

// DriftOf is Drift for the progress counters of some assessments in some
// schools: it reads only their results.
func DriftOf(ctx context.Context, q Querier, assessments, schools []uuid.UUID) ([]string, error) {
	diffs, err := lines(ctx, q, progressDriftSQL, assessments, schools)
	if len(diffs) == 0 {
		return nil, err
	}
	return diffs, err
}

func lines(ctx context.Context, q Querier, sql string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("progress drift: %w", err)
	}
	return out, nil
}

// Rebuild counts every counter from scratch: the progress rows, the units
// each class and subject counts, each class's enrolment (its version
// bumped) and a scope row for every
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
		ON CONFLICT (district, session) DO UPDATE SET version = v.version + 1;
		SELECT assessment_unit_count_refresh()`) // last: the units' lock after the scopes', as a builder save takes them
	if err != nil {
		return fmt.Errorf("progress rebuild: %w", err)
	}
	return nil
}
