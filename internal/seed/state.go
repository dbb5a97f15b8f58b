package seed

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/progress"
)

// StateOptions size the state-scale data set. Scale 1 is Himachal
// Pradesh's size: 12 districts, 18,000 schools, about 1.5 M students, 20
// assessments in the current year and results for the ten that are under
// way (≈ 30 M result rows). Tests use a small scale.
type StateOptions struct {
	Scale float64 // 0: 1; negative, NaN or infinite: refused
	Seed  uint64
	// Progress, if set, is told what was loaded as it goes.
	Progress func(format string, args ...any)
}

// StateResult counts what was loaded.
type StateResult struct {
	Districts, Schools, Students, Assessments int
	Results, TSP, FinalClasses                int64
	AlreadySeeded                             bool
	Elapsed                                   time.Duration
}

// stateDistricts are the districts the state data set fills, with the share
// of their schools that are winter-closing (session W).
var stateDistricts = []struct {
	Name   string
	Winter float64
}{
	{"Bilaspur", 0.05}, {"Chamba", 0.5}, {"Hamirpur", 0.05}, {"Kangra", 0.15}, {"Kinnaur", 1}, {"Kullu", 0.6},
	{"Lahaul and Spiti", 1}, {"Mandi", 0.4}, {"Shimla", 0.7}, {"Sirmaur", 0.3}, {"Solan", 0.2}, {"Una", 0},
}

// stateLevel is a kind of school: its grades, sections and mean class size.
type stateLevel struct {
	prefix    string
	from, to  int
	sections  int
	classSize float64
	share     float64
}

var stateLevels = []stateLevel{
	{"GPS", 1, 5, 1, 8, 0.55},
	{"GMS", 6, 8, 1, 14, 0.15},
	{"GHS", 6, 10, 1, 22, 0.15},
	{"GSSS", 6, 12, 2, 19, 0.15},
}

// stateAssessment is one of the year's assessments.
type stateAssessment struct {
	id          uuid.UUID
	name, kind  string
	evaluation  string
	unitType    string
	subjects    func(grade int) []string
	components  []stateComponent
	results     bool // under way: results, TSP counts and final classes loaded
	dueInDays   int
	passPercent int
}

type stateComponent struct {
	id   uuid.UUID
	kind string
	max  int
}

func languages(int) []string { return []string{"HINDI", "ENGLISH"} }

func numeracy(grade int) []string {
	switch {
	case grade <= 5:
		return []string{"MATHEMATICS", "EVS"}
	case grade <= 10:
		return []string{"MATHEMATICS", "SCIENCE"}
	default:
		return []string{"MATHEMATICS", "PHYSICS"}
	}
}

// ordered makes ids that grow in the order they are made (a UUID of
// version 8: kind, counter), so bulk-loaded rows append to their indexes
// instead of scattering over them.
type ordered struct {
	kind byte
	n    uint64
}

func (o *ordered) next() uuid.UUID {
	o.n++
	var u uuid.UUID
	binary.BigEndian.PutUint64(u[8:], o.n) // 56 bits of counter after the variant byte
	u[0], u[1] = 0x5e, o.kind
	u[6] = 0x80 // version 8
	u[8] = 0x80 // RFC 4122 variant
	return u
}

type stateStudent struct {
	id      uuid.UUID
	grade   int
	section string
}

type stateSchool struct {
	id       uuid.UUID
	udise    string
	teacher  string
	students []stateStudent
}

