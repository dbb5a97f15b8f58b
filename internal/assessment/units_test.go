package assessment_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
)

// openKind creates, from the builder, an assessment of the given unit type
// (grades 6: HINDI MATHEMATICS, 7: MATHEMATICS SCIENCE) open to a new
// school of Shimla, session W, until tomorrow.
func (f *fixture) openKind(unitType string) (assessmentID, school uuid.UUID) {
	f.t.Helper()
	ctx := context.Background()
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: builderXML(f.t, "<unit_type>NONE</unit_type>", "<unit_type>"+unitType+"</unit_type>"), Source: "action"})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE assessment_deadline SET due_at = now() + interval '1 day'`); err != nil {
		f.t.Fatal(err)
	}
	if err := f.pool.QueryRow(ctx, `INSERT INTO school (udise, name, district, block, session) VALUES ('02110100101', 'GSSS Kufri', 'Shimla', 'Mashobra', 'W') RETURNING id`).Scan(&school); err != nil {
		f.t.Fatal(err)
	}
	return *res.AssessmentID, school
}

// exec runs q and returns its error; the test decides what it wants.
func (f *fixture) exec(q string, args ...any) error {
	_, err := f.pool.Exec(context.Background(), q, args...)
	return err
}

func (f *fixture) must(q string, args ...any) {
	f.t.Helper()
	if err := f.exec(q, args...); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) id(q string, args ...any) uuid.UUID {
	f.t.Helper()
	var id uuid.UUID
	if err := f.pool.QueryRow(context.Background(), q, args...).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// tsp writes a TSP count of class 6-A as Hasura's insert permission for
// the school role does.
func (f *fixture) tsp(aid, school uuid.UUID, subject, unit string) error {
	return f.exec(`INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, unit, students_cleared, students_present)
		VALUES ($1, $2, 6, 'A', $3, $4, 20, 30)`, aid, school, subject, unit)
}

func wantRefused(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("got %v, want an error containing %q", err, want)
	}
}

// units reads what a school counts for class 6 and subject of aid, as the
// app does through assessment_unit.
func (f *fixture) units(aid uuid.UUID, subject string) string {
	f.t.Helper()
	var got string
	if err := f.pool.QueryRow(context.Background(), `SELECT coalesce(string_agg(unit || coalesce('/' || cut_off_marks || '/' || max_marks, ''), ' ' ORDER BY position, unit), '')
		FROM assessment_unit WHERE assessment_id = $1 AND grade = 6 AND subject = $2`, aid, subject).Scan(&got); err != nil {
		f.t.Fatal(err)
	}
	return got
}

func TestNoneCountsHaveNoUnit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	aid, school := f.openKind("NONE")
	wantRefused(t, f.tsp(aid, school, "HINDI", "LO-1"), `unit must be empty, not "LO-1"`)
	if err := f.tsp(aid, school, "HINDI", ""); err != nil {
		t.Errorf("a NONE count without a unit: %v", err)
	}
	if got := f.units(aid, "HINDI"); got != "" {
		t.Errorf("units of a NONE assessment: got %q, want none", got)
	}
}

func TestLearningObjectiveCounts(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T) (*fixture, uuid.UUID, uuid.UUID) {
		f := setup(t)
		aid, school := f.openKind("LO")
		return f, aid, school
	}
	t.Run("free names until the state defines objectives", func(t *testing.T) {
		t.Parallel()
		f, aid, school := setup(t)
		if err := f.tsp(aid, school, "HINDI", "पढ़ना-1"); err != nil {
			t.Errorf("a named count with no objectives defined: %v", err)
		}
		wantRefused(t, f.tsp(aid, school, "MATHEMATICS", ""), "counts by learning objective: unit required")
	})
	t.Run("defined objectives are the only ones", func(t *testing.T) {
		t.Parallel()
		f, aid, school := setup(t)
		f.must(`INSERT INTO learning_objective (grade, subject, code, description, position, active) VALUES
			(6, 'HINDI', 'H6-02', 'कहानी पढ़कर प्रश्नों के उत्तर देता है', 2, true),
			(6, 'HINDI', 'H6-01', 'अक्षर पहचानता है', 1, true),
			(6, 'HINDI', 'H6-03', 'withdrawn', 3, false),
			(6, 'MATHEMATICS', 'M6-01', 'adds fractions', 1, true),
			(7, 'HINDI', 'H7-01', 'class 7', 1, true)`)
		if got, want := f.units(aid, "HINDI"), "H6-01 H6-02"; got != want {
			t.Errorf("units: got %q, want %q (active, in order)", got, want)
		}
		if err := f.tsp(aid, school, "HINDI", "H6-02"); err != nil {
			t.Errorf("a defined objective: %v", err)
		}
		for _, tt := range []struct{ name, subject, unit, want string }{
			{"unknown", "HINDI", "H6-99", `"SA-1 गणित और हिंदी 2026" has no learning objective "H6-99" for class 6 HINDI: counts name one of H6-01, H6-02`},
			{"withdrawn", "HINDI", "H6-03", `no learning objective "H6-03"`},
			{"another subject's", "HINDI", "M6-01", `no learning objective "M6-01"`},
			{"another class's", "HINDI", "H7-01", `no learning objective "H7-01"`},
		} {
			wantRefused(t, f.tsp(aid, school, tt.subject, tt.unit), tt.want)
		}
		// A subject the state has not defined yet keeps free names.
		f.must(`DELETE FROM learning_objective WHERE subject = 'MATHEMATICS'`)
		if err := f.tsp(aid, school, "MATHEMATICS", "anything"); err != nil {
			t.Errorf("a subject without objectives: %v", err)
		}
		// Counts written before a withdrawal stay, and their numbers can be
		// corrected: by an update, and by Hasura's upsert (an insert whose
		// conflict makes it an update).
		if err := f.tsp(aid, school, "HINDI", "H6-01"); err != nil {
			t.Fatal(err)
		}
		f.must(`UPDATE learning_objective SET active = false WHERE code = 'H6-01'`)
		if err := f.exec(`UPDATE assessment_tsp SET students_cleared = 25 WHERE unit = 'H6-01'`); err != nil {
			t.Errorf("correcting a count of a withdrawn objective: %v", err)
		}
		if err := f.exec(`INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, unit, students_cleared, students_present)
			VALUES ($1, $2, 6, 'A', 'HINDI', 'H6-01', 21, 30)
			ON CONFLICT (assessment_id, school_id, grade, section, subject, unit) DO UPDATE SET students_cleared = EXCLUDED.students_cleared`, aid, school); err != nil {
			t.Errorf("an upsert correcting a count of a withdrawn objective: %v", err)
		}
		wantRefused(t, f.exec(`INSERT INTO assessment_tsp (assessment_id, school_id, grade, section, subject, unit, students_cleared, students_present)
			VALUES ($1, $2, 6, 'B', 'HINDI', 'H6-01', 21, 30)
			ON CONFLICT (assessment_id, school_id, grade, section, subject, unit) DO UPDATE SET students_cleared = EXCLUDED.students_cleared`, aid, school),
			`no learning objective "H6-01"`)
		// Every objective withdrawn: free names again, as before any was defined.
		f.must(`UPDATE learning_objective SET active = false WHERE subject = 'HINDI'`)
		if err := f.tsp(aid, school, "HINDI", "पढ़ना-2"); err != nil {
			t.Errorf("a subject whose objectives are all withdrawn: %v", err)
		}
	})
	t.Run("codes never change", func(t *testing.T) {
		t.Parallel()
		f, _, _ := setup(t)
		f.must(`INSERT INTO learning_objective (grade, subject, code, description) VALUES (6, 'HINDI', 'H6-01', 'अक्षर')`)
		wantRefused(t, f.exec(`UPDATE learning_objective SET code = 'H6-1'`), "the grade, subject and code of learning objective H6-01 cannot change")
		wantRefused(t, f.exec(`UPDATE learning_objective SET grade = 7`), "cannot change")
		if err := f.exec(`UPDATE learning_objective SET description = 'अक्षर पहचानता है', position = 4`); err != nil {
			t.Errorf("editing a description: %v", err)
		}
		wantRefused(t, f.exec(`INSERT INTO learning_objective (grade, subject, code, description) VALUES (6, 'HINDI', 'H6 01', 'x')`), "learning_objective_code_check")
		f.must(`INSERT INTO assessment_question (grade, subject, code, text, max_marks, cut_off_marks) VALUES (6, 'HINDI', 'Q1', 'x', 2, 1)`)
		wantRefused(t, f.exec(`UPDATE assessment_question SET code = 'Q01'`), "the grade, subject and code of assessment question Q1 cannot change")
		wantRefused(t, f.exec(`INSERT INTO learning_objective (grade, subject, code, description) VALUES (6, 'HINDI', 'H6-01', 'again')`), "learning_objective_grade_subject_code_key")
	})
}

func TestMistakesCanBeDeletedUntilUsed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	aid, school := f.openKind("LO")
	f.must(`INSERT INTO learning_objective (grade, subject, code, description) VALUES
		(6, 'HINDI', 'H6-01', 'अक्षर'), (6, 'HINDI', 'H6-02', 'शब्द'), (6, 'HINDI', 'H6-O3', 'a typo'), (6, 'HINDI', 'H6-04', 'in a bundle')`)
	if err := f.tsp(aid, school, "HINDI", "H6-01"); err != nil {
		t.Fatal(err)
	}
	bundle := f.id(`INSERT INTO unit_bundle (name, unit_type, grade, subject) VALUES ('FA-1 हिंदी', 'LO', 6, 'HINDI') RETURNING id`)
	f.must(`INSERT INTO unit_bundle_item (bundle_id, learning_objective_id) SELECT $1, id FROM learning_objective WHERE code IN ('H6-01', 'H6-04')`, bundle)
	if err := f.exec(`DELETE FROM learning_objective WHERE code = 'H6-O3'`); err != nil {
		t.Errorf("deleting an objective nothing uses: %v", err)
	}
	wantRefused(t, f.exec(`DELETE FROM learning_objective WHERE code = 'H6-02' OR code = 'H6-01'`), "is in bundle \"FA-1 हिंदी\"")
	f.must(`DELETE FROM unit_bundle_item`)
	wantRefused(t, f.exec(`DELETE FROM learning_objective WHERE code = 'H6-01'`), "schools have counted learning objective H6-01 of class 6 HINDI: withdraw it")
	f.must(`INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'HINDI', $2)`, aid, bundle)
	wantRefused(t, f.exec(`DELETE FROM unit_bundle WHERE id = $1`, bundle), `bundle "FA-1 हिंदी" is used by "SA-1 गणित और हिंदी 2026" (class 6 HINDI)`)
	// The bundle holds nothing now: the refusal says so.
	wantRefused(t, f.tsp(aid, school, "HINDI", "H6-02"), `its bundle "FA-1 हिंदी" holds no active learning objective`)
	wantRefused(t, f.tsp(aid, school, "MATHEMATICS", ""), "unit required for class 6 MATHEMATICS")
}

func TestUnitCountsNameUnits(t *testing.T) {
	t.Parallel()
	f := setup(t)
	aid, school := f.openKind("UNIT")
	f.must(`INSERT INTO learning_objective (grade, subject, code, description, is_unit, position) VALUES
		(6, 'MATHEMATICS', 'M6-U1', 'Unit 1: fractions', true, 1),
		(6, 'MATHEMATICS', 'M6-01', 'adds fractions', false, 2)`)
	if got, want := f.units(aid, "MATHEMATICS"), "M6-U1"; got != want {
		t.Errorf("units: got %q, want %q", got, want)
	}
	wantRefused(t, f.tsp(aid, school, "MATHEMATICS", "M6-01"), `has no unit "M6-01" for class 6 MATHEMATICS: counts name one of M6-U1`)
	if err := f.tsp(aid, school, "MATHEMATICS", "M6-U1"); err != nil {
		t.Errorf("a unit: %v", err)
	}
	// Objectives that are not units do not make a subject defined for units.
	f.must(`INSERT INTO learning_objective (grade, subject, code, description) VALUES (6, 'HINDI', 'H6-01', 'अक्षर')`)
	if err := f.tsp(aid, school, "HINDI", "Unit 2"); err != nil {
		t.Errorf("a subject with objectives but no units: %v", err)
	}
}

func TestQuestionBundles(t *testing.T) {
	t.Parallel()
	f := setup(t)
	aid, school := f.openKind("QUESTION")
	q1 := f.id(`INSERT INTO assessment_question (grade, subject, code, text, max_marks, cut_off_marks, position) VALUES (6, 'MATHEMATICS', 'Q1', '3/4 + 1/4 = ?', 2, 1, 1) RETURNING id`)
	f.must(`INSERT INTO assessment_question (grade, subject, code, text, max_marks, cut_off_marks, position) VALUES (6, 'MATHEMATICS', 'Q2', '1/2 × 1/2 = ?', 2, 2, 2)`)
	q3 := f.id(`INSERT INTO assessment_question (grade, subject, code, text, max_marks, cut_off_marks, position) VALUES (6, 'MATHEMATICS', 'Q3', '0.5 = ?/10', 4, 3, 3) RETURNING id`)
	lo := f.id(`INSERT INTO learning_objective (grade, subject, code, description) VALUES (6, 'MATHEMATICS', 'M6-01', 'adds fractions') RETURNING id`)
	q7 := f.id(`INSERT INTO assessment_question (grade, subject, code, text, max_marks, cut_off_marks) VALUES (7, 'MATHEMATICS', 'Q1', 'class 7', 2, 1) RETURNING id`)
	wantRefused(t, f.exec(`INSERT INTO assessment_question (grade, subject, code, text, max_marks, cut_off_marks) VALUES (6, 'MATHEMATICS', 'Q9', 'x', 2, 3)`), "assessment_question_cut_off_le_max")

	// Without a bundle: every active question of the class and subject, with its cut-off.
	if got, want := f.units(aid, "MATHEMATICS"), "Q1/1/2 Q2/2/2 Q3/3/4"; got != want {
		t.Errorf("units without a bundle: got %q, want %q", got, want)
	}
	bundle := f.id(`INSERT INTO unit_bundle (name, unit_type, grade, subject) VALUES ('SA-1 class 6 maths', 'QUESTION', 6, 'MATHEMATICS') RETURNING id`)
	f.must(`INSERT INTO unit_bundle_item (bundle_id, question_id, position) VALUES ($1, $2, 1), ($1, $3, 2)`, bundle, q3, q1)
	for _, tt := range []struct {
		name string
		q    string
		args []any
		want string
	}{
		{"an objective in a question bundle", `INSERT INTO unit_bundle_item (bundle_id, learning_objective_id) VALUES ($1, $2)`, []any{bundle, lo}, `holds questions, not learning objective M6-01`},
		{"another class's question", `INSERT INTO unit_bundle_item (bundle_id, question_id) VALUES ($1, $2)`, []any{bundle, q7}, `is for class 6 MATHEMATICS: question Q1 is for class 7 MATHEMATICS`},
		{"both kinds in one item", `INSERT INTO unit_bundle_item (bundle_id, question_id, learning_objective_id) VALUES ($1, $2, $3)`, []any{bundle, q1, lo}, "unit_bundle_item_one"},
		{"the same question twice", `INSERT INTO unit_bundle_item (bundle_id, question_id) VALUES ($1, $2)`, []any{bundle, q1}, "unit_bundle_item_bundle_id_question_id_key"},
		{"a bundle moved to another class", `UPDATE unit_bundle SET grade = 7 WHERE id = $1`, []any{bundle}, "cannot change"},
		{"a bundle moved to another subject", `UPDATE unit_bundle SET subject = 'HINDI' WHERE id = $1`, []any{bundle}, "cannot change"},
		{"a bundle of another kind", `UPDATE unit_bundle SET unit_type = 'LO' WHERE id = $1`, []any{bundle}, "cannot change"},
		{"an item changed to another class's question", `UPDATE unit_bundle_item SET question_id = $2 WHERE question_id = $1`, []any{q1, q7}, "question Q1 is for class 7 MATHEMATICS"},
		{"a bundle for another subject", `INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'HINDI', $2)`, []any{aid, bundle}, `is for class 6 MATHEMATICS, not 6 HINDI`},
	} {
		t.Run(tt.name, func(t *testing.T) { wantRefused(t, f.exec(tt.q, tt.args...), tt.want) })
	}
	f.must(`INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'MATHEMATICS', $2)`, aid, bundle)
	if got, want := f.units(aid, "MATHEMATICS"), "Q3/3/4 Q1/1/2"; got != want {
		t.Errorf("units of the bundle: got %q, want %q (the bundle's order)", got, want)
	}
	wantRefused(t, f.tsp(aid, school, "MATHEMATICS", "Q2"), `has no question "Q2" for class 6 MATHEMATICS: counts name one of Q3, Q1`)
	if err := f.tsp(aid, school, "MATHEMATICS", "Q3"); err != nil {
		t.Errorf("a question of the bundle: %v", err)
	}
	// A withdrawn question leaves the list.
	f.must(`UPDATE assessment_question SET active = false WHERE id = $1`, q1)
	if got, want := f.units(aid, "MATHEMATICS"), "Q3/3/4"; got != want {
		t.Errorf("units after withdrawing Q1: got %q, want %q", got, want)
	}
	// A bundle mapped for a subject with no questions defined still decides.
	empty := f.id(`INSERT INTO unit_bundle (name, unit_type, grade, subject) VALUES ('empty', 'QUESTION', 6, 'HINDI') RETURNING id`)
	f.must(`INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'HINDI', $2)`, aid, empty)
	wantRefused(t, f.tsp(aid, school, "HINDI", "Q1"), `its bundle "empty" holds no active question`)
	// Not for a class and subject the assessment does not have.
	science := f.id(`INSERT INTO unit_bundle (name, unit_type, grade, subject) VALUES ('science', 'QUESTION', 6, 'SCIENCE') RETURNING id`)
	wantRefused(t, f.exec(`INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'SCIENCE', $2)`, aid, science),
		`subject SCIENCE is not part of "SA-1 गणित और हिंदी 2026" for class 6`)
}

func TestBundleKindsMatch(t *testing.T) {
	t.Parallel()
	f := setup(t)
	aid, _ := f.openKind("LO")
	units := f.id(`INSERT INTO unit_bundle (name, unit_type, grade, subject) VALUES ('units', 'UNIT', 6, 'HINDI') RETURNING id`)
	plain := f.id(`INSERT INTO learning_objective (grade, subject, code, description) VALUES (6, 'HINDI', 'H6-01', 'अक्षर') RETURNING id`)
	unit := f.id(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (6, 'HINDI', 'H6-U1', 'इकाई 1', true) RETURNING id`)
	wantRefused(t, f.exec(`INSERT INTO unit_bundle_item (bundle_id, learning_objective_id) VALUES ($1, $2)`, units, plain), "learning objective H6-01 is not a unit")
	seventh := f.id(`INSERT INTO learning_objective (grade, subject, code, description, is_unit) VALUES (7, 'HINDI', 'H7-U1', 'class 7', true) RETURNING id`)
	wantRefused(t, f.exec(`INSERT INTO unit_bundle_item (bundle_id, learning_objective_id) VALUES ($1, $2)`, units, seventh),
		`bundle "units" is for class 6 HINDI: learning objective H7-U1 is for class 7 HINDI`)
	f.must(`INSERT INTO unit_bundle_item (bundle_id, learning_objective_id) VALUES ($1, $2)`, units, unit)
	wantRefused(t, f.exec(`UPDATE learning_objective SET is_unit = false WHERE id = $1`, unit), `is in the unit bundle "units"`)
	wantRefused(t, f.exec(`INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'HINDI', $2)`, aid, units),
		`counts by unit type LO: bundle "units" holds UNIT items`)
	// An LO bundle may hold units: a unit is a learning objective.
	los := f.id(`INSERT INTO unit_bundle (name, unit_type, grade, subject) VALUES ('objectives', 'LO', 6, 'HINDI') RETURNING id`)
	f.must(`INSERT INTO unit_bundle_item (bundle_id, learning_objective_id, position) VALUES ($1, $2, 2), ($1, $3, 1)`, los, plain, unit)
	f.must(`INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'HINDI', $2)`, aid, los)
	if got, want := f.units(aid, "HINDI"), "H6-U1 H6-01"; got != want {
		t.Errorf("units: got %q, want %q (the bundle's order)", got, want)
	}
	question := f.id(`INSERT INTO assessment_question (grade, subject, code, text, max_marks, cut_off_marks) VALUES (6, 'HINDI', 'Q1', 'x', 2, 1) RETURNING id`)
	wantRefused(t, f.exec(`INSERT INTO unit_bundle_item (bundle_id, question_id) VALUES ($1, $2)`, los, question), `bundle "objectives" holds LO items, not question Q1`)
}

