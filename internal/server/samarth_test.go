package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// samarthReady registers the Samarth-layout builder and the master data its
// ids name, as an admin enters them through Hasura: the academic year, the
// programme's ids of a category, an assessment type, per-class subjects and
// a component type (the SMS template 21 and the districts are seeded).
func (b *bundle) samarthReady(t *testing.T) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), `
		INSERT INTO academic_year (id, starts_on, ends_on) VALUES ('2022-23', '2022-04-01', '2023-03-31');
		UPDATE assessment_category SET external_id = '12' WHERE id = 'SA';
		UPDATE assessment_type SET external_id = '3' WHERE id = 'SA1';
		INSERT INTO subject_code (external_id, subject, grade) VALUES ('5', 'HINDI', 1), ('6', 'ENGLISH', 1), ('88', 'MATHEMATICS', 1),
			('4', 'HINDI', 2), ('38', 'ENGLISH', 2), ('89', 'MATHEMATICS', 2);
		INSERT INTO component_type (id, name, name_hi, external_id) VALUES ('WRITTEN', 'Written', 'लिखित', '10');`); err != nil {
		t.Fatal(err)
	}
	status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": xformFile(t, "samarth_builder.xml"), "purpose": "ASSESSMENT_BUILDER"})
	if status != 200 || out["builderLayout"] != "samarth" {
		t.Fatalf("registerForm: %d %v, want builderLayout samarth", status, out)
	}
}

const samarthInstance = "uuid:7d2e4b10-93c1-4f6a-b8e2-5a0c1d9e3f47"

// samarth is the Samarth-layout submission with its instanceID made unique
// to path and the replacements applied.
func samarth(t *testing.T, instance string, replace ...string) string {
	return strings.NewReplacer(append([]string{samarthInstance, instance}, replace...)...).Replace(xformFile(t, "samarth_builder_submission.xml"))
}

