package progress_test

import (
	"encoding/json"
	"testing"

	"github.com/shala-edu/shala/internal/metadata"
)

// TestHasuraScopesProgressToTheCallersSchool reads metadata/: every table
// and view that carries a school's progress, enrolment, roster or versions lets the
// school role see its own school's rows only, district admins their
// district's, and no other role any; the listing action is the school
// role's alone. (Hasura itself cannot run here; the e2e suite checks the
// same through a real Hasura.)
func TestHasuraScopesProgressToTheCallersSchool(t *testing.T) {
	t.Parallel()
	m, err := metadata.Load("../../metadata")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"school":         `{"school_id":{"_eq":"X-Hasura-School-Id"}}`,
		"district_admin": `{"school":{"district":{"_eq":"X-Hasura-District"}}}`,
		"state_admin":    `{}`,
	}
	tables := map[string]bool{"assessment_progress": false, "assessment_school_progress": false, "school_class": false, "class_roster": false}
	for _, src := range m.Sources {
		for _, tb := range src.Tables {
			if _, ok := tables[tb.Table.Name]; !ok {
				continue
			}
			tables[tb.Table.Name] = true
			if len(tb.InsertPermissions)+len(tb.UpdatePermissions)+len(tb.DeletePermissions) > 0 {
				t.Errorf("%s: writable through Hasura; its rows are kept by triggers only", tb.Table.Name)
			}
			seen := map[string]bool{}
			for _, p := range tb.SelectPermissions {
				seen[p.Role] = true
				filter, err := json.Marshal(p.Permission.Filter)
				if err != nil {
					t.Fatal(err)
				}
				if w, ok := want[p.Role]; !ok {
					t.Errorf("%s: role %s may select it", tb.Table.Name, p.Role)
				} else if string(filter) != w {
					t.Errorf("%s: role %s filter %s, want %s", tb.Table.Name, p.Role, filter, w)
				}
			}
			if !seen["school"] {
				t.Errorf("%s: the school role cannot read it", tb.Table.Name)
			}
		}
	}
	for name, found := range tables {
		if !found {
			t.Errorf("%s is not tracked", name)
		}
	}
	for _, a := range m.Actions {
		if a.Name != "schoolAssessments" {
			continue
		}
		if len(a.Permissions) != 1 || a.Permissions[0].Role != "school" || a.Definition.Type != "query" {
			t.Errorf("schoolAssessments: permissions %v type %q, want the school role only, a query", a.Permissions, a.Definition.Type)
		}
		return
	}
	t.Error("schoolAssessments is not in actions.yaml")
}
