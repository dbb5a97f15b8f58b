package forms_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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

type fixture struct {
	t        *testing.T
	pool     *pgxpool.Pool
	catalog  *forms.Catalog
	rules    *forms.Rules
	pipeline *forms.Pipeline
}

// freshPipeline is a pipeline on pool as a new process has it: nothing
// cached, definitions read from the table; nothing logged.
func freshPipeline(pool *pgxpool.Pool) *forms.Pipeline {
	return &forms.Pipeline{Pool: pool, Catalog: forms.NewCatalog(pool), Rules: forms.NewRules(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
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
	collectors := collector.NewStore(f.pool)
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
	// The edit is dated (Sheets exports rewrite edited rows by it).
	if n := f.count(`SELECT count(*) FROM response WHERE edited_at IS NOT NULL AND edited_at > created_at`); n != 1 {
		t.Errorf("%d responses with edited_at after the edit, want 1", n)
	}
}

// A receipt is checked against the form's latest version before it is
// stored: a field the form does not have would mean receipts never sent.
func TestSaveReceiptChecksEveryField(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	ok := forms.Receipt{FormID: "household_survey", PhoneField: " phone ", NameField: "name",
		SummaryFields: []string{"household_size", "monthly_income", "has_toilet"}}
	eleven := []string{"consent", "survey_date", "name", "district", "block", "village", "city", "monthly_income", "monthly_savings", "rooms", "remarks"}
	for _, tt := range []struct {
		name  string
		edit  func(*forms.Receipt)
		field string // the argument the error names
	}{
		{"a phone field the form does not have", func(r *forms.Receipt) { r.PhoneField = "mobile" }, "phoneField"},
		{"a phone answered as a date", func(r *forms.Receipt) { r.PhoneField = "survey_date" }, "phoneField"},
		{"a phone answered as an integer (nine digits at most in Collect)", func(r *forms.Receipt) { r.PhoneField = "household_size" }, "phoneField"},
		{"a name inside a repeat", func(r *forms.Receipt) { r.NameField = "member_name" }, "nameField"},
		{"a summary field the form does not have", func(r *forms.Receipt) { r.SummaryFields = []string{"rooms", "income"} }, "summaryFields"},
		{"a summary field named twice", func(r *forms.Receipt) { r.SummaryFields = []string{"rooms", "rooms"} }, "summaryFields"},
		{"eleven summary fields", func(r *forms.Receipt) { r.SummaryFields = eleven }, "summaryFields"},
		{"a language the form does not have", func(r *forms.Receipt) { r.Language = "Tamil (ta)" }, "language"},
		{"an unknown form", func(r *forms.Receipt) { r.FormID = "no_such_form" }, ""},
	} {
		in := ok
		tt.edit(&in)
		_, err := f.rules.SaveReceipt(ctx, f.catalog, in)
		if e := fault.As(err); err == nil || (tt.field != "" && (e.Kind != fault.Invalid || !strings.HasPrefix(e.Message, tt.field+":"))) {
			t.Errorf("%s: got %v, want refused naming %s", tt.name, err, tt.field)
		}
	}
	if _, err := f.rules.SaveReceipt(ctx, f.catalog, forms.Receipt{FormID: "household_survey", PhoneField: "phone", SummaryFields: eleven[:10]}); err != nil {
		t.Errorf("ten summary fields: %v, want saved", err)
	}
	if _, err := f.pool.Exec(ctx, `DELETE FROM form_receipt`); err != nil {
		t.Fatal(err)
	}

	got, err := f.rules.SaveReceipt(ctx, f.catalog, ok)
	if err != nil {
		t.Fatal(err)
	}
	if got.Language != "English" || got.PhoneField != "phone" || !*got.Enabled {
		t.Errorf("saved %+v, want the form's default language (English), the phone trimmed, enabled", got)
	}
	// Switched off: a disabled receipt is stored as given (its phone
	// question may be one a new version dropped), and stays off when a
	// later save leaves enabled out.
	off := false
	if _, err := f.rules.SaveReceipt(ctx, f.catalog, forms.Receipt{FormID: "household_survey", PhoneField: "mobile", Enabled: &off}); err != nil {
		t.Fatalf("disable with a dropped phone question: %v", err)
	}
	ok.Language = "Hindi (hi)"
	if got, err := f.rules.SaveReceipt(ctx, f.catalog, ok); err != nil || *got.Enabled {
		t.Fatalf("save leaving enabled out: %+v, %v; want it still disabled", got, err)
	}
	if _, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM sms_request WHERE type = 'RECEIPT'`); n != 0 {
		t.Errorf("%d receipts from a disabled receipt, want none", n)
	}
	// On again: the next response uses it.
	on := true
	ok.Enabled = &on
	if _, err := f.rules.SaveReceipt(ctx, f.catalog, ok); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pipeline.Receive(ctx, forms.Input{XML: withInstance(t, "uuid:receipt-on"), Source: "openrosa"}); err != nil {
		t.Fatal(err)
	}
	var vars map[string]string
	if err := f.pool.QueryRow(ctx, `SELECT variables FROM sms_request WHERE type = 'RECEIPT'`).Scan(&vars); err != nil {
		t.Fatalf("no receipt queued: %v", err)
	}
	if vars["summary"] != "सदस्यों की संख्या: 3, परिवार की मासिक आय (₹): 18000, क्या घर में शौचालय है?: हाँ" {
		t.Errorf("summary %q, want the Hindi labels of the saved receipt", vars["summary"])
	}
}

// A form without translations has its labels as written: its receipt's
// language is "default", and no other.
func TestSaveReceiptOfAnUntranslatedForm(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	def := `<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"><h:head><h:title>Plain</h:title>
		<model><instance><data id="plain" version="1"><phone/><meta><instanceID/></meta></data></instance>
		<bind nodeset="/data/phone" type="string"/></model></h:head>
		<h:body><input ref="/data/phone"><label>Mobile</label></input></h:body></h:html>`
	if _, err := f.catalog.Register(ctx, []byte(def), forms.DataCollection, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rules.SaveReceipt(ctx, f.catalog, forms.Receipt{FormID: "plain", PhoneField: "phone", Language: "Tamil (ta)"}); fault.KindOf(err) != fault.Invalid {
		t.Errorf("a language for an untranslated form: %v, want refused", err)
	}
	got, err := f.rules.SaveReceipt(ctx, f.catalog, forms.Receipt{FormID: "plain", PhoneField: "phone"})
	if err != nil || got.Language != "default" {
		t.Errorf("saved %+v, %v; want language default", got, err)
	}
}

// Rules are read once per SettingsTTL on the fast path: one saved through
// this process applies to the next submission, one saved through another
// replica within SettingsTTL.
func TestRulesSavedElsewhereApplyWithinTheirTTL(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	forms.SetRulesClock(f.rules, func() time.Time { return now })
	submit := func(instance string) []string {
		t.Helper()
		res, err := f.pipeline.Receive(ctx, forms.Input{XML: withInstance(t, instance), Source: "openrosa"})
		if err != nil {
			t.Fatal(err)
		}
		return res.Flags
	}
	if flags := submit("uuid:ttl-1"); len(flags) != 0 {
		t.Fatalf("flags %v before any rule", flags)
	}
	elsewhere := forms.NewRules()
	if _, err := elsewhere.SaveRule(ctx, f.catalog, "household_survey", "few rooms", "rooms > 5", "कम कमरे", "admin"); err != nil {
		t.Fatal(err)
	}
	if flags := submit("uuid:ttl-2"); len(flags) != 0 {
		t.Errorf("flags %v within SettingsTTL of a rule saved elsewhere, want the cached rules", flags)
	}
	now = now.Add(forms.SettingsTTL)
	if flags := submit("uuid:ttl-3"); len(flags) != 1 {
		t.Errorf("flags %v SettingsTTL after, want the new rule's", flags)
	}
	if _, err := f.rules.SaveRule(ctx, f.catalog, "household_survey", "few rooms", "rooms > 1", "कम कमरे", "admin"); err != nil {
		t.Fatal(err)
	}
	if flags := submit("uuid:ttl-4"); len(flags) != 0 {
		t.Errorf("flags %v right after the rule was saved here, want it applied at once", flags)
	}
}

// A submission's XML is parsed once, whichever way it takes: the general
// path (a form not registered yet, the same XML again) used to parse it a
// second time after the fast path declined it.
func TestReceiveParsesTheXMLOnce(t *testing.T) {
	t.Parallel()
	f := setup(t)
	var parses atomic.Int32
	forms.SetOnParse(f.pipeline, func() { parses.Add(1) })
	receive := func(t *testing.T, xml []byte) {
		t.Helper()
		parses.Store(0)
		if _, err := f.pipeline.Receive(context.Background(), forms.Input{XML: xml, Source: "action"}); fault.KindOf(err) == fault.Internal && err != nil {
			t.Fatal(err)
		}
		if got, want := parses.Load(), int32(1); got != want {
			t.Errorf("parsed %d times, want %d", got, want)
		}
	}
	t.Run("form not registered", func(t *testing.T) { receive(t, household(t)) })
	f.register("household_survey.xml", forms.DataCollection)
	t.Run("fast path", func(t *testing.T) {
		receive(t, household(t, firstInstance, "uuid:0d5e0c8a-6f0e-4d61-9d8e-51f1bf0a0a01"))
	})
	t.Run("the same XML again", func(t *testing.T) {
		receive(t, household(t, firstInstance, "uuid:0d5e0c8a-6f0e-4d61-9d8e-51f1bf0a0a01"))
	})
	t.Run("not XML", func(t *testing.T) { receive(t, []byte("not xml")) })
}