func TestEditKeepsTheUnitTypeOfWrittenCounts(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	aid, school := f.openKind("LO")
	if err := f.tsp(aid, school, "HINDI", "H6-01"); err != nil {
		t.Fatal(err)
	}
	const original = "uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60"
	edit := func(instance string) error {
		xml := builderXML(t, "<unit_type>NONE</unit_type>", "<unit_type>UNIT</unit_type>",
			"<instanceID>"+original+"</instanceID><deprecatedID/>", "<instanceID>"+instance+"</instanceID><deprecatedID>"+original+"</deprecatedID>")
		_, err := f.pipeline.Receive(ctx, forms.Input{XML: xml, Source: "action"})
		return err
	}
	err := edit("uuid:edit-1")
	if fe := fault.As(err); fe.Code != assessment.CodeInvalid || fe.Field != "/assessment/unit_type" || !strings.Contains(fe.Message, "class counts are written by unit type LO: the unit type cannot change to UNIT") {
		t.Errorf("changing the unit type under counts: got %v (%s at %q)", err, fe.Code, fe.Field)
	}
	if n := f.count(`SELECT count(*) FROM assessment WHERE id = $1 AND unit_type = 'LO'`, aid); n != 1 {
		t.Error("the refused edit changed the unit type")
	}
	// Not by SQL either.
	wantRefused(t, f.exec(`UPDATE assessment SET unit_type = 'NONE' WHERE id = $1`, aid), "the unit type cannot change to NONE")
	// Without counts the unit type can change, and the mappings of the old
	// type go with it.
	f.must(`DELETE FROM assessment_tsp`)
	los := f.id(`INSERT INTO unit_bundle (name, unit_type, grade, subject) VALUES ('objectives', 'LO', 6, 'HINDI') RETURNING id`)
	f.must(`INSERT INTO assessment_bundle (assessment_id, grade, subject, bundle_id) VALUES ($1, 6, 'HINDI', $2)`, aid, los)
	if err := edit("uuid:edit-2"); err != nil {
		t.Errorf("changing the unit type of an assessment without counts: %v", err)
	}
	if n := f.count(`SELECT count(*) FROM assessment WHERE id = $1 AND unit_type = 'UNIT'`, aid); n != 1 {
		t.Error("the edit did not change the unit type")
	}
	if n := f.count(`SELECT count(*) FROM assessment_bundle WHERE assessment_id = $1`, aid); n != 0 {
		t.Errorf("%d bundle mappings of the old unit type left", n)
	}
	if err := f.tsp(aid, school, "HINDI", "इकाई 1"); err != nil {
		t.Errorf("a count after the change: %v", err)
	}
}

