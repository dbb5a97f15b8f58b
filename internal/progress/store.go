package progress

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
)

// CodeNoSuchSchool: the session's school does not exist.
const CodeNoSuchSchool fault.Code = "NO_SUCH_SCHOOL"

// format is part of every ETag: change it when the listing's shape or
// meaning changes, so apps holding an old listing fetch the new one.
const format = "listing/2"

// Store reads listings and versions.
type Store struct {
	pool  *pgxpool.Pool
	units unitCache
	// testBeforeUnits, when set, runs after a listing's snapshot and
	// before its numbers of units are looked up (tests change them there).
	testBeforeUnits func()
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// unitKey is a class and subject of an assessment.
type unitKey struct {
	assessment uuid.UUID
	grade      int
	subject    string
}

// unitCache holds assessment_unit_count as of one assessment_unit_version
// token: the numbers are the state's, the same in every school's listing,
// so a listing reads them from here instead of joining them in again.
// Listings that miss it at once share one read.
type unitCache struct {
	mu    sync.Mutex
	token string
	units map[unitKey]int
	read  singleflight.Group
}

// unitCountsSQL reads the kept numbers of units; unitTokenSQL their
// version's token.
const (
	unitCountsSQL = `SELECT assessment_id, grade, subject, units FROM assessment_unit_count`
	unitTokenSQL  = `SELECT token::text FROM assessment_unit_version WHERE id`
)

func scanUnits(rows pgx.Rows) (map[unitKey]int, error) {
	units := map[unitKey]int{}
	_, err := collect(rows, func(r pgx.Row) (struct{}, error) {
		var k unitKey
		var n int
		err := r.Scan((*[16]byte)(&k.assessment), &k.grade, &k.subject, &n)
		units[k] = n
		return struct{}{}, err
	})
	if err != nil {
		return nil, fmt.Errorf("unit counts: %w", err)
	}
	return units, nil
}

// unitsAt returns the number of units of each class and subject as of
// token, read again when the cache holds another; ok is false when the
// database has moved on since (the caller's snapshot is older than any
// numbers it can still read).
func (s *Store) unitsAt(ctx context.Context, token string) (units map[unitKey]int, ok bool, err error) {
	c := &s.units
	c.mu.Lock()
	if c.units != nil && c.token == token {
		defer c.mu.Unlock()
		return c.units, true, nil
	}
	c.mu.Unlock()
	type read struct {
		token string
		units map[unitKey]int
	}
	ch := c.read.DoChan("", func() (any, error) {
		// Shared by every listing waiting: not cancelled with the first.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		token, units, err := s.readUnits(ctx)
		if err != nil {
			return nil, err
		}
		// What the database holds now: newer than what the cache holds,
		// or as new (a reader whose snapshot came later won the race).
		c.mu.Lock()
		c.token, c.units = token, units
		c.mu.Unlock()
		return read{token, units}, nil
	})
	var res singleflight.Result
	select {
	case res = <-ch:
	case <-ctx.Done():
		return nil, false, ctx.Err() // the shared read goes on for the others
	}
	if res.Err != nil {
		return nil, false, res.Err
	}
	r := res.Val.(read)
	return r.units, r.token == token, nil
}

// readUnits reads the numbers of units and their token in one snapshot.
func (s *Store) readUnits(ctx context.Context) (string, map[unitKey]int, error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	b.Queue(unitTokenSQL)
	b.Queue(unitCountsSQL)
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return "", nil, err
	}
	var token string
	if err := br.QueryRow().Scan(&token); err != nil {
		return "", nil, fmt.Errorf("unit counts token: %w", err)
	}
	rows, _ := br.Query()
	units, err := scanUnits(rows)
	if err != nil {
		return "", nil, err
	}
	if _, err := br.Exec(); err != nil { // COMMIT
		return "", nil, err
	}
	return token, units, br.Close()
}

