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