func TestQuestionsCountedOrWithdrawn(t *testing.T) {
	t.Parallel()
	f := setup(t)
	aid, school := f.openKind("QUESTION")
	f.must(`INSERT INTO assessment_question (grade, subject, code, text, max_marks, cut_off_marks) VALUES
		(6, 'HINDI', 'Q1', 'प्रश्न 1', 2, 1), (6, 'HINDI', 'Q2', 'प्रश्न 2', 2, 1), (7, 'HINDI', 'Q1', 'class 7', 2, 1)`)
	f.must(`INSERT INTO learning_objective (grade, subject, code, description) VALUES (6, 'HINDI', 'Q1', 'an objective coded like the question')`)
	if err := f.tsp(aid, school, "HINDI", "Q1"); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, f.exec(`DELETE FROM assessment_question WHERE grade = 6 AND code = 'Q1'`), "schools have counted question Q1 of class 6 HINDI")
	// Only that question is counted: the same code in another class, an
	// uncounted question and an objective coded like the counted question go.
	for _, q := range []string{
		`DELETE FROM assessment_question WHERE grade = 7 AND code = 'Q1'`,
		`DELETE FROM assessment_question WHERE code = 'Q2'`,
		`DELETE FROM learning_objective WHERE code = 'Q1'`,
	} {
		if err := f.exec(q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
	// Every question withdrawn: free names again.
	f.must(`UPDATE assessment_question SET active = false`)
	if err := f.tsp(aid, school, "HINDI", "प्रश्न 5"); err != nil {
		t.Errorf("a count when every question is withdrawn: %v", err)
	}
}
