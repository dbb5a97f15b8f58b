package progress_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/progress"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fixture is a migrated database with a current academic year and the
// helpers to fill it with schools, students and assessments.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	pool  *pgxpool.Pool
	store *progress.Store
	n     int
}

func setup(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t)
	f := &fixture{t: t, ctx: context.Background(), pool: pool, store: progress.NewStore(pool)}
	f.exec(`INSERT INTO academic_year (id, starts_on, ends_on, is_current) VALUES
		('2025-26', '2025-04-01', '2026-03-31', false), ('2026-27', '2026-04-01', '2027-03-31', true)`)
	return f
}

func (f *fixture) exec(sql string, args ...any) {
	f.t.Helper()
	if _, err := f.pool.Exec(f.ctx, sql, args...); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
}

func (f *fixture) id(sql string, args ...any) uuid.UUID {
	f.t.Helper()
	var id uuid.UUID
	if err := f.pool.QueryRow(f.ctx, sql, args...).Scan(&id); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return id
}

func (f *fixture) int(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func (f *fixture) school(district, session string) uuid.UUID {
	f.t.Helper()
	f.n++
	return f.id(`INSERT INTO school (udise, name, district, block, session) VALUES ($1, $2, $3, 'Block', $4) RETURNING id`,
		fmt.Sprintf("0211%07d", f.n), fmt.Sprintf("GSSS %d", f.n), district, session)
}

func (f *fixture) student(school uuid.UUID, grade int, section string) uuid.UUID {
	f.t.Helper()
	f.n++
	return f.id(`INSERT INTO student (school_id, name, gender, grade, section) VALUES ($1, $2, 'FEMALE', $3, nullif($4, '')) RETURNING id`,
		school, fmt.Sprintf("छात्रा %d", f.n), grade, section)
}

// spec describes an assessment; zero values take the defaults of new.
type spec struct {
	name        string
	evaluation  string            // MARKS (default) or GRADE
	year        string            // 2026-27
	total       any               // 100; nil for none
	pass        any               // 33
	components  map[string]int    // component type → max marks
	grades      map[int][]string  // grade → subjects
	deadlines   map[string]string // district → session
	enabled     *bool
	noTotal     bool
	unitType    string
	dueInterval string // '30 days'
}

// assessment creates an assessment the way a builder submission would
// leave it (its submission row, deadlines, subjects, components) and
// returns its id and components by type.
func (f *fixture) assessment(s spec) (uuid.UUID, map[string]uuid.UUID) {
	f.t.Helper()
	f.n++
	if s.name == "" {
		s.name = fmt.Sprintf("SA-1 %d", f.n)
	}
	if s.evaluation == "" {
		s.evaluation = "MARKS"
	}
	if s.year == "" {
		s.year = "2026-27"
	}
	if s.total == nil && !s.noTotal {
		s.total = 100
	}
	if s.pass == nil {
		s.pass = 33
	}
	if s.unitType == "" {
		s.unitType = "NONE"
	}
	if s.dueInterval == "" {
		s.dueInterval = "30 days"
	}
	enabled := true
	if s.enabled != nil {
		enabled = *s.enabled
	}
	instance := fmt.Sprintf("uuid:builder-%d", f.n)
	sub := f.id(`INSERT INTO form_submission (xml, instance_id, form_id, form_version, status, source)
		VALUES ('<assessment/>', $1, 'assessment_builder', '1', 'accepted', 'action') RETURNING id`, instance)
	id := f.id(`INSERT INTO assessment (submission_id, builder_instance_id, name, type, academic_year, unit_type, evaluation, outcome,
		total_marks, pass_percent, enabled) VALUES ($1, $2, $3, 'SA1', $4, $5, $6, 'TSP', $7, $8, $9) RETURNING id`,
		sub, instance, s.name, s.year, s.unitType, s.evaluation, s.total, s.pass, enabled)
	for d, session := range s.deadlines {
		f.exec(`INSERT INTO assessment_deadline (assessment_id, district, session, due_at) VALUES ($1, $2, $3, now() + $4::interval)`,
			id, d, session, s.dueInterval)
	}
	for g, subjects := range s.grades {
		for _, subj := range subjects {
			f.exec(`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, $2, $3)`, id, g, subj)
		}
	}
	comps := map[string]uuid.UUID{}
	pos := 0
	for kind, max := range s.components {
		comps[kind] = f.id(`INSERT INTO assessment_component (assessment_id, component_type, max_marks, pass_percent, position)
			VALUES ($1, $2, $3, 33, $4) RETURNING id`, id, kind, max, pos)
		pos++
	}
	return id, comps
}

// result writes (or rewrites) one result as a school would.
func (f *fixture) result(a, school, student uuid.UUID, subject string, component *uuid.UUID, present bool, marks, grade any) error {
	_, err := f.pool.Exec(f.ctx, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks, grade)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (assessment_id, student_id, subject, component_id) DO UPDATE SET present = EXCLUDED.present, marks = EXCLUDED.marks,
			grade = EXCLUDED.grade`, a, school, student, subject, component, present, marks, grade)
	return err
}

func (f *fixture) mustResult(a, school, student uuid.UUID, subject string, component *uuid.UUID, present bool, marks, grade any) {
	f.t.Helper()
	if err := f.result(a, school, student, subject, component, present, marks, grade); err != nil {
		f.t.Fatal(err)
	}
}

// version is the school's listing version (its ETag).
func (f *fixture) version(school uuid.UUID) string {
	f.t.Helper()
	v, err := f.store.Version(f.ctx, school)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// noDrift fails the test if the maintained counters differ from a recount.
func (f *fixture) noDrift(when string) {
	f.t.Helper()
	diffs, err := progress.Drift(f.ctx, f.pool)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(diffs) > 0 {
		f.t.Fatalf("%s: counters drifted from a recount:\n%s", when, join(diffs))
	}
}

func join(lines []string) string {
	out := ""
	for i, l := range lines {
		if i == 20 {
			return out + fmt.Sprintf("… and %d more\n", len(lines)-20)
		}
		out += l + "\n"
	}
	return out
}

func ptr[T any](v T) *T { return &v }