// versionSQL is everything a school's ETag is made of, in one statement of
// index reads: the school's district and session, its scope's version, the
// sum and number of its class versions, the current academic year, and the
// version of the units each class and subject counts (one row for the
// state: assessment_unit_version).
const versionSQL = `SELECT s.district, s.session,
	coalesce((SELECT v.version FROM assessment_scope v WHERE v.district = s.district AND v.session = s.session), 0),
	c.sum, c.count, (SELECT y.id FROM academic_year y WHERE y.is_current),
	(SELECT u.token::text FROM assessment_unit_version u WHERE u.id)
FROM school s,
	LATERAL (SELECT coalesce(sum(version), 0)::bigint AS sum, count(*) AS count FROM school_class WHERE school_id = s.id) c
WHERE s.id = $1`

type version struct {
	district, session string
	scope, sum, count int64
	year              *string
	units             string // assessment_unit_version's token
}

func (v version) etag(school uuid.UUID) string {
	b, err := json.Marshal([]any{format, school, v.district, v.session, v.scope, v.sum, v.count, v.year, v.units})
	if err != nil {
		panic(err) // strings and numbers always marshal
	}
	h := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(h[:18])
}

func scanVersion(row pgx.Row, school uuid.UUID) (version, error) {
	var v version
	err := row.Scan(&v.district, &v.session, &v.scope, &v.sum, &v.count, &v.year, &v.units)
	if errors.Is(err, pgx.ErrNoRows) {
		return v, fault.New(fault.NotFound, CodeNoSuchSchool, "school %s does not exist", school)
	}
	return v, err
}

// Version is the school's listing version (its ETag): it changes in the
// same transaction as anything the school's listing shows.
// A database that cannot be reached is a fault.Unavailable (try again).
func (s *Store) Version(ctx context.Context, school uuid.UUID) (string, error) {
	v, err := scanVersion(s.pool.QueryRow(ctx, versionSQL, school), school)
	if err != nil {
		return "", postgres.Translate(err, "assessment listing")
	}
	return v.etag(school), nil
}

// Listing returns the school's listing, or — when one of ifNoneMatch is the
// school's current version — NotModified with no assessments after one
// indexed read. The listing and its ETag are read in one snapshot, so an
// ETag never stands for a listing older than it. A database that cannot be
// reached is a fault.Unavailable (try again).
func (s *Store) Listing(ctx context.Context, school uuid.UUID, ifNoneMatch ...string) (*Listing, error) {
	if len(ifNoneMatch) > 0 {
		etag, err := s.Version(ctx, school)
		if err != nil {
			return nil, err
		}
		if slices.Contains(ifNoneMatch, etag) {
			return &Listing{ETag: etag, NotModified: true, Assessments: []Assessment{}}, nil
		}
	}
	// A listing whose snapshot is older than the unit numbers that can
	// still be read (master data changed in between) is read again.
	for attempt := 1; ; attempt++ {
		l, err := s.read(ctx, school, attempt == 3)
		if errors.Is(err, errUnitsMoved) {
			continue
		}
		if err != nil {
			return nil, postgres.Translate(err, "assessment listing")
		}
		return l, nil
	}
}

// errUnitsMoved: the unit numbers changed after the listing's snapshot.
var errUnitsMoved = errors.New("unit counts changed during the listing")

// visibleSQL is the assessments open to school $1: enabled, with a deadline
// for its district and session, of the current academic year when one is
// marked current.
const visibleSQL = `WITH s AS (SELECT district, session FROM school WHERE id = $1),
v AS (SELECT a.id, a.name, a.type, a.academic_year, a.unit_type, a.evaluation, a.outcome, a.total_marks, a.pass_percent, d.due_at
	FROM s JOIN assessment_deadline d ON d.district = s.district AND d.session = s.session
	JOIN assessment a ON a.id = d.assessment_id
	WHERE a.enabled AND (a.academic_year = (SELECT y.id FROM academic_year y WHERE y.is_current)
		OR NOT EXISTS (SELECT 1 FROM academic_year y WHERE y.is_current)))
`

