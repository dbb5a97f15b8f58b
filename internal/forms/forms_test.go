package forms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

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

type fixture struct {
	t        *testing.T
	pool     *pgxpool.Pool
	catalog  *forms.Catalog
	rules    *forms.Rules
	pipeline *forms.Pipeline
}

func setup(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.New(t)
	f := &fixture{t: t, pool: pool, catalog: forms.NewCatalog(pool), rules: forms.NewRules()}
	f.pipeline = &forms.Pipeline{Pool: pool, Catalog: f.catalog, Rules: f.rules, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	return f
}

func (f *fixture) register(file, purpose string) *forms.Registered {
	f.t.Helper()
	r, err := f.catalog.Register(context.Background(), read(f.t, file), purpose, "admin-1")
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

func (f *fixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// household returns the sample submission with replacements applied.
func household(t testing.TB, replace ...string) []byte {
	return []byte(strings.NewReplacer(replace...).Replace(string(read(t, "household_submission.xml"))))
}

const firstInstance = "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b"

func TestRegisterIsVersionedAndIdempotent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.register("household_survey.xml", forms.DataCollection)
	if r.FormID != "household_survey" || r.Version != "2026111501" || r.Questions != 28 || r.AlreadyRegistered {
		t.Fatalf("registered %+v", r)
	}
	if n := f.count(`SELECT count(*) FROM form_choice c JOIN form_question q ON q.id = c.question_id WHERE q.name = 'income_sources'`); n != 5 {
		t.Errorf("%d income source choices, want 5", n)
	}
	var hindi string
	_ = f.pool.QueryRow(context.Background(), `SELECT labels->>'Hindi (hi)' FROM form_question WHERE name = 'village'`).Scan(&hindi)
	if hindi != "गाँव" {
		t.Errorf("Hindi label %q", hindi)
	}
	if again := f.register("household_survey.xml", forms.DataCollection); !again.AlreadyRegistered {
		t.Error("registering the same definition twice was not idempotent")
	}
	changed := strings.Replace(string(read(t, "household_survey.xml")), "Household Survey 2026", "Household Survey 2026 (fixed)", 1)
	_, err := f.catalog.Register(context.Background(), []byte(changed), forms.DataCollection, "")
	if fault.As(err).Code != "VERSION_EXISTS" {
		t.Errorf("a changed definition under the same version: %v, want VERSION_EXISTS", err)
	}
	v2 := strings.Replace(changed, `version="2026111501"`, `version="2026112001"`, 1)
	if _, err := f.catalog.Register(context.Background(), []byte(v2), forms.DataCollection, ""); err != nil {
		t.Errorf("a new version: %v", err)
	}
	_, err = f.catalog.Register(context.Background(), read(t, "household_survey.xml"), forms.AssessmentBuilder, "")
	if err == nil || !strings.Contains(err.Error(), "not an assessment builder: type is missing") {
		t.Errorf("household as a builder: %v", err)
	}
	// A builder whose grade is text, not a whole number, would leave its
	// submissions unreadable: refused at registration, naming the field.
	badBuilder := strings.Replace(string(read(t, "assessment_builder.xml")),
		`nodeset="/assessment/grade_subjects/grade" required="true()" type="int"`, `nodeset="/assessment/grade_subjects/grade" required="true()" type="string"`, 1)
	_, err = f.catalog.Register(context.Background(), []byte(badBuilder), forms.AssessmentBuilder, "")
	if err == nil || !strings.Contains(err.Error(), "/assessment/grade_subjects/grade is string, want [int]") {
		t.Errorf("builder with a text grade: %v", err)
	}
	if _, err := f.catalog.Register(context.Background(), []byte("<not-a-form/>"), forms.DataCollection, ""); fault.KindOf(err) != fault.Invalid {
		t.Errorf("not an XForm: %v", err)
	}
}

func TestSubmissionBecomesTypedResponse(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	res, err := f.pipeline.Receive(context.Background(), forms.Input{XML: read(t, "household_submission.xml"), Source: "action"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != forms.StatusAccepted || res.ResponseID == nil || len(res.Flags) != 0 {
		t.Fatalf("result %+v", res)
	}
	// start end deviceid consent survey_date, name phone, 5 location, income
	// savings, 2 income sources, 5 home, household_size, 3 members × 4; the
	// empty remarks and meta are not answers.
	if n := f.count(`SELECT count(*) FROM answer WHERE response_id = $1`, *res.ResponseID); n != 5+2+5+2+2+5+1+12 {
		t.Errorf("%d answer rows", n)
	}
	var savings float64
	if err := f.pool.QueryRow(context.Background(), `SELECT a.value_number FROM answer a JOIN form_question q ON q.id = a.question_id
		WHERE q.name = 'monthly_savings'`).Scan(&savings); err != nil || savings != 2500.5 {
		t.Errorf("savings %v %v", savings, err)
	}
	if n := f.count(`SELECT count(*) FROM answer a JOIN form_choice c ON c.id = a.choice_id JOIN form_question q ON q.id = a.question_id
		WHERE q.name = 'member_gender'`); n != 3 {
		t.Errorf("%d member genders linked to their choice rows, want 3", n)
	}
	var idx []int32
	if err := f.pool.QueryRow(context.Background(), `SELECT a.repeat_index FROM answer a JOIN form_question q ON q.id = a.question_id
		WHERE q.name = 'member_age' AND a.value_text = '11'`).Scan(&idx); err != nil || len(idx) != 1 || idx[0] != 3 {
		t.Errorf("third member's repeat index %v %v", idx, err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'accepted' AND instance_id = $1`, firstInstance); n != 1 {
		t.Errorf("submission not accepted")
	}
}

func TestSameXMLTwiceIsOneSubmissionDifferentXMLIsAConflict(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([]*forms.Result, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"})
			if err != nil {
				t.Errorf("copy %d: %v", i, err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r == nil || r.ResponseID == nil || *r.ResponseID != *results[0].ResponseID {
			t.Fatalf("copies answered differently: %+v", results)
		}
	}
	if n := f.count(`SELECT count(*) FROM response`); n != 1 {
		t.Errorf("%d responses from three copies, want 1", n)
	}
	_, err := f.pipeline.Receive(ctx, forms.Input{XML: household(t, "<rooms>3</rooms>", "<rooms>4</rooms>"), Source: "openrosa"})
	if fault.As(err).Code != "DUPLICATE_INSTANCE" || fault.KindOf(err) != fault.Conflict {
		t.Errorf("different XML with the same instanceID: %v, want DUPLICATE_INSTANCE", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission`); n != 4 {
		t.Errorf("%d raw submissions stored, want all 4 (none lost)", n)
	}
}

func TestEditReplacesTheResponseAtomically(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	first, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"})
	if err != nil {
		t.Fatal(err)
	}
	edit := household(t, "<instanceID>"+firstInstance+"</instanceID>",
		"<instanceID>uuid:aaaaaaaa-0000-4000-8000-000000000002</instanceID><deprecatedID>"+firstInstance+"</deprecatedID>",
		"<rooms>3</rooms>", "<rooms>4</rooms>")
	second, err := f.pipeline.Receive(ctx, forms.Input{XML: edit, Source: "openrosa"})
	if err != nil {
		t.Fatal(err)
	}
	if *second.ResponseID != *first.ResponseID {
		t.Errorf("edit made a new response %s, want %s replaced", *second.ResponseID, *first.ResponseID)
	}
	var rooms string
	_ = f.pool.QueryRow(ctx, `SELECT a.value_text FROM answer a JOIN form_question q ON q.id = a.question_id WHERE q.name = 'rooms'`).Scan(&rooms)
	if rooms != "4" || f.count(`SELECT count(*) FROM answer a JOIN form_question q ON q.id = a.question_id WHERE q.name = 'rooms'`) != 1 {
		t.Errorf("rooms %q: the old answers were not replaced", rooms)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE instance_id = $1 AND status = 'superseded'`, firstInstance); n != 1 {
		t.Error("the earlier version is not marked superseded")
	}
}

func TestRulesFlagResponsesAndNotifyTheCollector(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	if _, err := f.rules.SaveRule(ctx, f.catalog, "household_survey", "savings", "monthly_savings <= monthly_income",
		"मासिक बचत मासिक आय से अधिक है", "admin-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rules.SaveRule(ctx, f.catalog, "household_survey", "ages", "all(member, .member_age <= 120)",
		"किसी सदस्य की आयु 120 से अधिक है", "admin-1"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ expr, want string }{
		{"monthly_savings <= salary", "unknown name salary"},
		{"monthly_income > ", "unexpected token"},
		{"monthly_income", "expected bool"},
	} {
		_, err := f.rules.SaveRule(ctx, f.catalog, "household_survey", "bad", bad.expr, "x", "")
		if fault.As(err).Field != "expression" || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("rule %q: %v, want a refusal on expression mentioning %q", bad.expr, err, bad.want)
		}
	}
	collectors := forms.NewCollectors(f.pool)
	col, _, err := collectors.Create(ctx, "रमेश (enumerator)", "98160 55555", "admin-1")
	if err != nil {
		t.Fatal(err)
	}
	// 2500.5 ≤ 18000 but 2,500.5 > 900: numbers compare as numbers ("2500.50" > "900" as strings is false).
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: household(t, "<monthly_income>18000</monthly_income>",
		"<monthly_income>900</monthly_income>"), Source: "openrosa", CollectorID: &col.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Flags) != 1 || res.Flags[0] != "मासिक बचत मासिक आय से अधिक है" {
		t.Fatalf("flags %v", res.Flags)
	}
	if n := f.count(`SELECT count(*) FROM response WHERE flagged`); n != 1 {
		t.Error("response not flagged")
	}
	var phones []string
	var vars map[string]string
	if err := f.pool.QueryRow(ctx, `SELECT phones, variables FROM sms_request WHERE type = 'RULE_FLAG' AND source = 'forms'`).
		Scan(&phones, &vars); err != nil {
		t.Fatalf("no RULE_FLAG SMS queued for the collector: %v", err)
	}
	if len(phones) != 1 || phones[0] != "+919816055555" || vars["message"] != "मासिक बचत मासिक आय से अधिक है" || vars["reference"] != "सुनीता ठाकुर - Matiana" {
		t.Errorf("SMS to %v with %v", phones, vars)
	}
	// Replacing a rule by name.
	if _, err := f.rules.SaveRule(ctx, f.catalog, "household_survey", "savings", "monthly_savings < monthly_income * 2", "changed", ""); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM form_rule WHERE form_id = 'household_survey'`); n != 2 {
		t.Errorf("%d rules after replacing one, want 2", n)
	}
}

func TestUnknownFormIsKeptAndProcessedOnceRegistered(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	_, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"})
	if fault.As(err).Code != "UNKNOWN_FORM" || fault.KindOf(err) != fault.NotFound {
		t.Fatalf("unknown form: %v", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'rejected' AND xml LIKE '%सुनीता%'`); n != 1 {
		t.Fatal("the raw XML was not kept")
	}
	if r := f.register("household_survey.xml", forms.DataCollection); r.Waiting != 1 {
		t.Errorf("registration reports %d waiting submissions, want 1", r.Waiting)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'received' AND errors IS NULL`); n != 1 {
		t.Fatal("registering the form did not put the waiting submission back for processing")
	}
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"})
	if err != nil || res.Status != forms.StatusAccepted || !res.Duplicate {
		t.Fatalf("resent after registration: %+v %v, want the kept submission accepted", res, err)
	}
	if n := f.count(`SELECT count(*) FROM response`); n != 1 {
		t.Errorf("%d responses", n)
	}
}

func TestBadValuesRejectTheSubmissionWithEveryReason(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	res, err := f.pipeline.Receive(context.Background(), forms.Input{XML: household(t,
		"<monthly_income>18000</monthly_income>", "<monthly_income>lots</monthly_income>",
		"<member_age>38</member_age>", "<member_age>-</member_age>"), Source: "action"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != forms.StatusRejected || len(res.Errors) != 2 || res.ResponseID != nil {
		t.Fatalf("result %+v", res)
	}
	var stored []map[string]string
	var raw []byte
	if err := f.pool.QueryRow(context.Background(), `SELECT errors FROM form_submission WHERE id = $1`, res.SubmissionID).Scan(&raw); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(raw, &stored)
	if len(stored) != 2 || stored[0]["path"] != "/data/economy/monthly_income" || stored[1]["path"] != "/data/member[1]/member_age" {
		t.Errorf("stored errors %v", stored)
	}
	if n := f.count(`SELECT count(*) FROM response`); n != 0 {
		t.Error("a rejected submission created a response")
	}
}

func TestHostileSubmissionsAreRefusedButKept(t *testing.T) {
	t.Parallel()
	f := setup(t)
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><data id="household_survey"><a>&lol;</a></data>`
	for _, doc := range []string{laughs, `not xml at all`, `<data><meta><instanceID>x</instanceID></meta></data>`} {
		_, err := f.pipeline.Receive(context.Background(), forms.Input{XML: []byte(doc), Source: "action"})
		if fault.As(err).Code != "INVALID_SUBMISSION" {
			t.Errorf("%.30q: %v", doc, err)
		}
	}
	f.register("household_survey.xml", forms.DataCollection)
	wrongRoot := strings.NewReplacer("<data ", "<survey ", "</data>", "</survey>").Replace(string(read(t, "household_submission.xml")))
	_, err := f.pipeline.Receive(context.Background(), forms.Input{XML: []byte(wrongRoot), Source: "action"})
	if fault.As(err).Code != "INVALID_SUBMISSION" || !strings.Contains(err.Error(), "root element <survey> does not match <data>") {
		t.Errorf("wrong root: %v", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'rejected'`); n != 4 {
		t.Errorf("%d kept as rejected, want 4", n)
	}
	if _, err := f.pipeline.Receive(context.Background(), forms.Input{XML: []byte("\xff\xfe<data/>"), Source: "action"}); fault.KindOf(err) != fault.Invalid {
		t.Errorf("not UTF-8: %v", err)
	}
}

// builderReady registers the assessment builder and its academic year.
func (f *fixture) builderReady() {
	f.t.Helper()
	if _, err := f.pool.Exec(context.Background(), `INSERT INTO academic_year (id, starts_on, ends_on, is_current)
		VALUES ('2026-27', '2026-04-01', '2027-03-31', true)`); err != nil {
		f.t.Fatal(err)
	}
	f.register("assessment_builder.xml", forms.AssessmentBuilder)
}

func builderXML(t testing.TB, replace ...string) []byte {
	return []byte(strings.NewReplacer(replace...).Replace(string(read(t, "assessment_submission.xml"))))
}

func TestAssessmentBuilderCreatesTheAssessment(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.builderReady()
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
	f.builderReady()
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
		if !forms.Supported(kind[0], kind[1], kind[2]) {
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
	f.builderReady()
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

func TestCollectorTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	c := forms.NewCollectors(f.pool)
	col, token, err := c.Create(ctx, "सीमा", "+91 94180 12345", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || col.Phone != "+919418012345" {
		t.Errorf("token %q phone %q", token, col.Phone)
	}
	if n := f.count(`SELECT count(*) FROM collector WHERE token_hint = $1 AND position($2 in encode(token_hash, 'escape')) = 0`, token[:6], token); n != 1 {
		t.Error("token stored in clear")
	}
	if got, err := c.Authenticate(ctx, token); err != nil || got.ID != col.ID {
		t.Errorf("authenticate: %v", err)
	}
	if _, err := c.Authenticate(ctx, token[:42]+"x"); fault.KindOf(err) != fault.Unauthorized {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := c.Revoke(ctx, col.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, token); fault.KindOf(err) != fault.Forbidden {
		t.Errorf("revoked token: %v", err)
	}
	if _, _, err := c.Create(ctx, "x", "0177-2658123", ""); fault.As(err).Field != "phone" {
		t.Errorf("landline: %v", err)
	}

}

// TestCrossQuestionSearchUsesIndexes fills 60,000 responses (180,000
// answers) and checks the plan of search_answers: both answer lookups go
// through indexes, never a scan of the answer table, so the search stays
// fast at millions of answers. The plan is logged (go test -v) and quoted
// in the README.
func TestCrossQuestionSearchUsesIndexes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `
		INSERT INTO form_submission (id, xml, instance_id, form_id, form_version, status)
		SELECT gen_random_uuid(), '<data/>', 'uuid:bulk-' || g, 'household_survey', '2026111501', 'accepted' FROM generate_series(1, 60000) g;
		INSERT INTO response (form_id, form_version, submission_id, instance_id)
		SELECT 'household_survey', '2026111501', id, instance_id FROM form_submission;
		INSERT INTO answer (response_id, question_id, value_text)
		SELECT r.id, q.id, CASE q.name
		         WHEN 'city' THEN (ARRAY['Shimla', 'Solan', 'Mandi', 'Kullu', 'Dharamshala', 'Hamirpur'])[1 + (abs(hashtext(r.id::text)) % 6)]
		         WHEN 'local_word_for_water' THEN (ARRAY['पाणी', 'पानी', 'जल', 'पाणि'])[1 + (abs(hashtext(r.instance_id)) % 4)]
		         ELSE (abs(hashtext(r.id::text)) % 100)::text END
		FROM response r JOIN form_question q ON q.name IN ('city', 'local_word_for_water', 'rooms');
		ANALYZE answer; ANALYZE form_question; ANALYZE response;`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM search_answers('household_survey', 'local_word_for_water', 'city', 'Shimla')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 5000 || n > 15000 {
		t.Errorf("%d answers from Shimla, want about a sixth of 60,000", n)
	}
	rows, err := f.pool.Query(ctx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
		SELECT * FROM search_answers('household_survey', 'local_word_for_water', 'city', 'Shimla')`)
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		_ = rows.Scan(&line)
		plan = append(plan, line)
	}
	text := strings.Join(plan, "\n")
	t.Logf("plan:\n%s", text)
	if strings.Contains(text, "Seq Scan on answer") {
		t.Errorf("the search scans the whole answer table")
	}
	for _, idx := range []string{"answer_question_value", "answer_pkey"} {
		if !strings.Contains(text, idx) {
			t.Errorf("plan does not use %s", idx)
		}
	}
}

func TestReceiptIsBuiltFromTheResponsesOwnAnswers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `INSERT INTO form_receipt (form_id, phone_field, name_field, summary_fields)
		VALUES ('household_survey', 'phone', 'name', '{household_size,monthly_income,has_toilet}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"}); err != nil {
		t.Fatal(err)
	}
	var phones []string
	var vars map[string]string
	if err := f.pool.QueryRow(ctx, `SELECT phones, variables FROM sms_request WHERE type = 'RECEIPT'`).Scan(&phones, &vars); err != nil {
		t.Fatalf("no receipt queued: %v", err)
	}
	if len(phones) != 1 || phones[0] != "+919816012345" || vars["name"] != "सुनीता ठाकुर" || vars["form_title"] != "Household Survey 2026" ||
		vars["summary"] != "सदस्यों की संख्या: 3, परिवार की मासिक आय (₹): 18000, क्या घर में शौचालय है?: हाँ" || vars["reference"] != "सुनीता ठाकुर - Matiana" {
		t.Errorf("receipt to %v with %v", phones, vars)
	}
	// An edit does not send a second receipt.
	edit := household(t, "<instanceID>"+firstInstance+"</instanceID>",
		"<instanceID>uuid:edit-1</instanceID><deprecatedID>"+firstInstance+"</deprecatedID>")
	if _, err := f.pipeline.Receive(ctx, forms.Input{XML: edit, Source: "openrosa"}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM sms_request WHERE type = 'RECEIPT'`); n != 1 {
		t.Errorf("%d receipts after an edit, want 1", n)
	}
}
