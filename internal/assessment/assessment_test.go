package assessment_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../xform/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture is a migrated database with the assessment builder registered
// and its academic year, and the pipeline builders are submitted through.
type fixture struct {
	t        *testing.T
	pool     *pgxpool.Pool
	catalog  *forms.Catalog
	pipeline *forms.Pipeline
}

func setup(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t)
	f := &fixture{t: t, pool: pool, catalog: forms.NewCatalog(pool)}
	f.pipeline = &forms.Pipeline{Pool: pool, Catalog: f.catalog, Rules: forms.NewRules(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := pool.Exec(context.Background(), `INSERT INTO academic_year (id, starts_on, ends_on, is_current)
		VALUES ('2026-27', '2026-04-01', '2027-03-31', true)`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.catalog.Register(context.Background(), read(t, "assessment_builder.xml"), forms.AssessmentBuilder, "admin-1"); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func builderXML(t testing.TB, replace ...string) []byte {
	return []byte(strings.NewReplacer(replace...).Replace(string(read(t, "assessment_submission.xml"))))
}

func TestAssessmentBuilderCreatesTheAssessment(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "assessment_submission.xml"), Source: "action", SubmittedBy: "admin-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.AssessmentID == nil {
		t.Fatalf("result %+v", res)
	}
	id := *res.AssessmentID
	var name, kind, eval, outcome, unit string
	var total float64
	if err := f.pool.QueryRow(ctx, `SELECT name, type, evaluation, outcome, unit_type, total_marks FROM assessment WHERE id = $1`, id).
		Scan(&name, &kind, &eval, &outcome, &unit, &total); err != nil {
		t.Fatal(err)
	}
	if name != "SA-1 गणित और हिंदी 2026" || kind != "SA1" || eval != "MARKS" || outcome != "TSP" || unit != "NONE" || total != 100 {
		t.Errorf("assessment %s %s %s %s %s %v", name, kind, eval, outcome, unit, total)
	}
	var due time.Time
	if err := f.pool.QueryRow(ctx, `SELECT due_at FROM assessment_deadline WHERE assessment_id = $1 AND district = 'Solan'`, id).Scan(&due); err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 15, 12, 0, 0, 0, time.UTC); !due.Equal(want) {
		t.Errorf("deadline %v, want %v (17:30 IST)", due, want)
	}
	if n := f.count(`SELECT count(*) FROM assessment_subject WHERE assessment_id = $1`, id); n != 4 {
		t.Errorf("%d class-subject selections, want 4", n)
	}
	if n := f.count(`SELECT count(*) FROM assessment_component WHERE assessment_id = $1`, id); n != 2 {
		t.Errorf("%d components, want 2", n)
	}

	// An edit changes the assessment in place.
	edit := builderXML(t, "<instanceID>uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60</instanceID><deprecatedID/>",
		"<instanceID>uuid:0a7c3e1f-5d2b-4c8a-9e6f-000000000002</instanceID><deprecatedID>uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60</deprecatedID>",
		"<districts>Shimla Solan</districts>", "<districts>Shimla Solan Kangra</districts>")
	res2, err := f.pipeline.Receive(ctx, forms.Input{XML: edit, Source: "action"})
	if err != nil {
		t.Fatal(err)
	}
	if *res2.AssessmentID != id || f.count(`SELECT count(*) FROM assessment_deadline WHERE assessment_id = $1`, id) != 3 {
		t.Errorf("edit: %v, want the same assessment with 3 districts", res2.AssessmentID)
	}
}