// The listing's queries, sent together in one round trip. Each is an
// index scan of one school's rows (see the README for their plans).
const (
	assessmentsSQL = visibleSQL + `SELECT id, name, type, academic_year, unit_type, evaluation, outcome,
	total_marks::float8, pass_percent::float8, due_at FROM v ORDER BY due_at, name, id`
	subjectsSQL = visibleSQL + `SELECT x.assessment_id, x.grade, x.subject FROM assessment_subject x
	WHERE x.assessment_id IN (SELECT id FROM v)`
	classesSQL  = `SELECT grade, section, students FROM school_class WHERE school_id = $1`
	progressSQL = visibleSQL + `SELECT p.assessment_id, p.grade, p.section, p.subject, p.students, p.present, p.absent,
	p.scored, p.passed, p.tsp_units, p.tsp_present, p.tsp_cleared, p.final
	FROM assessment_progress p WHERE p.school_id = $1 AND p.assessment_id IN (SELECT id FROM v)`
	finalSQL = `SELECT c.assessment_id, c.grade, c.section FROM assessment_class c WHERE c.school_id = $1 AND c.final`
)

// ListingQueries are the statements a listing runs, for EXPLAIN (the
// benchmark and the README); each takes the school id as $1.
func ListingQueries() map[string]string {
	return map[string]string{"version": versionSQL, "assessments": assessmentsSQL, "subjects": subjectsSQL,
		"classes": classesSQL, "progress": progressSQL, "final": finalSQL}
}

type classKey struct {
	grade   int
	section string
}

type progressRow struct {
	assessment uuid.UUID
	class      classKey
	subject    string
	counts     Counts
	final      bool
}