// The programme's own assessment builder creates assessments, on all three
// ways in (submitForm, OpenRosa from a builder collector, a Hasura insert by
// state_admin): valid; the identical resend; the same instanceID with a
// changed value (409); an edit of the deadline, replacing the assessment in
// place; percentage evaluation (refused naming the kind); a non-number in
// an int field (rejected, path named, XML kept).
func TestSamarthBuilderOnEveryPath(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.samarthReady(t)
	b.startWorkers(t)
	status, out := b.action(t, "createCollector", "admin", map[string]any{"name": "राज्य समन्वयक", "phone": "9816077777", "buildsAssessments": true})
	if status != 200 {
		t.Fatalf("createCollector: %d %v", status, out)
	}
	token := out["token"].(string)
	ctx := context.Background()

	// outcome sends doc on path and reports what became of it: the HTTP
	// status (0 for Hasura inserts) and the stored submission's status and
	// code.
	type outcome struct {
		http         int
		status, code string
	}
	send := func(t *testing.T, path, doc string) outcome {
		t.Helper()
		var id uuid.UUID
		var o outcome
		switch path {
		case "action":
			o.http, _ = b.action(t, "submitForm", "state_admin", map[string]any{"xml": doc})
		case "openrosa":
			resp, _ := b.submit(t, token, doc, nil)
			o.http = resp.StatusCode
		case "hasura":
			id = b.hasuraInsert(t, doc, "state_admin")
			b.waitFor(t, "the Hasura insert to be processed", func() bool {
				return b.count(t, `SELECT count(*) FROM form_submission WHERE id = $1 AND status <> 'received'`, id) == 1
			})
		}
		if id == uuid.Nil {
			// The newest stored copy of this document.
			if err := b.pool.QueryRow(ctx, `SELECT id FROM form_submission WHERE xml = $1 ORDER BY received_at DESC LIMIT 1`, doc).Scan(&id); err != nil {
				t.Fatal(err)
			}
		}
		var code *string
		if err := b.pool.QueryRow(ctx, `SELECT status, error_code FROM form_submission WHERE id = $1`, id).Scan(&o.status, &code); err != nil {
			t.Fatal(err)
		}
		if code != nil {
			o.code = *code
		}
		return o
	}
	ok := map[string]int{"action": 200, "openrosa": 201, "hasura": 0}

	for _, path := range []string{"action", "openrosa", "hasura"} {
		t.Run(path, func(t *testing.T) {
			instance := fmt.Sprintf("uuid:7d2e4b10-93c1-4f6a-b8e2-0000000%s", map[string]string{"action": "0a1", "openrosa": "0b1", "hasura": "0c1"}[path])
			doc := samarth(t, instance)
			if got := send(t, path, doc); got.http != ok[path] || got.status != "accepted" {
				t.Fatalf("valid: %+v", got)
			}
			var id uuid.UUID
			var name, typ, category, eval, unit, outcomeKind, smsType string
			var total, pass float64
			var enabled bool
			if err := b.pool.QueryRow(ctx, `SELECT id, name, type, category, evaluation, unit_type, outcome, total_marks, pass_percent, sms_template, enabled
				FROM assessment WHERE builder_instance_id = $1`, instance).
				Scan(&id, &name, &typ, &category, &eval, &unit, &outcomeKind, &total, &pass, &smsType, &enabled); err != nil {
				t.Fatalf("no assessment: %v", err)
			}
			if name != "Summative Assessment 1 2022-23" || typ != "SA1" || category != "SA" || eval != "MARKS" || unit != "NONE" || outcomeKind != "TSP" ||
				total != 25 || pass != 33 || smsType != "EXAM_RESULT_ANNOUNCEMENT" || !enabled {
				t.Errorf("assessment %q %s %s %s %s %s %v %v %s %v", name, typ, category, eval, unit, outcomeKind, total, pass, smsType, enabled)
			}
			due := func() []time.Time {
				rows, err := b.pool.Query(ctx, `SELECT due_at FROM assessment_deadline WHERE assessment_id = $1 AND session = 'W' ORDER BY district`, id)
				if err != nil {
					t.Fatal(err)
				}
				defer rows.Close()
				var out []time.Time
				for rows.Next() {
					var d time.Time
					if err := rows.Scan(&d); err != nil {
						t.Fatal(err)
					}
					out = append(out, d)
				}
				return out
			}
			// 2022-2-28 23:59:59 with no zone is IST: 18:29:59 UTC, for
			// Lahaul and Spiti and Shimla.
			if got := due(); len(got) != 2 || !got[0].Equal(time.Date(2022, 2, 28, 18, 29, 59, 0, time.UTC)) {
				t.Errorf("deadlines %v", got)
			}
			if n := b.count(t, `SELECT count(*) FROM assessment_subject WHERE assessment_id = $1 AND subject IN ('HINDI', 'ENGLISH', 'MATHEMATICS')`, id); n != 6 {
				t.Errorf("%d class-subjects, want 6", n)
			}
			if n := b.count(t, `SELECT count(*) FROM assessment_component WHERE assessment_id = $1 AND component_type = 'WRITTEN'
				AND max_marks = 25 AND pass_percent = 33.5`, id); n != 1 {
				t.Errorf("component not written")
			}

			if got := send(t, path, doc); got.http != ok[path] || got.status != "duplicate" {
				t.Errorf("identical resend: %+v", got)
			}
			if got := send(t, path, samarth(t, instance, "<overall_pass_percentage>33</overall_pass_percentage>",
				"<overall_pass_percentage>40</overall_pass_percentage>")); got.code != "DUPLICATE_INSTANCE" || (path != "hasura" && got.http != 409) {
				t.Errorf("same instanceID, changed value: %+v, want 409 DUPLICATE_INSTANCE", got)
			}

			edit := samarth(t, instance+"-e", "<deprecatedID/>", "<deprecatedID>"+instance+"</deprecatedID>",
				"<date_deadline>2022-2-28</date_deadline>", "<date_deadline>2022-3-15</date_deadline>")
			if got := send(t, path, edit); got.http != ok[path] || got.status != "accepted" {
				t.Errorf("edit of the deadline: %+v", got)
			}
			if n := b.count(t, `SELECT count(*) FROM assessment WHERE id = $1 AND builder_instance_id = $2`, id, instance+"-e"); n != 1 {
				t.Errorf("the edit did not replace the assessment in place")
			}
			if got := due(); len(got) != 2 || !got[0].Equal(time.Date(2022, 3, 15, 18, 29, 59, 0, time.UTC)) {
				t.Errorf("deadlines after the edit %v", got)
			}

			got := send(t, path, samarth(t, instance+"-p", "<eval_params_value>marks</eval_params_value>", "<eval_params_value>percentage</eval_params_value>"))
			if got.code != "UNSUPPORTED_ASSESSMENT" || (path != "hasura" && got.http != 422) {
				t.Errorf("percentage evaluation: %+v, want 422 UNSUPPORTED_ASSESSMENT", got)
			}
			var reason string
			if err := b.pool.QueryRow(ctx, `SELECT errors -> 0 ->> 'reason' FROM form_submission WHERE error_code = 'UNSUPPORTED_ASSESSMENT'
				ORDER BY received_at DESC LIMIT 1`).Scan(&reason); err != nil || !strings.Contains(reason, "unit type NONE × evaluation PERCENTAGE × outcome TSP") {
				t.Errorf("the refusal does not name the kind: %q %v", reason, err)
			}

			got = send(t, path, samarth(t, instance+"-n", "<eval_params_grades>2</eval_params_grades>", "<eval_params_grades>two</eval_params_grades>"))
			if got.status != "rejected" || got.code != "INVALID_VALUE" || got.http != ok[path] {
				t.Errorf("a non-number in an int field: %+v", got)
			}
			if n := b.count(t, `SELECT count(*) FROM form_submission WHERE instance_id = $1 AND errors -> 0 ->> 'path' =
				'/data/grade_subject_selection/my_repeat[2]/eval_params_grades'`, instance+"-n"); n != 1 {
				t.Errorf("the rejected submission does not name the field")
			}
		})
	}
	if n := b.count(t, `SELECT count(*) FROM assessment`); n != 3 {
		t.Errorf("%d assessments from three paths, want 3", n)
	}
}

