package assessment_test

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/sms"
)

// expand runs the SMS expansion of request as River would, with an
// insert-only client for the send jobs it queues.
func (f *fixture) expand(request uuid.UUID) error {
	return f.expandWith(request, prometheus.NewRegistry())
}

// expandWith is expand with the SMS metrics registered with reg.
func (f *fixture) expandWith(request uuid.UUID, reg *prometheus.Registry) error {
	f.t.Helper()
	client, err := queue.New(f.pool, nil, queue.Config{})
	if err != nil {
		f.t.Fatal(err)
	}
	w := &sms.ExpandWorker{Pool: f.pool, Metrics: sms.NewMetrics(reg)}
	return w.Work(rivertest.WorkContext(context.Background(), client),
		&river.Job[sms.ExpandArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 25}, Args: sms.ExpandArgs{RequestID: request}})
}

// results is an open assessment whose SMS template is STUDENT_RESULT, with
// its school and components.
type results struct {
	*fixture
	aid, school, theory, practical uuid.UUID
	withheld                       map[string]float64 // shala_sms_results_withheld_total by reason, over every announce
}

func setupResults(t *testing.T) *results {
	f := setup(t)
	aid, school := f.open()
	f.must(`UPDATE assessment SET sms_template = 'STUDENT_RESULT' WHERE id = $1`, aid)
	return &results{fixture: f, aid: aid, school: school, withheld: map[string]float64{},
		theory:    f.id(`SELECT id FROM assessment_component WHERE assessment_id = $1 AND component_type = 'THEORY'`, aid),
		practical: f.id(`SELECT id FROM assessment_component WHERE assessment_id = $1 AND component_type = 'PRACTICAL'`, aid)}
}

