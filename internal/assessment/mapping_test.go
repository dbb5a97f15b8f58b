package assessment_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/assessment"
)

// The README documents the mapping format with the Samarth mapping: the
// example must be the built-in one, and both built-ins well formed.
func TestREADMEMappingIsTheBuiltInOne(t *testing.T) {
	t.Parallel()
	for _, m := range assessment.BuiltIn {
		if err := m.Validate(); err != nil {
			t.Errorf("built-in %s: %v", m.Layout, err)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "The Samarth mapping, as JSON")
	if !ok {
		t.Fatal("README: the Samarth mapping example is gone")
	}
	_, block, _ := strings.Cut(after, "```json\n")
	block, _, _ = strings.Cut(block, "```")
	got, err := assessment.ParseMapping([]byte(block))
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	want, _ := assessment.BuiltInLayout("samarth")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("README example %+v\nbuilt-in %+v", got, want)
	}
}

// A constant or enum value that is not a code of its attribute is refused
// when the mapping is saved: every submission read through it would
// otherwise be refused (outcome "tsp" is not TSP, session "Winter" is not
// W).
func TestMappingCodesAreCheckedWhenSaved(t *testing.T) {
	t.Parallel()
	samarth, _ := assessment.BuiltInLayout("samarth")
	with := func(change func(m *assessment.Mapping)) assessment.Mapping {
		m := samarth
		m.Layout = "pilot"
		m.Fields = append([]assessment.FieldMapping(nil), samarth.Fields...)
		m.Constants = map[string]string{"outcome": "TSP"}
		change(&m)
		return m
	}
	for _, tt := range []struct {
		name string
		m    assessment.Mapping
		want string
	}{
		{"a constant in lower case", with(func(m *assessment.Mapping) { m.Constants["outcome"] = "tsp" }), `constants: outcome "tsp" is not one of`},
		{"an enum value that is not a code", with(func(m *assessment.Mapping) {
			for i, f := range m.Fields {
				if f.Attribute == "session" {
					m.Fields[i].Convert, m.Fields[i].Values = "enum", map[string]string{"winter": "Winter", "summer": "S"}
				}
			}
		}), `session value "Winter" (for "winter") is not one of W, S`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.m.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
	if err := with(func(*assessment.Mapping) {}).Validate(); err != nil {
		t.Errorf("the Samarth mapping renamed: %v", err)
	}
}
