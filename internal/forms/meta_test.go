package forms_test

import (
	"context"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/forms"
)

// TestFreeMetadata: forms, questions, choices, responses and answers each
// carry an object of free JSON metadata, at most 16 KiB, that the state
// admin edits through Hasura (update of meta) and that nothing else reads;
// a new response's answers start with none.
const householdVersion = "2026111501"

func TestFreeMetadata(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.register("household_survey.xml", forms.DataCollection)
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "action"})
	if err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM answer WHERE response_id = $1 AND meta <> '{}'`, *res.ResponseID); n != 0 {
		t.Errorf("%d answers with metadata, want none", n)
	}
	for _, tt := range []struct{ table, where string }{
		{"form", "id = 'household_survey'"},
		{"form_question", "name = 'monthly_income'"},
		{"form_choice", "value = 'female'"},
		{"answer", "value_text = 'Shimla'"},
	} {
		t.Run(tt.table, func(t *testing.T) {
			set := func(meta string) error {
				_, err := f.pool.Exec(ctx, "UPDATE "+tt.table+" SET meta = $1::jsonb WHERE "+tt.where, meta)
				return err
			}
			if err := set(`{"indicator": "SDG-1.2", "weights": [1, 2], "नोट": "जाँचा गया"}`); err != nil {
				t.Errorf("an object: %v", err)
			}
			if n := f.count("SELECT count(*) FROM " + tt.table + " WHERE " + tt.where + " AND meta->>'indicator' = 'SDG-1.2'"); n == 0 {
				t.Error("the metadata was not kept")
			}
			for _, bad := range []string{`[1, 2]`, `"text"`, `{"big": "` + strings.Repeat("x", 16400) + `"}`} {
				if err := set(bad); err == nil || !strings.Contains(err.Error(), tt.table+"_meta") {
					t.Errorf("meta %.20s…: got %v, want the %s_meta constraint", bad, err, tt.table)
				}
			}
		})
	}
	// An edit of the submission keeps its answers' metadata (the same
	// question, repeat position and choice), and a new version of the form
	// keeps its questions' and choices'.
	if _, err := f.pool.Exec(ctx, `UPDATE answer a SET meta = '{"note": "third member checked"}' FROM form_question q
		WHERE q.id = a.question_id AND q.name = 'member_age' AND a.repeat_index = '{3}'`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE answer a SET meta = jsonb_build_object('note', 'about ' || a.value_text) FROM form_question q
		WHERE q.id = a.question_id AND q.name IN ('income_sources', 'water_source')`); err != nil {
		t.Fatal(err)
	}
	edit := household(t, "<instanceID>"+firstInstance+"</instanceID>",
		"<instanceID>uuid:aaaaaaaa-0000-4000-8000-0000000000e1</instanceID><deprecatedID>"+firstInstance+"</deprecatedID>",
		"<rooms>3</rooms>", "<rooms>4</rooms>", "<income_sources>horticulture wages</income_sources>", "<income_sources>wages</income_sources>",
		"<water_source>spring</water_source>", "<water_source>tap</water_source>")
	if _, err := f.pipeline.Receive(ctx, forms.Input{XML: edit, Source: "action"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what, query string
		want        int
	}{
		{"the district's and city's notes (both Shimla)", `SELECT count(*) FROM answer WHERE value_text = 'Shimla' AND meta->>'indicator' = 'SDG-1.2'`, 2},
		{"the third member's note", `SELECT count(*) FROM answer a JOIN form_question q ON q.id = a.question_id
			WHERE q.name = 'member_age' AND a.repeat_index = '{3}' AND a.meta->>'note' = 'third member checked'`, 1},
		{"no other member's note", `SELECT count(*) FROM answer a JOIN form_question q ON q.id = a.question_id
			WHERE q.name = 'member_age' AND a.repeat_index <> '{3}' AND a.meta <> '{}'`, 0},
		{"the note of the choice still selected, on that choice", `SELECT count(*) FROM answer a JOIN form_question q ON q.id = a.question_id
			WHERE q.name = 'income_sources' AND a.value_text = 'wages' AND a.n = 0 AND a.meta->>'note' = 'about wages'`, 1},
		{"no note of the choice dropped", `SELECT count(*) FROM answer a JOIN form_question q ON q.id = a.question_id
			WHERE q.name = 'income_sources' AND a.meta->>'note' = 'about horticulture'`, 0},
		{"a single choice's note, kept when its value changed", `SELECT count(*) FROM answer a JOIN form_question q ON q.id = a.question_id
			WHERE q.name = 'water_source' AND a.value_text = 'tap' AND a.meta->>'note' = 'about spring'`, 1},
	} {
		if n := f.count(c.query); n != c.want {
			t.Errorf("after an edit, %s: %d answers, want %d", c.what, n, c.want)
		}
	}
	next := strings.Replace(string(read(t, "household_survey.xml")), `version="`+householdVersion+`"`, `version="`+householdVersion+`9"`, 1)
	if _, err := f.catalog.Register(ctx, []byte(next), forms.DataCollection, "admin-1"); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM form_question WHERE version = $1 AND name = 'monthly_income' AND meta->>'indicator' = 'SDG-1.2'`, householdVersion+"9"); n != 1 {
		t.Errorf("the new version's monthly_income has no indicator (%d)", n)
	}
	if n := f.count(`SELECT count(*) FROM form_choice c JOIN form_question q ON q.id = c.question_id
		WHERE q.version = $1 AND c.value = 'female' AND c.meta->>'indicator' = 'SDG-1.2'`, householdVersion+"9"); n == 0 {
		t.Error("the new version's choice female has no indicator")
	}
	if n := f.count(`SELECT count(*) FROM form_question WHERE version = $1 AND name <> 'monthly_income' AND meta <> '{}'`, householdVersion+"9"); n != 0 {
		t.Errorf("%d other questions of the new version got metadata", n)
	}
	// The cross-question search returns answers with their metadata.
	var meta map[string]any
	if err := f.pool.QueryRow(ctx, `SELECT meta FROM search_answers('household_survey', 'city', 'city', 'Shimla')`).Scan(&meta); err != nil || meta["indicator"] != "SDG-1.2" {
		t.Errorf("search_answers: %v, %v", meta, err)
	}
}