func TestUnsupportedAssessmentKindsAreRefusedByName(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	_, err := f.pipeline.Receive(ctx, forms.Input{XML: builderXML(t, "<evaluation>MARKS</evaluation>", "<evaluation>PERCENTAGE</evaluation>",
		"<outcome>TSP</outcome>", "<outcome>BOOLEAN</outcome>"), Source: "action"})
	if fault.As(err).Code != "UNSUPPORTED_ASSESSMENT" || !strings.Contains(err.Error(), "unit type NONE × evaluation PERCENTAGE × outcome BOOLEAN") {
		t.Errorf("got %v", err)
	}
	if n := f.count(`SELECT count(*) FROM assessment`); n != 0 {
		t.Error("an unsupported assessment was created")
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'rejected'`); n != 1 {
		t.Error("the refused submission was not kept as rejected")
	}
	_, err = f.pipeline.Receive(ctx, forms.Input{XML: builderXML(t, "<max_marks>20</max_marks>", "<max_marks>25</max_marks>",
		"uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60", "uuid:other"), Source: "action"})
	if fault.As(err).Code != "INVALID_ASSESSMENT" || !strings.Contains(err.Error(), "components add up to 105 marks but total_marks is 100") {
		t.Errorf("inconsistent totals: %v", err)
	}
	// Every supported kind is accepted by the database constraint too.
	for i, kind := range [][3]string{{"LO", "GRADE", "TSP"}, {"QUESTION", "MARKS", "TSP"}} {
		if !assessment.Supported(kind[0], kind[1], kind[2]) {
			t.Errorf("%v not supported", kind)
		}
		_, err := f.pipeline.Receive(ctx, forms.Input{XML: builderXML(t, "<unit_type>NONE</unit_type>", "<unit_type>"+kind[0]+"</unit_type>",
			"<evaluation>MARKS</evaluation>", "<evaluation>"+kind[1]+"</evaluation>",
			"uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60", fmt.Sprintf("uuid:kind-%d", i)), Source: "action"})
		if err != nil {
			t.Errorf("%v: %v", kind, err)
		}
	}
}

func TestSchoolWritesFollowDeadlineFinalAndMaximum(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "assessment_submission.xml"), Source: "action"})
	if err != nil {
		t.Fatal(err)
	}
	aid := *res.AssessmentID
	// Deadlines are in December 2026; the tests run before or after it, so
	// move the deadline relative to now.
	if _, err := f.pool.Exec(ctx, `UPDATE assessment_deadline SET due_at = now() + interval '1 day'`); err != nil {
		t.Fatal(err)
	}
	var school, student, theory uuid.UUID
	if err := f.pool.QueryRow(ctx, `INSERT INTO school (udise, name, district, block, session) VALUES ('02110100101', 'GSSS Kufri', 'Shimla', 'Mashobra', 'W') RETURNING id`).Scan(&school); err != nil {
		t.Fatal(err)
	}
	if err := f.pool.QueryRow(ctx, `INSERT INTO student (school_id, name, gender, grade, section) VALUES ($1, 'आरव', 'MALE', 6, 'A') RETURNING id`, school).Scan(&student); err != nil {
		t.Fatal(err)
	}
	if err := f.pool.QueryRow(ctx, `SELECT id FROM assessment_component WHERE assessment_id = $1 AND component_type = 'THEORY'`, aid).Scan(&theory); err != nil {
		t.Fatal(err)
	}
	write := func(subject string, marks any, present bool) error {
		_, err := f.pool.Exec(ctx, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (assessment_id, student_id, subject, component_id) DO UPDATE SET marks = EXCLUDED.marks`,
			aid, school, student, subject, theory, present, marks)
		return err
	}
	if err := write("MATHEMATICS", 72, true); err != nil {
		t.Fatalf("a valid result: %v", err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE assessment_result SET grade = 'A' WHERE student_id = $1`, student); err == nil || !strings.Contains(err.Error(), "evaluated in marks, not grades") {
		t.Errorf("a grade in a marks assessment: %v", err)
	}
	for _, tt := range []struct {
		name    string
		subject string
		marks   any
		present bool
		want    string
	}{
		{"over the maximum", "MATHEMATICS", 81, true, "exceed the maximum 80"},
		{"subject not in the assessment", "SCIENCE", 50, true, "subject SCIENCE is not part of"},
		{"absent with marks", "HINDI", 10, false, "assessment_result_absent_no_score"},
		{"present without marks", "HINDI", nil, true, "marks required"},
	} {
		if err := write(tt.subject, tt.marks, tt.present); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := f.pool.Exec(ctx, `INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, 'A', true)`, aid, school); err != nil {
		t.Fatal(err)
	}
	if err := write("MATHEMATICS", 70, true); err == nil || !strings.Contains(err.Error(), "class 6-A is final") {
		t.Errorf("after finalising: %v", err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE assessment_class SET final = false`); err == nil {
		t.Error("a final class was reopened")
	}
	// Moving the student to another section does not reopen the final
	// class for their result: it stays the result of 6-A.
	if _, err := f.pool.Exec(ctx, `UPDATE student SET section = 'B' WHERE id = $1`, student); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE assessment_result SET marks = 80 WHERE student_id = $1`, student); err == nil || !strings.Contains(err.Error(), "class 6-A is final") {
		t.Errorf("editing a final class's result after moving the student: %v", err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE student SET section = 'A' WHERE id = $1`, student); err != nil {
		t.Fatal(err)
	}
	// Finalising is held to the rules too: not for a class the assessment
	// does not cover, not after the deadline.
	if _, err := f.pool.Exec(ctx, `INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 11, 'A', true)`, aid, school); err == nil || !strings.Contains(err.Error(), "class 11 is not part of") {
		t.Errorf("finalising a class the assessment does not cover: %v", err)
	}
	if _, err := f.pool.Exec(ctx, `DELETE FROM assessment_class; UPDATE assessment_deadline SET due_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	if err := write("MATHEMATICS", 70, true); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("after the deadline: %v", err)
	}
	if _, err := f.pool.Exec(ctx, `INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, 'A', true)`, aid, school); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("finalising after the deadline: %v", err)
	}
	_, err = f.pool.Exec(ctx, `INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, students_cleared, students_present)
		VALUES ($1, $2, 6, 'A', 'HINDI', 30, 25)`, aid, school)
	if err == nil || !strings.Contains(err.Error(), "assessment_tsp_cleared_le_present") && !strings.Contains(err.Error(), "deadline") {
		t.Errorf("TSP with more cleared than present after the deadline: %v", err)
	}
}

// A school can insert form_submission rows through Hasura (data collection),
// but an assessment builder inserted that way does not create an assessment:
// Hasura records the role and the pipeline refuses it. state_admin may.
func TestAssessmentBuildersOnlyFromBuilderRoles(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	insert := func(role string, doc []byte) uuid.UUID {
		var id uuid.UUID
		// What Hasura's insert permission writes: xml from the app, source,
		// submitted_by and submitted_role from the session.
		if err := f.pool.QueryRow(ctx, `INSERT INTO form_submission (xml, source, submitted_by, submitted_role)
			VALUES ($1, 'hasura', '17', $2) RETURNING id`, string(doc), role).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	school := insert("school", read(t, "assessment_submission.xml"))
	_, err := f.pipeline.Process(ctx, school)
	if fault.KindOf(err) != fault.Forbidden || !strings.Contains(err.Error(), "not school") {
		t.Errorf("builder from a school: %v, want FORBIDDEN", err)
	}
	var status string
	var reason string
	_ = f.pool.QueryRow(ctx, `SELECT status, errors -> 0 ->> 'reason' FROM form_submission WHERE id = $1`, school).Scan(&status, &reason)
	if status != forms.StatusRejected || !strings.Contains(reason, "assessment builders are submitted by admin or state_admin") {
		t.Errorf("school's builder kept as %s (%q), want rejected with the reason", status, reason)
	}
	if n := f.count(`SELECT count(*) FROM assessment`); n != 0 {
		t.Fatalf("a school created %d assessments", n)
	}
	admin := insert("state_admin", builderXML(t, "uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60", "uuid:0a7c3e1f-5d2b-4c8a-9e6f-00000000aaaa"))
	res, err := f.pipeline.Process(ctx, admin)
	if err != nil || res.AssessmentID == nil {
		t.Fatalf("builder from state_admin: %+v %v", res, err)
	}
}

// Through OpenRosa only collectors an admin created for it submit
// assessment builders.
func TestOnlyBuilderCollectorsSubmitBuilders(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	collectors := collector.NewStore(f.pool)
	field, _, err := collectors.Create(ctx, "field", "9816011111", "admin")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.pipeline.Receive(ctx, forms.Input{XML: read(t, "assessment_submission.xml"), Source: "openrosa", CollectorID: &field.ID})
	if fault.KindOf(err) != fault.Forbidden || f.count(`SELECT count(*) FROM assessment`) != 0 {
		t.Fatalf("builder from a field collector: %v, want FORBIDDEN and no assessment", err)
	}
	admin, _, err := collectors.CreateBuilder(ctx, "admin in Enketo", "9816022222", "admin")
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: builderXML(t, "uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60", "uuid:0a7c3e1f-5d2b-4c8a-9e6f-00000000bbbb"),
		Source: "openrosa", CollectorID: &admin.ID})
	if err != nil || res.AssessmentID == nil {
		t.Errorf("builder from a builder collector: %+v %v", res, err)
	}
}

// open creates the sample assessment with its deadline a day away and a
// school in Shimla (W), and returns their ids.
func (f *fixture) open() (assessmentID, school uuid.UUID) {
	f.t.Helper()
	return f.openKind("NONE")
}

// A class row is created only for an assessment open to the school (the
// school role inserts non-final rows through Hasura): enabled, open to its
// district and session, before the deadline, for a class it covers.
func TestClassRowsOnlyForOpenAssessments(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	aid, shimla := f.open()
	var kangra uuid.UUID
	if err := f.pool.QueryRow(ctx, `INSERT INTO school (udise, name, district, block, session) VALUES ('02020100101', 'GSSS Dehra', 'Kangra', 'Dehra', 'W') RETURNING id`).Scan(&kangra); err != nil {
		t.Fatal(err)
	}
	insert := func(school uuid.UUID, grade int) error {
		_, err := f.pool.Exec(ctx, `INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, $3, 'A', false)`,
			aid, school, grade)
		return err
	}
	for _, tt := range []struct {
		name   string
		school uuid.UUID
		grade  int
		want   string
	}{
		{"a district the assessment is not open to", kangra, 6, "not open to this school's district and session"},
		{"a class the assessment does not cover", shimla, 11, "class 11 is not part of"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := insert(tt.school, tt.grade); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	if err := insert(shimla, 6); err != nil {
		t.Fatalf("a class of an open assessment: %v", err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE assessment_deadline SET due_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	if err := insert(shimla, 7); err == nil || !strings.Contains(err.Error(), "deadline") {
		t.Errorf("after the deadline: %v", err)
	}
}

// A final class's results are announced once, whoever asks: the sweep
// finds a class finalised by plain SQL (no event), a second sweep and a late
// event find it announced; a class finalised days ago is not announced
// late; an assessment without an SMS template records why nothing was sent.
func TestResultsAreAnnouncedOncePerClass(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	aid, school := f.open()
	finalise := func(section, finalisedAt string) {
		t.Helper()
		if _, err := f.pool.Exec(ctx, `INSERT INTO assessment_class (assessment_id, school_id, grade, section, final, finalized_at, finalized_by)
			VALUES ($1, $2, 6, $3, true, now() - $4::interval, 'teacher-9')`, aid, school, section, finalisedAt); err != nil {
			t.Fatal(err)
		}
	}
	sweep := func() int {
		t.Helper()
		n, err := assessment.SweepAnnouncements(ctx, f.pool, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	finalise("A", "2 minutes")
	if n := sweep(); n != 1 {
		t.Errorf("first sweep queued %d, want 1", n)
	}
	var by string
	var vars map[string]string
	if err := f.pool.QueryRow(ctx, `SELECT requested_by, variables FROM sms_request WHERE school_id = $1 AND type = 'EXAM_RESULT_ANNOUNCEMENT'
		AND grades = '{6}' AND sections = '{A}'`, school).Scan(&by, &vars); err != nil {
		t.Fatalf("no result SMS for the class finalised by SQL: %v", err)
	}
	if by != "teacher-9" || vars["assessment"] != "SA-1 गणित और हिंदी 2026" || len(vars["results_date"]) != len("02-01-2006") {
		t.Errorf("requested by %q with %v", by, vars)
	}
	if n := sweep(); n != 0 {
		t.Errorf("second sweep queued %d, want 0", n)
	}
	defer func() {
		// One product event per class announced, whoever announced it.
		var n int
		if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM product_event WHERE event = 'results_announced' AND distinct_id = $1
			AND properties @> jsonb_build_object('assessment_id', $2::text, 'grade', 6, 'section', 'A')
			AND properties ->> 'sms_request_id' IN (SELECT id::text FROM sms_request)`, school.String(), aid).Scan(&n); err != nil || n != 1 {
			t.Errorf("got %d results_announced events for class 6 A (%v), want 1", n, err)
		}
	}()
	var late assessment.Announcement
	if err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		var err error
		late, err = assessment.Announce(ctx, tx, assessment.Class{AssessmentID: aid, SchoolID: school, Grade: 6, Section: "A"})
		return err
	}); err != nil || late.Queued != nil {
		t.Errorf("the late event: %+v %v, want nothing queued", late, err)
	}

	finalise("B", "4 days") // historical results loaded by SQL
	if _, err := f.pool.Exec(ctx, `UPDATE assessment SET sms_template = NULL`); err != nil {
		t.Fatal(err)
	}
	finalise("C", "2 minutes")
	if n := sweep(); n != 0 {
		t.Errorf("sweep queued %d for a class finalised days ago and one without a template, want 0", n)
	}
	var skipped string
	if err := f.pool.QueryRow(ctx, `SELECT skipped FROM assessment_announcement WHERE section = 'C' AND sms_request_id IS NULL`).Scan(&skipped); err != nil || skipped != "the assessment has no SMS template" {
		t.Errorf("class C: %q %v", skipped, err)
	}
	if n := f.count(`SELECT count(*) FROM assessment_announcement WHERE section = 'B'`); n != 0 {
		t.Errorf("the class finalised days ago was announced")
	}
	if n := f.count(`SELECT count(*) FROM sms_request`); n != 1 {
		t.Errorf("%d result requests in all, want 1", n)
	}
}