// result writes a student's marks (nil: absent) as the school does.
func (r *results) result(student uuid.UUID, subject string, component uuid.UUID, marks any) {
	r.t.Helper()
	r.must(`INSERT INTO assessment_result (assessment_id, school_id, student_id, subject, component_id, present, marks)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, r.aid, r.school, student, subject, component, marks != nil, marks)
}

// announce announces class 6-section's results, expands the request and
// returns it with its messages' bodies by phone.
func (r *results) announce(section string) (request uuid.UUID, bodies map[string]string) {
	r.t.Helper()
	ctx := context.Background()
	var a assessment.Announcement
	if err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) (err error) {
		a, err = assessment.Announce(ctx, tx, assessment.Class{AssessmentID: r.aid, SchoolID: r.school, Grade: 6, Section: section})
		return err
	}); err != nil || a.Queued == nil {
		r.t.Fatalf("announce 6-%s: %+v %v", section, a, err)
	}
	reg := prometheus.NewRegistry()
	if err := r.expandWith(*a.Queued, reg); err != nil {
		r.t.Fatalf("expand 6-%s: %v", section, err)
	}
	families, err := reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range families {
		if mf.GetName() == "shala_sms_results_withheld_total" {
			for _, m := range mf.GetMetric() {
				r.withheld[m.GetLabel()[0].GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	bodies = map[string]string{}
	var phone, body string
	rows, _ := r.pool.Query(ctx, `SELECT phone, body FROM sms_message WHERE request_id = $1`, *a.Queued)
	if _, err := pgx.ForEachRow(rows, []any{&phone, &body}, func() error { bodies[phone] = body; return nil }); err != nil {
		r.t.Fatal(err)
	}
	return *a.Queued, bodies
}

// A class's result SMS with the STUDENT_RESULT template gives each parent
// their own child's result, read from final classes' results when the
// messages are rendered: siblings sharing a phone get both; strangers on one
// number get neither; a child with nothing recorded and a child absent
// throughout are said so; a child with marks that may still change, or a
// subject missing, is told to ask the school.
func TestResultSMSGivesEachParentTheirChildsResult(t *testing.T) {
	t.Parallel()
	f := setupResults(t)
	ctx := context.Background()
	aid, school, theory, practical, result := f.aid, f.school, f.theory, f.practical, f.result
	student := func(name, phone string, father ...string) uuid.UUID {
		return f.id(`INSERT INTO student (school_id, name, gender, grade, section, guardian_phone, father_name) VALUES ($1, $2, 'FEMALE', 6, 'A', $3, $4) RETURNING id`,
			school, name, phone, append(father, "")[0])
	}
	// रवि's marks were written in 6-B, which is not final; he has moved to
	// 6-A since. 6-A's results must not carry them. कमला's were written in
	// 6-C, final before she moved: they are hers to be sent.
	ravi, kamla := student("रवि", "9816077777"), student("कमला", "9816066666")
	f.must(`UPDATE student SET section = 'B' WHERE id = $1`, ravi)
	f.must(`UPDATE student SET section = 'C' WHERE id = $1`, kamla)
	aarav, priya := student("आरव", "9816012345", "राजेश कुमार"), student("प्रिया", "+91 98160 12345", "राजेश कुमार") // siblings: one phone, written two ways
	// Two children of different fathers on one number (a teacher's, a
	// shop's): neither's result goes to it.
	mohan, sita := student("मोहन", "9816088888", "हरि"), student("सीता", "9816088888", "श्याम")
	student("गीता", "9816054321") // nothing recorded
	// A number that is also a child's of another father in 7-A: a shared
	// number, so लता's result does not go to it. नीरज's brother in 7-A
	// does not stop his.
	lata, neeraj := student("लता", "9816044444", "गोपाल"), student("नीरज", "9816033333", "सुरेश")
	f.must(`INSERT INTO student (school_id, name, gender, grade, section, guardian_phone, father_name) VALUES
		($1, 'पूजा', 'FEMALE', 7, 'A', '+91-98160-44444', 'किशन'), ($1, 'पंकज', 'MALE', 7, 'A', '+91-98160-33333', 'सुरेश')`, school)
	meera := student("मीरा", "9816099999")
	anu := student("अनु", "9816055555") // Hindi never entered: 90 of 100 would read as a pass
	result(anu, "MATHEMATICS", theory, 72)
	result(anu, "MATHEMATICS", practical, 18)
	result(aarav, "MATHEMATICS", theory, 72)
	result(aarav, "MATHEMATICS", practical, 18)
	result(aarav, "HINDI", theory, 61.5)
	result(priya, "MATHEMATICS", theory, 20)
	result(priya, "HINDI", theory, nil)
	result(meera, "MATHEMATICS", theory, nil)
	result(meera, "HINDI", theory, nil)
	result(ravi, "MATHEMATICS", theory, 79)
	result(ravi, "HINDI", theory, 79)
	result(kamla, "MATHEMATICS", theory, 50)
	result(kamla, "HINDI", theory, 40)
	f.must(`INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, 'C', true)`, aid, school)
	f.must(`UPDATE student SET section = 'A' WHERE id = $1`, kamla)
	for _, id := range []uuid.UUID{lata, neeraj} {
		result(id, "MATHEMATICS", theory, 60)
		result(id, "HINDI", theory, 60)
	}
	result(mohan, "MATHEMATICS", theory, 40)
	result(sita, "MATHEMATICS", theory, 41)
	f.must(`UPDATE student SET section = 'A' WHERE id = $1`, ravi)
	f.must(`INSERT INTO assessment_class (assessment_id, school_id, grade, section, final, finalized_by) VALUES ($1, $2, 6, 'A', true, 'teacher-9')`, aid, school)

	request, bodies := f.announce("A")
	var named uuid.UUID
	if err := f.pool.QueryRow(ctx, `SELECT assessment_id FROM sms_request WHERE id = $1`, request).Scan(&named); err != nil || named != aid {
		t.Fatalf("the request names assessment %v (%v), want %v", named, err, aid)
	}
	if len(bodies) != 9 {
		t.Fatalf("got %d messages, want 9 (one per phone): %v", len(bodies), bodies)
	}
	const name = "SA-1 गणित और हिंदी 2026"
	for _, tt := range []struct {
		phone string
		want  []string // the whole body, or for siblings (in either order) its parts
	}{
		{"+919816054321", []string{"प्रिय अभिभावक, " + name + " में गीता (6-A) का परिणाम: दर्ज नहीं। - समग्र शिक्षा हि.प्र."}},
		{"+919816099999", []string{"प्रिय अभिभावक, " + name + " में मीरा (6-A) का परिणाम: अनुपस्थित। - समग्र शिक्षा हि.प्र."}},
		{"+919816088888", []string{"का परिणाम: विद्यालय से जानकारी लें। - समग्र शिक्षा हि.प्र.", "मोहन", "सीता"}},
		{"+919816077777", []string{"प्रिय अभिभावक, " + name + " में रवि (6-A) का परिणाम: विद्यालय से जानकारी लें। - समग्र शिक्षा हि.प्र."}},
		{"+919816044444", []string{"प्रिय अभिभावक, " + name + " में लता (6-A) का परिणाम: विद्यालय से जानकारी लें। - समग्र शिक्षा हि.प्र."}},
		{"+919816033333", []string{"प्रिय अभिभावक, " + name + " में नीरज (6-A) का परिणाम: 120/200 (60%) उत्तीर्ण। - समग्र शिक्षा हि.प्र."}},
		{"+919816055555", []string{"प्रिय अभिभावक, " + name + " में अनु (6-A) का परिणाम: विद्यालय से जानकारी लें। - समग्र शिक्षा हि.प्र."}},
		{"+919816066666", []string{"प्रिय अभिभावक, " + name + " में कमला (6-A) का परिणाम: 90/200 (45%) उत्तीर्ण। - समग्र शिक्षा हि.प्र."}},
		// A subject is out of the assessment's total marks, 100 (theory 80 +
		// practical 20); pass mark 33% of each. आरव: 72 + 18 and 61.5, both
		// passed; प्रिया: 20, under the pass mark, and absent in Hindi.
		// Siblings get the short forms, in the order of their names.
		{"+919816012345", []string{"का परिणाम: ", "75% उत्तीर्ण", "10% अनुत्तीर्ण"}},
	} {
		got := bodies[tt.phone]
		if len(tt.want) == 1 && got != tt.want[0] {
			t.Errorf("to %s:\n got %q\nwant %q", tt.phone, got, tt.want[0])
		}
		for _, part := range tt.want[1:] {
			if !strings.Contains(got, tt.want[0]) || !strings.Contains(got, part) {
				t.Errorf("to %s: %q, want it to hold %q and %q", tt.phone, got, tt.want[0], part)
			}
		}
	}
	// The siblings' results come in the order their names do.
	sib := bodies["+919816012345"]
	if (strings.Index(sib, "आरव") < strings.Index(sib, "प्रिया")) != (strings.Index(sib, "75%") < strings.Index(sib, "10%")) {
		t.Errorf("siblings' results out of their names' order: %q", sib)
	}
	// Each message that asks the school is counted with its reason.
	if want := map[string]float64{"household": 2, "not_final": 1, "missing_subject": 1}; !maps.Equal(f.withheld, want) {
		t.Errorf("shala_sms_results_withheld_total = %v, want %v", f.withheld, want)
	}
}

// A template with {result} needs an assessment to read results from: a
// request without one fails before anything is sent, with the reason; a
// STUDENT_RESULT request without one cannot be inserted at all.
func TestResultPlaceholderNeedsAnAssessment(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	aid, school := f.open()
	f.must(`INSERT INTO student (school_id, name, gender, grade, section, guardian_phone) VALUES ($1, 'आरव', 'MALE', 6, 'A', '9816012345')`, school)
	if err := f.exec(`INSERT INTO sms_request (school_id, type, variables) VALUES ($1, 'STUDENT_RESULT', '{"assessment": "SA-1"}')`, school); err == nil ||
		!strings.Contains(err.Error(), "sms_request_result_has_assessment") {
		t.Errorf("a STUDENT_RESULT request without its assessment: %v, want sms_request_result_has_assessment", err)
	}
	if err := f.exec(`INSERT INTO sms_request (school_id, type, variables, assessment_id, phones) VALUES ($1, 'STUDENT_RESULT', '{"assessment": "SA-1"}', $2, '{+919816012345}')`, school, aid); err == nil ||
		!strings.Contains(err.Error(), "sms_request_result_has_assessment") {
		t.Errorf("a STUDENT_RESULT request to phones: %v, want sms_request_result_has_assessment", err)
	}
	// An operator edits another template to carry {result}.
	f.must(`UPDATE sms_template SET body = body || ' {result}' WHERE type = 'EXAM_RESULT_ANNOUNCEMENT'`)
	req := f.id(`INSERT INTO sms_request (school_id, type, variables) VALUES ($1, 'EXAM_RESULT_ANNOUNCEMENT', '{"assessment": "SA-1", "results_date": "01-12-2026"}') RETURNING id`, school)
	if err := f.expand(req); err != nil {
		t.Fatalf("expand: %v", err)
	}
	var status, remarks string
	if err := f.pool.QueryRow(ctx, `SELECT status, remarks FROM sms_request WHERE id = $1`, req).Scan(&status, &remarks); err != nil {
		t.Fatal(err)
	}
	if status != "FAILED" || !strings.Contains(remarks, "assessment_id") {
		t.Errorf("request: %s %q, want FAILED naming assessment_id", status, remarks)
	}
	if n := f.count(`SELECT count(*) FROM sms_message WHERE request_id = '` + req.String() + `'`); n != 0 {
		t.Errorf("%d messages queued, want none", n)
	}
}

// Where the school's listing could not say a child's result as one class's,
// the SMS does not either: it asks the parent to ask the school.
func TestResultSMSAsksTheSchoolWhereTheListingCannotTell(t *testing.T) {
	t.Parallel()
	f := setupResults(t)
	aid, school, theory, practical, result := f.aid, f.school, f.theory, f.practical, f.result
	student := func(name, section, phone string) uuid.UUID {
		return f.id(`INSERT INTO student (school_id, name, gender, grade, section, guardian_phone) VALUES ($1, $2, 'MALE', 6, $3, $4) RETURNING id`,
			school, name, section, phone)
	}
	finalise := func(section string) {
		t.Helper()
		f.must(`INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, $3, true)`, aid, school, section)
	}
	move := func(id uuid.UUID, section string) {
		t.Helper()
		f.must(`UPDATE student SET section = $2 WHERE id = $1`, id, section)
	}
	// सोनू's maths theory was written in 6-D, which has no class row (never
	// opened, so not final); the rest in 6-A.
	sonu := student("सोनू", "D", "9816011111")
	result(sonu, "MATHEMATICS", theory, 70)
	move(sonu, "A")
	result(sonu, "MATHEMATICS", practical, 15)
	result(sonu, "HINDI", theory, 60)
	// टीना's maths theory was written in 6-F, final; the rest in 6-A: the
	// listing counts each class's part apart.
	tina := student("टीना", "F", "9816022222")
	result(tina, "MATHEMATICS", theory, 20)
	finalise("F")
	move(tina, "A")
	result(tina, "MATHEMATICS", practical, 15)
	result(tina, "HINDI", theory, 60)
	// मनु's maths was written in 6-C, final, and his Hindi in 6-A.
	manu := student("मनु", "C", "9816044444")
	result(manu, "MATHEMATICS", theory, 70)
	finalise("C")
	move(manu, "A")
	result(manu, "HINDI", theory, 60)
	finalise("A")
	// 6-G takes electives: Sanskrit or Science beside Hindi and maths. No
	// one is missing a subject but घनश्याम, whose Hindi every other
	// classmate has.
	f.must(`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 6, 'SANSKRIT'), ($1, 6, 'SCIENCE')`, aid)
	for name, elective := range map[string]string{"कमल": "SANSKRIT", "खुशी": "SCIENCE", "गौरव": "SANSKRIT"} {
		id := student(name, "G", map[string]string{"कमल": "9816055551", "खुशी": "9816055552", "गौरव": "9816055553"}[name])
		for _, subject := range []string{"MATHEMATICS", "HINDI", elective} {
			result(id, subject, theory, 50)
		}
	}
	ghanshyam := student("घनश्याम", "G", "9816055554")
	result(ghanshyam, "MATHEMATICS", theory, 50)
	result(ghanshyam, "SANSKRIT", theory, 50)
	finalise("G")
	// 6-H sent Hindi as class counts (TSP) and maths as marks: a child's
	// maths alone is not their result.
	hari := student("हरीश", "H", "9816066661")
	result(hari, "MATHEMATICS", theory, 70)
	f.must(`INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, students_cleared, students_present)
		VALUES ($1, $2, 6, 'H', 'HINDI', 20, 25)`, aid, school)
	finalise("H")
	// A pupil with a stream elsewhere in the school does not move 6-H's
	// counted subjects out of reach.
	f.must(`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 11, 'PHYSICS')`, aid)
	physics := f.id(`INSERT INTO student (school_id, name, gender, grade, section, stream, guardian_phone)
		VALUES ($1, 'वरुण', 'MALE', 11, 'A', 'SCIENCE_MEDICAL', '9816077771') RETURNING id`, school)
	result(physics, "PHYSICS", theory, 60)
	// 6-E sent class counts only (TSP): no child has a row.
	student("एकता", "E", "9816033333")
	finalise("E")

	bodies := map[string]string{}
	for _, section := range []string{"A", "E", "G", "H"} {
		_, in := f.announce(section)
		maps.Copy(bodies, in)
	}
	const ask = "विद्यालय से जानकारी लें"
	for phone, want := range map[string][2]string{
		"+919816011111": {"सोनू (6-A)", ask}, "+919816022222": {"टीना (6-A)", ask}, "+919816044444": {"मनु (6-A)", ask},
		"+919816033333": {"एकता (6-E)", ask},
		"+919816055551": {"कमल (6-G)", "150/300 (50%) उत्तीर्ण"}, "+919816055552": {"खुशी (6-G)", "150/300 (50%) उत्तीर्ण"},
		"+919816055553": {"गौरव (6-G)", "150/300 (50%) उत्तीर्ण"}, "+919816055554": {"घनश्याम (6-G)", ask},
		"+919816066661": {"हरीश (6-H)", ask},
	} {
		body := "प्रिय अभिभावक, SA-1 गणित और हिंदी 2026 में " + want[0] + " का परिणाम: " + want[1] + "। - समग्र शिक्षा हि.प्र."
		if got := bodies[phone]; got != body {
			t.Errorf("to %s:\n got %q\nwant %q", phone, got, body)
		}
	}
	if want := map[string]float64{"classes": 3, "counts_only": 1, "missing_subject": 2}; !maps.Equal(f.withheld, want) {
		t.Errorf("shala_sms_results_withheld_total = %v, want %v", f.withheld, want)
	}
}

// How many subjects a child should have is what most of their classmates
// have: the lower middle of an even count, so half a class taking an
// optional subject does not make the other half short; the grade's sections
// together for a class of fewer than three.
func TestResultSMSCountsSubjectsAsMostClassmatesHave(t *testing.T) {
	t.Parallel()
	f := setupResults(t)
	f.must(`INSERT INTO assessment_subject (assessment_id, grade, subject) VALUES ($1, 6, 'SANSKRIT')`, f.aid)
	pupil := func(name, section, phone string, subjects ...string) {
		t.Helper()
		id := f.id(`INSERT INTO student (school_id, name, gender, grade, section, guardian_phone) VALUES ($1, $2, 'FEMALE', 6, $3, $4) RETURNING id`,
			f.school, name, section, phone)
		for _, subject := range subjects {
			f.result(id, subject, f.theory, 50)
		}
	}
	pupil("अमिता", "B", "9816010001", "MATHEMATICS", "HINDI")
	pupil("बबीता", "B", "9816010002", "MATHEMATICS", "HINDI")
	pupil("चंदा", "B", "9816010003", "MATHEMATICS", "HINDI", "SANSKRIT")
	pupil("दीक्षा", "B", "9816010004", "MATHEMATICS", "HINDI", "SANSKRIT")
	pupil("ईशा", "C", "9816010005", "MATHEMATICS") // alone in 6-C: counted with 6-B
	for _, section := range []string{"B", "C"} {
		f.must(`INSERT INTO assessment_class (assessment_id, school_id, grade, section, final) VALUES ($1, $2, 6, $3, true)`, f.aid, f.school, section)
	}
	bodies := map[string]string{}
	for _, section := range []string{"B", "C"} {
		_, in := f.announce(section)
		maps.Copy(bodies, in)
	}
	for phone, want := range map[string]string{
		"+919816010001": "अमिता (6-B) का परिणाम: 100/200 (50%) उत्तीर्ण", "+919816010002": "बबीता (6-B) का परिणाम: 100/200 (50%) उत्तीर्ण",
		"+919816010003": "चंदा (6-B) का परिणाम: 150/300 (50%) उत्तीर्ण", "+919816010004": "दीक्षा (6-B) का परिणाम: 150/300 (50%) उत्तीर्ण",
		"+919816010005": "ईशा (6-C) का परिणाम: विद्यालय से जानकारी लें",
	} {
		if got := bodies[phone]; !strings.Contains(got, want) {
			t.Errorf("to %s: %q, want it to hold %q", phone, got, want)
		}
	}
}
