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
	// The cross-question search returns answers with their metadata.
	var meta map[string]any
	if err := f.pool.QueryRow(ctx, `SELECT meta FROM search_answers('household_survey', 'city', 'city', 'Shimla')`).Scan(&meta); err != nil || meta["indicator"] != "SDG-1.2" {
		t.Errorf("search_answers: %v, %v", meta, err)
	}
}