// A builder layout neither built in fits is refused listing what the
// closest one misses; an admin saves its mapping (saveBuilderMapping,
// checked and explained field by field), and the form then registers with
// that layout and its submissions create assessments.
func TestSavedBuilderMapping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if _, err := b.pool.Exec(context.Background(), `INSERT INTO academic_year (id, starts_on, ends_on) VALUES ('2026-27', '2026-04-01', '2027-03-31')`); err != nil {
		t.Fatal(err)
	}
	// shala's builder with its groups renamed, under another form id.
	rename := strings.NewReplacer(`id="assessment_builder"`, `id="pilot_builder"`, "grade_subjects", "classes", "/deadline", "/due", "<deadline>", "<due>", "</deadline>", "</due>")
	definition := rename.Replace(xformFile(t, "assessment_builder.xml"))
	status, out := b.action(t, "registerForm", "admin", map[string]any{"xform": definition, "purpose": "ASSESSMENT_BUILDER"})
	msg := fmt.Sprint(out["message"])
	if status != 400 || code(out) != "INVALID_XFORM" || !strings.Contains(msg, "deadline/academic_year is missing") ||
		!strings.Contains(msg, "grade_subjects/grade is missing") || !strings.Contains(msg, "(the closest builder layout, shala)") {
		t.Fatalf("a layout nothing fits: %d %v, want the closest layout's missing paths", status, out)
	}
	mapping := map[string]any{"layout": "pilot", "fields": []map[string]any{
		{"path": "name", "attribute": "name"},
		{"path": "type", "attribute": "type"},
		{"path": "due/academic_year", "attribute": "academic_year"},
		{"path": "due/districts", "attribute": "districts"},
		{"path": "due/session", "attribute": "session", "convert": "enum", "values": map[string]string{"W": "W", "S": "S"}},
		{"path": "due/date", "attribute": "date"},
		{"path": "due/time", "attribute": "time"},
		{"path": "classes/grade", "attribute": "grades.grade"},
		{"path": "classes/subjects", "attribute": "grades.subjects"},
		{"path": "evaluation", "attribute": "evaluation"},
		{"path": "unit_type", "attribute": "unit_type"},
		{"path": "outcome", "attribute": "outcome"},
		{"path": "component/component_type", "attribute": "components.type", "optional": true},
		{"path": "component/max_marks", "attribute": "components.max_marks", "optional": true},
	}}
	for _, bad := range []struct {
		name    string
		mapping map[string]any
		want    string
	}{
		{"a built-in layout's name", map[string]any{"layout": "samarth", "fields": mapping["fields"]}, "is built in"},
		{"an unknown attribute", map[string]any{"layout": "x", "fields": []map[string]any{{"path": "a", "attribute": "colour"}}}, `unknown attribute "colour"`},
		{"required attributes missing", map[string]any{"layout": "x", "fields": []map[string]any{{"path": "type", "attribute": "type"}}}, "attribute academic_year is required"},
		{"an unknown key", map[string]any{"layout": "x", "feilds": []any{}}, `unknown field "feilds"`},
	} {
		status, out := b.action(t, "saveBuilderMapping", "admin", map[string]any{"formId": "pilot_builder", "mapping": bad.mapping})
		if status != 400 || !strings.HasPrefix(fmt.Sprint(out["message"]), "mapping:") || !strings.Contains(fmt.Sprint(out["message"]), bad.want) {
			t.Errorf("%s: %d %v, want a refusal naming %q", bad.name, status, out, bad.want)
		}
	}
	if status, out := b.action(t, "saveBuilderMapping", "state_admin", map[string]any{"formId": "pilot_builder", "mapping": mapping}); status != 403 {
		t.Errorf("saveBuilderMapping as state_admin: %d %v", status, out)
	}
	status, out = b.action(t, "saveBuilderMapping", "admin", map[string]any{"formId": "pilot_builder", "mapping": mapping})
	if status != 200 || out["layout"] != "pilot" || out["checkedAgainstVersion"] != nil {
		t.Fatalf("saveBuilderMapping: %d %v", status, out)
	}
	status, out = b.action(t, "registerForm", "admin", map[string]any{"xform": definition, "purpose": "ASSESSMENT_BUILDER"})
	if status != 200 || out["builderLayout"] != "pilot" {
		t.Fatalf("registerForm with the saved mapping: %d %v", status, out)
	}
	status, out = b.action(t, "submitForm", "admin", map[string]any{"xml": rename.Replace(xformFile(t, "assessment_submission.xml"))})
	if status != 200 || out["assessmentId"] == nil {
		t.Fatalf("a submission of the saved layout: %d %v", status, out)
	}
	if n := b.count(t, `SELECT count(*) FROM assessment_subject WHERE assessment_id = $1`, out["assessmentId"]); n != 4 {
		t.Errorf("%d class-subjects, want 4", n)
	}
	// Saved again for the registered form, a mapping is checked against
	// its latest version.
	wrong := map[string]any{"layout": "pilot", "fields": append([]map[string]any{{"path": "due/colour", "attribute": "name"}}, mapping["fields"].([]map[string]any)[1:]...)}
	status, out = b.action(t, "saveBuilderMapping", "admin", map[string]any{"formId": "pilot_builder", "mapping": wrong})
	if status != 400 || !strings.Contains(fmt.Sprint(out["message"]), "does not fit pilot_builder version 2026110101: due/colour is missing") {
		t.Errorf("a mapping that does not fit the registered version: %d %v", status, out)
	}
}
