package progress_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/metadata"
)

// TestRosterHoldsTheClassesStudents reads school_class's roster
// relationship from metadata/ and joins it as Hasura would: a class's
// roster is the students its enrolment counts, those recorded without a
// section among class A's (most one-section schools record none), so the
// teacher entering a class's results sees every student the listing says
// it has.
func TestRosterHoldsTheClassesStudents(t *testing.T) {
	t.Parallel()
	m, err := metadata.Load("../../metadata")
	if err != nil {
		t.Fatal(err)
	}
	var remote string
	var mapping map[string]string
	for _, src := range m.Sources {
		for _, tb := range src.Tables {
			if tb.Table.Name != "school_class" {
				continue
			}
			for _, r := range tb.ArrayRelationships {
				if r.Name == "roster" && r.Using.ManualConfiguration != nil {
					remote, mapping = r.Using.ManualConfiguration.RemoteTable.String(), r.Using.ManualConfiguration.ColumnMapping
				}
			}
		}
	}
	if remote == "" {
		t.Fatal("school_class has no roster relationship")
	}
	f := setup(t)
	school := f.school("Shimla", "W")
	recorded, unrecorded, other := f.student(school, 6, "A"), f.student(school, 6, ""), f.student(school, 6, "B")
	var cond []string
	for _, from := range slices.Sorted(maps.Keys(mapping)) {
		cond = append(cond, fmt.Sprintf("r.%s = c.%s", pgx.Identifier{mapping[from]}.Sanitize(), pgx.Identifier{from}.Sanitize()))
	}
	q := fmt.Sprintf(`SELECT r.id::text FROM school_class c JOIN %s r ON %s WHERE c.school_id = $1 AND c.grade = 6 AND c.section = $2 ORDER BY 1`,
		remote, strings.Join(cond, " AND "))
	roster := func(section string) []string {
		rows, err := f.pool.Query(f.ctx, q, school, section)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	want := []string{recorded.String(), unrecorded.String()}
	slices.Sort(want)
	if got := roster("A"); !slices.Equal(got, want) {
		t.Errorf("roster of 6-A %v, want %v (the student with section A and the one recorded without a section)", got, want)
	}
	if got := roster("B"); !slices.Equal(got, []string{other.String()}) {
		t.Errorf("roster of 6-B %v, want [%s]", got, other)
	}
	if got, want := f.int(`SELECT students FROM school_class WHERE school_id = $1 AND grade = 6 AND section = 'A'`, school), len(roster("A")); got != want {
		t.Errorf("6-A enrols %d students, its roster holds %d", got, want)
	}
}