// State loads the state-scale data set with COPY, foreign-key checks and
// triggers off (session_replication_role = replica, so it needs a
// superuser), every row valid by construction; then counts the progress
// counters and class enrolments once (progress.Rebuild) and analyses the
// tables. It runs in one transaction: all or nothing. If the data set is
// already there it changes nothing.
func State(ctx context.Context, pool *pgxpool.Pool, opts StateOptions) (StateResult, error) {
	start := time.Now()
	if opts.Scale < 0 || math.IsNaN(opts.Scale) || math.IsInf(opts.Scale, 0) {
		return StateResult{}, fmt.Errorf("seed state: scale %v: want a fraction of the state's size above 0", opts.Scale)
	}
	if opts.Scale == 0 {
		opts.Scale = 1
	}
	say := opts.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	res := StateResult{Districts: len(stateDistricts)}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Release()
	var super, seeded bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return res, err
	}
	if !super {
		return res, errors.New("seed --state loads with triggers and foreign-key checks off (session_replication_role = replica): connect as a superuser")
	}
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM school WHERE udise = $1)`, stateUDISE(0, 0)).Scan(&seeded); err != nil {
		return res, err
	}
	if seeded {
		res.AlreadySeeded = true
		err := conn.QueryRow(ctx, `SELECT count(*) FROM school WHERE district = ANY ($1) AND udise ~ '^02[01][0-9][0-9]{2}0[0-9]{2}[0-9]{2}$'`,
			districtNames()).Scan(&res.Schools)
		return res, err
	}

	g := &stateGen{rng: rand.New(rand.NewPCG(opts.Seed, 0x57a7e)), now: time.Now(), schoolIDs: ordered{kind: 1},
		studentIDs: ordered{kind: 2}, resultIDs: ordered{kind: 3}, otherIDs: ordered{kind: 4}, tspIDs: ordered{kind: 5}}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica; SET LOCAL synchronous_commit = off;
			SET LOCAL work_mem = '256MB'; SET LOCAL maintenance_work_mem = '512MB'`); err != nil {
			return err
		}
		year, err := currentYear(ctx, tx)
		if err != nil {
			return err
		}
		schools, err := g.loadSchools(ctx, tx, opts.Scale)
		if err != nil {
			return err
		}
		res.Schools = len(schools)
		for _, s := range schools {
			res.Students += len(s.students)
		}
		say("seed: %d schools, %d students (%s)", res.Schools, res.Students, time.Since(start).Round(time.Second))
		assessments, err := g.loadAssessments(ctx, tx, year)
		if err != nil {
			return err
		}
		res.Assessments = len(assessments)
		if err := loadObjectives(ctx, tx); err != nil {
			return err
		}
		if res.Results, err = g.loadResults(ctx, tx, schools, assessments); err != nil {
			return err
		}
		say("seed: %d results (%s)", res.Results, time.Since(start).Round(time.Second))
		if res.TSP, res.FinalClasses, err = g.loadClassWork(ctx, tx, schools, assessments); err != nil {
			return err
		}
		say("seed: %d TSP counts, %d final classes (%s)", res.TSP, res.FinalClasses, time.Since(start).Round(time.Second))
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = origin`); err != nil {
			return err
		}
		if err := progress.Rebuild(ctx, tx); err != nil {
			return err
		}
		say("seed: progress counted (%s)", time.Since(start).Round(time.Second))
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("seed state: %w", err)
	}
	for _, t := range []string{"school", "student", "assessment_class", "assessment_progress", "school_class", "assessment_result", "assessment_tsp"} {
		if _, err := conn.Exec(ctx, "VACUUM (ANALYZE) "+t); err != nil {
			return res, fmt.Errorf("seed state: vacuum %s: %w", t, err)
		}
	}
	res.Elapsed = time.Since(start)
	say("seed: analysed (%s)", res.Elapsed.Round(time.Second))
	return res, nil
}

func districtNames() []string {
	var out []string
	for _, d := range stateDistricts {
		out = append(out, d.Name)
	}
	return out
}

// stateUDISE is the UDISE code of a district's i-th school: state 02,
// district, block, village, school. Villages 000–099 never meet the demo
// district's (100–899).
func stateUDISE(district, i int) string {
	return fmt.Sprintf("02%02d%02d%03d%02d", district+1, i%15+1, (i/15)%100, (i/1500)%100)
}

// currentYear is the academic year marked current, made current (2026-27)
// when none is.
func currentYear(ctx context.Context, tx pgx.Tx) (string, error) {
	var year string
	err := tx.QueryRow(ctx, `SELECT id FROM academic_year WHERE is_current`).Scan(&year)
	if errors.Is(err, pgx.ErrNoRows) {
		year = "2026-27"
		_, err = tx.Exec(ctx, `INSERT INTO academic_year (id, starts_on, ends_on, is_current) VALUES ('2026-27', '2026-04-01', '2027-03-31', true)
			ON CONFLICT (id) DO UPDATE SET is_current = true`)
	}
	return year, err
}

type stateGen struct {
	rng                                                *rand.Rand
	now                                                time.Time
	schoolIDs, studentIDs, resultIDs, otherIDs, tspIDs ordered
}

func (g *stateGen) loadSchools(ctx context.Context, tx pgx.Tx, scale float64) ([]*stateSchool, error) {
	perDistrict := int(math.Round(18000 * scale / float64(len(stateDistricts))))
	if perDistrict < 1 {
		perDistrict = 1
	}
	var schools []*stateSchool
	var schoolRows, staffRows [][]any
	for d, dist := range stateDistricts {
		for i := range perDistrict {
			lv := g.level()
			s := &stateSchool{id: g.schoolIDs.next(), udise: stateUDISE(d, i)}
			s.teacher = "school-" + s.udise
			session := "S"
			if g.rng.Float64() < dist.Winter {
				session = "W"
			}
			village := villages[g.rng.IntN(len(villages))]
			schoolRows = append(schoolRows, []any{s.id, s.udise, lv.prefix + " " + village, dist.Name, fmt.Sprintf("Block %d", i%15+1), session})
			staffRows = append(staffRows, []any{s.teacher, "प्रधानाचार्य " + village, mobile(g.rng), "school", s.id, dist.Name})
			for grade := lv.from; grade <= lv.to; grade++ {
				for sec := range lv.sections {
					n := int(math.Max(1, math.Round(lv.classSize*(0.5+g.rng.Float64()))))
					for range n {
						s.students = append(s.students, stateStudent{id: g.studentIDs.next(), grade: grade, section: string(rune('A' + sec))})
					}
				}
			}
			schools = append(schools, s)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"school"}, []string{"id", "udise", "name", "district", "block", "session"},
		pgx.CopyFromRows(schoolRows)); err != nil {
		return nil, fmt.Errorf("schools: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"staff"}, []string{"user_id", "name", "phone", "role", "school_id", "district"},
		pgx.CopyFromRows(staffRows)); err != nil {
		return nil, fmt.Errorf("staff: %w", err)
	}
	row := make([]any, 14)
	students := func(yield func([]any) bool) {
		for _, s := range schools {
			for i, st := range s.students {
				g.studentRow(row, s, st, i+1)
				if !yield(row) {
					return
				}
			}
		}
	}
	if _, err := copyFrom(ctx, tx, "student", []string{"id", "school_id", "name", "father_name", "mother_name",
		"guardian_phone", "gender", "category", "date_of_birth", "admission_number", "admission_date", "grade", "section", "stream"},
		students); err != nil {
		return nil, fmt.Errorf("students: %w", err)
	}
	return schools, nil
}

func (g *stateGen) level() stateLevel {
	r := g.rng.Float64()
	for _, lv := range stateLevels {
		if r < lv.share {
			return lv
		}
		r -= lv.share
	}
	return stateLevels[0]
}

func (g *stateGen) studentRow(row []any, s *stateSchool, st stateStudent, admission int) {
	rng := g.rng
	gender, first := "MALE", boys[rng.IntN(len(boys))]
	if rng.IntN(2) == 0 {
		gender, first = "FEMALE", girls[rng.IntN(len(girls))]
	}
	surname := surnames[rng.IntN(len(surnames))]
	var stream any
	if st.grade >= 11 {
		stream = streams[rng.IntN(len(streams))]
	}
	var phone any
	if rng.IntN(50) > 0 {
		phone = mobile(rng)
	}
	age := 5 + st.grade
	row[0], row[1] = st.id, s.id
	row[2], row[3], row[4] = first+" "+surname, boys[rng.IntN(len(boys))]+" "+surname, girls[rng.IntN(len(girls))]+" देवी"
	row[5], row[6], row[7] = phone, gender, categories[rng.IntN(len(categories))]
	row[8] = time.Date(g.now.Year()-age, time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
	row[9] = fmt.Sprintf("%s/%05d", s.udise[7:], admission)
	row[10] = time.Date(g.now.Year()-rng.IntN(st.grade), 4, 1, 0, 0, 0, 0, time.UTC)
	row[11], row[12], row[13] = st.grade, st.section, stream
}

// loadObjectives defines, for every grade and subject the assessments
// ask, the learning objectives and units the TSP counts name: LO-1..3 and
// UNIT-1..3 (units).
func loadObjectives(ctx context.Context, tx pgx.Tx) error {
	var grades []int16
	var subjects []string
	for grade := 1; grade <= 12; grade++ {
		for _, subj := range append(languages(grade), numeracy(grade)...) {
			grades, subjects = append(grades, int16(grade)), append(subjects, subj)
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO learning_objective (grade, subject, code, description, is_unit, position)
		SELECT c.grade, c.subject, k.kind || '-' || n, CASE WHEN k.kind = 'UNIT' THEN 'इकाई ' ELSE 'सीखने का प्रतिफल ' END || n || ' (' || c.subject || ', कक्षा ' || c.grade || ')',
			k.kind = 'UNIT', n
		FROM unnest($1::smallint[], $2::text[]) AS c(grade, subject), (VALUES ('LO'), ('UNIT')) AS k(kind), generate_series(1, 3) AS n
		ON CONFLICT (grade, subject, code) DO NOTHING`, grades, subjects)
	if err != nil {
		return fmt.Errorf("learning objectives: %w", err)
	}
	return nil
}