// read assembles the listing from one snapshot: its queries run in one
// repeatable-read transaction, sent in one round trip; the number of units
// of each class and subject comes from the cache of its version. When the
// cache can only give newer numbers it returns errUnitsMoved, unless last,
// when it reads them in the listing's own snapshot.
func (s *Store) read(ctx context.Context, school uuid.UUID, last bool) (*Listing, error) {
	b := &pgx.Batch{}
	b.Queue("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
	b.Queue(versionSQL, school)
	b.Queue(assessmentsSQL, school)
	b.Queue(subjectsSQL, school)
	b.Queue(classesSQL, school)
	b.Queue(progressSQL, school)
	b.Queue(finalSQL, school)
	if last {
		b.Queue(unitCountsSQL)
	}
	b.Queue("COMMIT")
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()

	if _, err := br.Exec(); err != nil {
		return nil, err
	}
	v, err := scanVersion(br.QueryRow(), school)
	if err != nil {
		return nil, err
	}
	rows, _ := br.Query()
	assessments, err := collect(rows, func(r pgx.Row) (Assessment, error) {
		var a Assessment
		err := r.Scan((*[16]byte)(&a.ID), &a.Name, &a.Type, &a.AcademicYear, &a.UnitType, &a.Evaluation, &a.Outcome,
			&a.TotalMarks, &a.PassPercent, &a.DueAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing assessments: %w", err)
	}
	rows, _ = br.Query()
	subjects, err := collect(rows, func(r pgx.Row) (unitKey, error) {
		var g unitKey
		err := r.Scan((*[16]byte)(&g.assessment), &g.grade, &g.subject)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing subjects: %w", err)
	}
	rows, _ = br.Query()
	enrolled := map[classKey]int{}
	if _, err := collect(rows, func(r pgx.Row) (struct{}, error) {
		var k classKey
		var n int
		err := r.Scan(&k.grade, &k.section, &n)
		enrolled[k] = n
		return struct{}{}, err
	}); err != nil {
		return nil, fmt.Errorf("listing classes: %w", err)
	}
	rows, _ = br.Query()
	counters, err := collect(rows, func(r pgx.Row) (progressRow, error) {
		var p progressRow
		c := &p.counts
		err := r.Scan((*[16]byte)(&p.assessment), &p.class.grade, &p.class.section, &p.subject, &c.Students, &c.Present, &c.Absent,
			&c.Scored, &c.Passed, &c.TSPUnits, &c.TSPPresent, &c.TSPCleared, &p.final)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing progress: %w", err)
	}
	type finalClass struct {
		assessment uuid.UUID
		class      classKey
	}
	rows, _ = br.Query()
	finals, err := collect(rows, func(r pgx.Row) (finalClass, error) {
		var f finalClass
		err := r.Scan((*[16]byte)(&f.assessment), &f.class.grade, &f.class.section)
		return f, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing final classes: %w", err)
	}
	var units map[unitKey]int
	if last {
		rows, _ = br.Query()
		if units, err = scanUnits(rows); err != nil {
			return nil, err
		}
	}
	if _, err := br.Exec(); err != nil { // COMMIT
		return nil, err
	}
	// Only now, with the listing's connection back in the pool: a reader
	// holding one while waiting for another could leave none for anyone.
	if err := br.Close(); err != nil {
		return nil, err
	}
	if s.testBeforeUnits != nil {
		s.testBeforeUnits()
	}
	if !last {
		var ok bool
		if units, ok, err = s.unitsAt(ctx, v.units); err != nil {
			return nil, err
		} else if !ok {
			return nil, errUnitsMoved
		}
	}

	// Assemble per assessment.
	type build struct {
		grades  map[int][]string // grade → subjects the assessment asks of it
		classes map[classKey]*Class
		counts  map[classKey]map[string]Counts
	}
	builds := make(map[uuid.UUID]*build, len(assessments))
	for _, a := range assessments {
		builds[a.ID] = &build{grades: map[int][]string{}, classes: map[classKey]*Class{}, counts: map[classKey]map[string]Counts{}}
	}
	class := func(bd *build, k classKey) *Class {
		c := bd.classes[k]
		if c == nil {
			c = &Class{Grade: k.grade, Section: k.section, Enrolled: enrolled[k], Subjects: []Counted{}}
			bd.classes[k] = c
		}
		return c
	}
	for _, g := range subjects {
		bd := builds[g.assessment]
		bd.grades[g.grade] = append(bd.grades[g.grade], g.subject)
	}
	for _, bd := range builds {
		for k, n := range enrolled {
			if _, ok := bd.grades[k.grade]; ok && n > 0 {
				class(bd, k)
			}
		}
	}
	for _, p := range counters {
		bd := builds[p.assessment]
		c := class(bd, p.class)
		c.Final = c.Final || p.final
		if bd.counts[p.class] == nil {
			bd.counts[p.class] = map[string]Counts{}
		}
		bd.counts[p.class][p.subject] = p.counts
	}
	for _, f := range finals {
		if bd := builds[f.assessment]; bd != nil { // final classes of assessments not listed are not asked for
			class(bd, f.class).Final = true
		}
	}

	for i := range assessments {
		a := &assessments[i]
		bd := builds[a.ID]
		expected := func(grade int, subject string) *int {
			if a.UnitType == "NONE" { // each class and subject counted once
				return new(1)
			}
			if n, ok := units[unitKey{a.ID, grade, subject}]; ok {
				return new(n)
			}
			return nil
		}
		completion := map[string]*Subject{}
		for k, c := range bd.classes {
			names := slices.Clone(bd.grades[k.grade])
			for s := range bd.counts[k] {
				if !slices.Contains(names, s) {
					names = append(names, s)
				}
			}
			slices.Sort(names)
			for _, s := range names {
				counts := bd.counts[k][s]
				c.Subjects = append(c.Subjects, Counted{Subject: s, Counts: counts,
					TSPUnitsExpected: expected(k.grade, s)})
				a.Totals.add(counts)
				sc := completion[s]
				if sc == nil {
					sc = &Subject{Subject: s}
					completion[s] = sc
				}
				sc.Enrolled += c.Enrolled
				sc.Students += counts.Students
			}
			a.Classes = append(a.Classes, *c)
			a.Totals.Classes++
			a.Totals.Enrolled += c.Enrolled
			if c.Final {
				a.Totals.FinalClasses++
			}
		}
		slices.SortFunc(a.Classes, func(x, y Class) int {
			return cmp.Or(cmp.Compare(x.Grade, y.Grade), cmp.Compare(x.Section, y.Section))
		})
		a.Subjects = make([]Subject, 0, len(completion))
		for _, sc := range completion {
			a.Subjects = append(a.Subjects, *sc)
		}
		slices.SortFunc(a.Subjects, func(x, y Subject) int { return cmp.Compare(x.Subject, y.Subject) })
		if a.Classes == nil {
			a.Classes = []Class{}
		}
	}
	return &Listing{ETag: v.etag(school), Assessments: assessments}, nil
}

// collect reads rows with scan into a slice (never nil).
func collect[T any](rows pgx.Rows, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Opaque is the etag in s as HTTP or an app may send it back: bare, quoted
// ("…") or weak (W/"…").
func Opaque(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}
