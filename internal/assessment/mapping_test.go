package assessment_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/xform"
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

// A builder's classes (or components) in a repeat nested inside another
// repeat do not fit: answers are keyed by their innermost position, so the
// first class of the second outer instance would silently replace the
// first class of the first.
func TestNestedRepeatsDoNotFit(t *testing.T) {
	t.Parallel()
	const definition = `<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa">
<h:head><h:title>Rounds</h:title><model><instance><data id="rounds" version="1">
<type/><deadline><academic_year/><districts/><session/><date/><time/></deadline>
<round jr:template=""><grade_subjects jr:template=""><grade/><subjects/></grade_subjects></round>
<evaluation/><unit_type/><outcome/><meta><instanceID/></meta></data></instance>
<bind nodeset="/data/deadline/date" type="date"/><bind nodeset="/data/round/grade_subjects/grade" type="int"/>
</model></h:head><h:body>
<repeat nodeset="/data/round"><repeat nodeset="/data/round/grade_subjects"><input ref="/data/round/grade_subjects/grade"/></repeat></repeat>
</h:body></h:html>`
	f, err := xform.ParseDefinition([]byte(definition))
	if err != nil {
		t.Fatal(err)
	}
	m := assessment.Mapping{Layout: "rounds", Fields: []assessment.FieldMapping{
		{Path: "type", Attribute: "type"},
		{Path: "deadline/academic_year", Attribute: "academic_year"},
		{Path: "deadline/districts", Attribute: "districts"},
		{Path: "deadline/session", Attribute: "session"},
		{Path: "deadline/date", Attribute: "date"},
		{Path: "deadline/time", Attribute: "time"},
		{Path: "round/grade_subjects/grade", Attribute: "grades.grade"},
		{Path: "round/grade_subjects/subjects", Attribute: "grades.subjects"},
		{Path: "evaluation", Attribute: "evaluation"},
		{Path: "unit_type", Attribute: "unit_type"},
		{Path: "outcome", Attribute: "outcome"},
	}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	l, problems, _ := assessment.Fit(m, f)
	if l != nil || !strings.Contains(strings.Join(problems, "; "), "/data/round/grade_subjects/grade must not be in a repeat inside another repeat") {
		t.Errorf("got %v, want the nested repeat refused", problems)
	}
}