// loadAssessments creates the year's 20 assessments — ten kinds, each for
// languages and for numeracy — open to every district in both sessions;
// the ten earliest are under way.
func (g *stateGen) loadAssessments(ctx context.Context, tx pgx.Tx, year string) ([]*stateAssessment, error) {
	kinds := []struct {
		kind, name, evaluation, unit string
		components                   bool
	}{
		{"BASELINE", "Baseline", "GRADE", "LO", false}, {"FA1", "FA-1", "MARKS", "NONE", false}, {"FA2", "FA-2", "MARKS", "NONE", false},
		{"SA1", "SA-1", "MARKS", "NONE", true}, {"TERM1", "Term-1", "MARKS", "UNIT", false},
		{"FA3", "FA-3", "MARKS", "NONE", false}, {"FA4", "FA-4", "MARKS", "NONE", false}, {"SA2", "SA-2", "MARKS", "NONE", true},
		{"TERM2", "Term-2", "MARKS", "UNIT", false}, {"ENDLINE", "Endline", "GRADE", "LO", false},
	}
	var out []*stateAssessment
	for i, k := range kinds {
		for gi, group := range []struct {
			name     string
			subjects func(int) []string
		}{{"भाषा", languages}, {"गणित-विज्ञान", numeracy}} {
			a := &stateAssessment{id: g.otherIDs.next(), name: k.name + " " + group.name + " " + year, kind: k.kind, evaluation: k.evaluation,
				unitType: k.unit, subjects: group.subjects, results: i < 5, dueInDays: 20 + 30*i + gi, passPercent: 33}
			instance := fmt.Sprintf("uuid:state-seed-%s-%s-%d", year, k.kind, gi)
			sub := g.otherIDs.next()
			if _, err := tx.Exec(ctx, `INSERT INTO form_submission (id, xml, instance_id, form_id, form_version, status, source, submitted_by, processed_at)
				VALUES ($1, '<assessment/>', $2, 'assessment_builder', 'seed', 'accepted', 'action', 'state-admin', now())`, sub, instance); err != nil {
				return nil, fmt.Errorf("assessment submission: %w", err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO assessment (id, submission_id, builder_instance_id, name, type, academic_year, unit_type,
					evaluation, outcome, total_marks, pass_percent, sms_template, created_by)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'TSP', 100, $9, 'EXAM_RESULT_ANNOUNCEMENT', 'state-admin')`,
				a.id, sub, instance, a.name, a.kind, year, a.unitType, a.evaluation, a.passPercent); err != nil {
				return nil, fmt.Errorf("assessment: %w", err)
			}
			for _, d := range stateDistricts {
				for si, session := range []string{"W", "S"} {
					if _, err := tx.Exec(ctx, `INSERT INTO assessment_deadline (assessment_id, district, session, due_at)
						VALUES ($1, $2, $3, date_trunc('day', now()) + make_interval(days => $4) + interval '12 hours')`,
						a.id, d.Name, session, a.dueInDays+7*si); err != nil {
						return nil, fmt.Errorf("deadline: %w", err)
					}
				}
			}
			for grade := 1; grade <= 12; grade++ {
				for _, subj := range a.subjects(grade) {
					if _, err := tx.Exec(ctx, `INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, $2, $3)`, a.id, grade, subj); err != nil {
						return nil, fmt.Errorf("assessment subject: %w", err)
					}
				}
			}
			if k.components {
				for pos, c := range []stateComponent{{kind: "THEORY", max: 80}, {kind: "PRACTICAL", max: 20}} {
					c.id = g.otherIDs.next()
					if _, err := tx.Exec(ctx, `INSERT INTO assessment_component (id, assessment_id, component_type, max_marks, pass_percent, position)
						VALUES ($1, $2, $3, $4, 33, $5)`, c.id, a.id, c.kind, c.max, pos); err != nil {
						return nil, fmt.Errorf("component: %w", err)
					}
					a.components = append(a.components, c)
				}
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// classDone is how far a class got with an assessment under way: most
// finished, some part-way, a few not started.
func (g *stateGen) classDone() float64 {
	switch r := g.rng.IntN(20); {
	case r == 0:
		return 0
	case r < 4:
		return 0.3 + 0.6*g.rng.Float64()
	default:
		return 1
	}
}

var letters = []string{"A", "B", "C", "D", "E"}

// loadResults streams the results of the assessments under way, school by
// school, so every index is appended to.
func (g *stateGen) loadResults(ctx context.Context, tx pgx.Tx, schools []*stateSchool, assessments []*stateAssessment) (int64, error) {
	row := make([]any, 12)
	rows := func(yield func([]any) bool) {
		for _, s := range schools {
			for _, a := range assessments {
				if !a.results {
					continue
				}
				done, class := 0.0, -1
				for _, st := range s.students {
					if c := st.grade*16 + int(st.section[0]-'A'); c != class {
						done, class = g.classDone(), c
					}
					if g.rng.Float64() >= done {
						continue
					}
					for _, subj := range a.subjects(st.grade) {
						for ci := range max(1, len(a.components)) {
							var comp *stateComponent
							if len(a.components) > 0 {
								comp = &a.components[ci]
							}
							g.resultRow(row, s, a, st, subj, comp)
							if !yield(row) {
								return
							}
						}
					}
				}
			}
		}
	}
	n, err := copyFrom(ctx, tx, "assessment_result", []string{"id", "assessment_id", "school_id", "student_id", "subject",
		"component_id", "present", "marks", "grade", "submitted_by", "class_grade", "class_section"}, rows)
	if err != nil {
		return n, fmt.Errorf("results: %w", err)
	}
	return n, nil
}

func (g *stateGen) resultRow(row []any, s *stateSchool, a *stateAssessment, st stateStudent, subj string, comp *stateComponent) {
	present := g.rng.IntN(20) > 0
	var compID, marks, grade any
	top := 100
	if comp != nil {
		compID, top = comp.id, comp.max
	}
	if present {
		if a.evaluation == "GRADE" {
			grade = letters[min(4, int(math.Abs(g.rng.NormFloat64()*1.3)))]
		} else {
			marks = top * min(100, max(0, int(60+g.rng.NormFloat64()*20))) / 100
		}
	}
	row[0], row[1], row[2], row[3], row[4], row[5] = g.resultIDs.next(), a.id, s.id, st.id, subj, compID
	row[6], row[7], row[8], row[9], row[10], row[11] = present, marks, grade, s.teacher, st.grade, st.section
}

// copyFrom copies the rows of seq into table.
func copyFrom(ctx context.Context, tx pgx.Tx, table string, columns []string, seq iter.Seq[[]any]) (int64, error) {
	next, stop := iter.Pull(seq)
	defer stop()
	return tx.CopyFrom(ctx, pgx.Identifier{table}, columns, pgx.CopyFromFunc(func() ([]any, error) {
		row, ok := next()
		if !ok {
			return nil, nil
		}
		return row, nil
	}))
}

// loadClassWork writes, for the assessments under way, the class-level TSP
// counts (three learning outcomes or units per class and subject) and
// finalises two in five classes.
func (g *stateGen) loadClassWork(ctx context.Context, tx pgx.Tx, schools []*stateSchool, assessments []*stateAssessment) (tsp, final int64, err error) {
	type class struct {
		grade   int
		section string
		size    int
	}
	var tspRows, classRows [][]any
	flush := func() error {
		if len(tspRows) > 0 {
			n, err := tx.CopyFrom(ctx, pgx.Identifier{"assessment_tsp"}, []string{"id", "assessment_id", "school_id", "grade", "section", "subject",
				"unit", "students_cleared", "students_present", "submitted_by"}, pgx.CopyFromRows(tspRows))
			if err != nil {
				return fmt.Errorf("tsp: %w", err)
			}
			tsp += n
		}
		if len(classRows) > 0 {
			n, err := tx.CopyFrom(ctx, pgx.Identifier{"assessment_class"}, []string{"assessment_id", "school_id", "grade", "section", "final",
				"finalized_at", "finalized_by"}, pgx.CopyFromRows(classRows))
			if err != nil {
				return fmt.Errorf("final classes: %w", err)
			}
			final += n
		}
		tspRows, classRows = tspRows[:0], classRows[:0]
		return nil
	}
	for _, s := range schools {
		var classes []class
		for _, st := range s.students {
			if n := len(classes); n > 0 && classes[n-1].grade == st.grade && classes[n-1].section == st.section {
				classes[n-1].size++
				continue
			}
			classes = append(classes, class{grade: st.grade, section: st.section, size: 1})
		}
		for _, a := range assessments {
			if !a.results {
				continue
			}
			for _, c := range classes {
				if a.unitType != "NONE" {
					for _, subj := range a.subjects(c.grade) {
						for u := 1; u <= 3; u++ {
							present := c.size - g.rng.IntN(c.size/5+1)
							tspRows = append(tspRows, []any{g.tspIDs.next(), a.id, s.id, c.grade, c.section, subj,
								fmt.Sprintf("%s-%d", a.unitType, u), g.rng.IntN(present + 1), present, s.teacher})
						}
					}
				}
				if g.rng.IntN(5) < 2 {
					// Finalised days ago: long announced, not a fresh
					// result broadcast to send.
					classRows = append(classRows, []any{a.id, s.id, c.grade, c.section, true, g.now.Add(-96 * time.Hour), s.teacher})
				}
			}
		}
		if len(tspRows) > 50000 {
			if err := flush(); err != nil {
				return tsp, final, err
			}
		}
	}
	return tsp, final, flush()
}
