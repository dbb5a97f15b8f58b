package lesson_test

import (
	"context"
	"slices"
	"testing"

	"github.com/shala-edu/shala/internal/metadata"
)

// TestSecretsReadableByNoRole: BBB API secrets and join passwords live in
// tables Hasura does not track (so not even its admin role reads them
// through GraphQL), the tracked tables have no such columns, and no role's
// permission lists the moderator link hash.
func TestSecretsReadableByNoRole(t *testing.T) {
	t.Parallel()
	m, err := metadata.Load("../../metadata")
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	cat, err := metadata.ReadCatalog(context.Background(), b.pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, secretTable := range []string{"public.bbb_server_secret", "public.lesson_secret"} {
		if cat.Columns[secretTable] == nil {
			t.Errorf("%s does not exist: update the test", secretTable)
		}
	}
	hidden := []string{"secret", "attendee_pw", "moderator_pw", "link_token_hash"}
	tracked := map[string]bool{}
	for _, src := range m.Sources {
		for _, tb := range src.Tables {
			name := tb.Table.String()
			tracked[name] = true
			for _, col := range hidden {
				if col != "link_token_hash" && cat.Columns[name][col] {
					t.Errorf("tracked table %s has a %s column", name, col)
				}
			}
			for _, perms := range [][]metadata.Permission{tb.SelectPermissions, tb.InsertPermissions, tb.UpdatePermissions} {
				for _, p := range perms {
					cols, all, err := p.ColumnList()
					if err != nil {
						t.Fatal(err)
					}
					for _, col := range hidden {
						if (all && cat.Columns[name][col]) || slices.Contains(cols, col) {
							t.Errorf("%s: role %s may touch %s", name, p.Role, col)
						}
					}
				}
			}
		}
	}
	for _, secretTable := range []string{"public.bbb_server_secret", "public.lesson_secret"} {
		if tracked[secretTable] {
			t.Errorf("%s is tracked by Hasura", secretTable)
		}
	}
	if !tracked["public.bbb_server"] || !tracked["public.lesson"] {
		t.Error("bbb_server or lesson is not tracked: update the test")
	}
}