// The Samarth layout's ids name master data; an id that names nothing (or
// a subject id of another class, a type of another category) is refused at
// its field, with the submission kept as rejected.
func TestSamarthIDsAreCheckedByPath(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `
		INSERT INTO academic_year (id, starts_on, ends_on) VALUES ('2022-23', '2022-04-01', '2023-03-31');
		UPDATE assessment_category SET external_id = '12' WHERE id = 'SA';
		UPDATE assessment_type SET external_id = '3' WHERE id = 'SA1';
		INSERT INTO subject_code (external_id, subject, grade) VALUES ('5', 'HINDI', 1), ('6', 'ENGLISH', 1), ('88', 'MATHEMATICS', 1),
			('4', 'HINDI', 2), ('38', 'ENGLISH', 2), ('89', 'MATHEMATICS', 2);
		DELETE FROM district WHERE code = 'una';`); err != nil {
		t.Fatal(err)
	}
	r, err := f.catalog.Register(ctx, read(t, "samarth_builder.xml"), forms.AssessmentBuilder, "admin-1")
	if err != nil || r.BuilderLayout != "samarth" {
		t.Fatalf("register: %+v %v", r, err)
	}
	doc := string(read(t, "samarth_builder_submission.xml"))
	for i, tt := range []struct {
		name, from, to, path, want string
	}{
		{"a component type id nobody entered", "", "", "/data/eval_params/coms/assessment_component_group[1]/component_details", `unknown component type "10"`},
		{"a subject id of another class", "<eval_params_subjects>5 6 88</eval_params_subjects>", "<eval_params_subjects>5 101</eval_params_subjects>",
			"/data/grade_subject_selection/my_repeat[1]/eval_params_subjects", "subject id 101 is HINDI of class 5, not of class 1"},
		{"a type of another category", "<assessment_category>12</assessment_category>", "<assessment_category>1</assessment_category>",
			"/data/assessment_details/assessment_category", "assessment type SA1 is of category SA, not FA"},
		{"a district that is not there", "lahaul_and_spiti shimla", "shimla una", "/data/deadline/applicable_district", `unknown district "una"`},
		{"an academic year that is not there", "<academic_year>2022-2023</academic_year>", "<academic_year>2023-2024</academic_year>",
			"/data/deadline/academic_year", `academic year "2023-24" does not exist`},
		{"marks per subject", "<subject_custom>no</subject_custom>", "<subject_custom>yes</subject_custom>",
			"/data/eval_params/subject_custom", "marks that differ per subject are not supported"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			xml := strings.NewReplacer("uuid:7d2e4b10-93c1-4f6a-b8e2-5a0c1d9e3f47", fmt.Sprintf("uuid:ids-%d", i), tt.from, tt.to).Replace(doc)
			if tt.from == "" {
				xml = strings.Replace(doc, "uuid:7d2e4b10-93c1-4f6a-b8e2-5a0c1d9e3f47", fmt.Sprintf("uuid:ids-%d", i), 1)
			}
			_, err := f.pipeline.Receive(ctx, forms.Input{XML: []byte(xml), Source: "action", Role: "state_admin", SubmittedBy: "1"})
			fe := fault.As(err)
			if fe.Code != assessment.CodeInvalid || fe.Field != tt.path || !strings.Contains(fe.Message, tt.want) {
				t.Errorf("got %v at %s, want %q at %s", err, fe.Field, tt.want, tt.path)
			}
			if n := f.count(`SELECT count(*) FROM form_submission WHERE instance_id = $1 AND status = 'rejected'
				AND error_code = 'INVALID_ASSESSMENT' AND errors -> 0 ->> 'path' = $2`, fmt.Sprintf("uuid:ids-%d", i), tt.path); n != 1 {
				t.Errorf("not kept as rejected at its path")
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM assessment`); n != 0 {
		t.Errorf("%d assessments from refused builders", n)
	}
}

// A component type named twice is refused at the second one: the
// assessment keeps one row per type, so the second silently overwrote the
// first while the total counted both.
func TestComponentTypeTwiceIsRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	_, err := f.pipeline.Receive(ctx, forms.Input{XML: builderXML(t, "<component_type>PRACTICAL</component_type>", "<component_type>THEORY</component_type>",
		"uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60", "uuid:twice"), Source: "action"})
	fe := fault.As(err)
	if want := "/assessment/component[2]/component_type"; fe.Code != assessment.CodeInvalid || fe.Field != want || !strings.Contains(fe.Message, "THEORY") {
		t.Errorf("THEORY twice: %v at %q, want INVALID_ASSESSMENT at %s naming THEORY", err, fe.Field, want)
	}
	if n := f.count(`SELECT count(*) FROM assessment`); n != 0 {
		t.Errorf("%d assessments with a component type twice, want 0", n)
	}
}

// Values out of their range — a pass percentage above 100 or below 0, a
// total of no marks, a name over 300 characters — are refused at their field (INVALID_ASSESSMENT, the
// submission kept as rejected), not by the table's CHECK as INVALID_INPUT
// quoting the constraint with no field.
func TestOutOfRangeValuesAreRefusedByPath(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	const components = "<component><component_type>THEORY</component_type><max_marks>80</max_marks><pass_percent>33</pass_percent></component>" +
		"<component><component_type>PRACTICAL</component_type><max_marks>20</max_marks><pass_percent>33</pass_percent></component>"
	for i, tt := range []struct {
		name, from, to, path string
	}{
		{"overall pass percentage above 100", "<total_marks>100</total_marks><pass_percent>33</pass_percent>", "<total_marks>100</total_marks><pass_percent>330</pass_percent>", "/assessment/pass_percent"},
		{"a component's pass percentage below 0", "<max_marks>20</max_marks><pass_percent>33</pass_percent>", "<max_marks>20</max_marks><pass_percent>-5</pass_percent>", "/assessment/component[2]/pass_percent"},
		{"a total of no marks", components + "<total_marks>100</total_marks>", "<total_marks>0</total_marks>", "/assessment/total_marks"},
		{"a name over 300 characters", "<name>SA-1 गणित और हिंदी 2026</name>", "<name>" + strings.Repeat("गणित ", 61) + "</name>", "/assessment/name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			instance := fmt.Sprintf("uuid:range-%d", i)
			doc := builderXML(t, tt.from, tt.to, "uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60", instance)
			if !strings.Contains(string(doc), tt.to) {
				t.Fatalf("the replacement did not apply")
			}
			_, err := f.pipeline.Receive(ctx, forms.Input{XML: doc, Source: "action"})
			if fe := fault.As(err); fe.Code != assessment.CodeInvalid || fe.Field != tt.path {
				t.Errorf("got %v (%s at %q), want INVALID_ASSESSMENT at %s", err, fe.Code, fe.Field, tt.path)
			}
			if n := f.count(`SELECT count(*) FROM form_submission WHERE instance_id = $1 AND status = 'rejected'
				AND error_code = 'INVALID_ASSESSMENT' AND errors -> 0 ->> 'path' = $2`, instance, tt.path); n != 1 {
				t.Errorf("not kept as rejected at its path")
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM assessment`); n != 0 {
		t.Errorf("%d assessments from out-of-range values, want 0", n)
	}
}

// An edit of a builder keeps what schools have already written valid, as
// removing a component with marks already is: it cannot drop a class's
// subject that has results, close it to a district whose schools have
// written, change the evaluation once results are written, or lower a
// maximum below marks given. Before, such an edit was
// accepted and left results the assessment no longer allowed (a subject it
// no longer has, marks in a GRADE assessment, 72 of a maximum of 60).
func TestEditKeepsWrittenResultsValid(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	aid, school := f.open()
	var student uuid.UUID
	if err := f.pool.QueryRow(ctx, `INSERT INTO student (school_id, name, gender, grade, section) VALUES ($1, 'आरव', 'MALE', 6, 'A') RETURNING id`, school).Scan(&student); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
		SELECT $1, $2, $3, 'MATHEMATICS', id, true, 72 FROM assessment_component WHERE assessment_id = $1 AND component_type = 'THEORY'`, aid, school, student); err != nil {
		t.Fatal(err)
	}
	const original = "uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60"
	edit := func(instance string, replace ...string) []byte {
		return builderXML(t, append([]string{"<instanceID>" + original + "</instanceID><deprecatedID/>",
			"<instanceID>" + instance + "</instanceID><deprecatedID>" + original + "</deprecatedID>"}, replace...)...)
	}
	for i, tt := range []struct {
		name    string
		replace []string
		path    string
		want    string
	}{
		{"a subject with results dropped", []string{"<subjects>HINDI MATHEMATICS</subjects>", "<subjects>HINDI</subjects>"},
			"/assessment/grade_subjects[1]/subjects", "MATHEMATICS of class 6 has results"},
		{"the evaluation changed", []string{"<evaluation>MARKS</evaluation>", "<evaluation>GRADE</evaluation>"},
			"/assessment/evaluation", "results are written in MARKS"},
		{"the school's district removed", []string{"<districts>Shimla Solan</districts>", "<districts>Solan</districts>"},
			"/assessment/deadline/districts", "schools of Shimla (session W) have results"},
		{"a maximum below marks given", []string{"<max_marks>80</max_marks>", "<max_marks>60</max_marks>", "<max_marks>20</max_marks>", "<max_marks>40</max_marks>"},
			"/assessment/component[1]/max_marks", "marks up to 72 are written"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			instance := fmt.Sprintf("uuid:keep-%d", i)
			_, err := f.pipeline.Receive(ctx, forms.Input{XML: edit(instance, tt.replace...), Source: "action"})
			if fe := fault.As(err); fe.Code != assessment.CodeInvalid || fe.Field != tt.path || !strings.Contains(fe.Message, tt.want) {
				t.Errorf("got %v (%s at %q), want INVALID_ASSESSMENT at %s: %q", err, fe.Code, fe.Field, tt.path, tt.want)
			}
		})
	}
	if n := f.count(`SELECT count(*) FROM assessment WHERE id = $1 AND builder_instance_id = $2 AND evaluation = 'MARKS'`, aid, original); n != 1 {
		t.Errorf("a refused edit changed the assessment")
	}
	if n := f.count(`SELECT count(*) FROM assessment_subject WHERE assessment_id = $1 AND grade = 6 AND subject = 'MATHEMATICS'`, aid); n != 1 {
		t.Errorf("a refused edit dropped the subject")
	}
	// An edit that keeps them valid is accepted.
	if _, err := f.pipeline.Receive(ctx, forms.Input{XML: edit("uuid:keep-ok", "<max_marks>80</max_marks>", "<max_marks>75</max_marks>",
		"<max_marks>20</max_marks>", "<max_marks>25</max_marks>"), Source: "action"}); err != nil {
		t.Errorf("an edit keeping the results valid: %v", err)
	}
}
