package assessment

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/shala-edu/shala/internal/xform"
)

// Mapping is a builder layout, declared as data: for each assessment
// attribute, the XForm path that holds it (below the instance root) and the
// conversion that turns the submitted text into the attribute's value.
// shala's own layout and the Samarth programme's are built in; an admin
// saves others (saveBuilderMapping). The README documents the format.
type Mapping struct {
	// Layout names the mapping (builderLayout in registerForm's answer).
	Layout string `json:"layout"`
	// Fields are the table's rows.
	Fields []FieldMapping `json:"fields"`
	// Constants give attributes the layout does not ask for (Samarth's
	// outcome is always TSP).
	Constants map[string]string `json:"constants,omitempty"`
}

// FieldMapping is one row: XForm path → attribute, with the conversion.
type FieldMapping struct {
	Path      string            `json:"path"`
	Attribute string            `json:"attribute"`
	Convert   string            `json:"convert,omitempty"`
	Values    map[string]string `json:"values,omitempty"`
	Optional  bool              `json:"optional,omitempty"`
}

// attributes are the assessment attributes a mapping can fill: the
// conversions each accepts (the first is the default), the field types it
// needs (nil: any), whether it is required and where it sits (grades.* in
// the class→subjects repeat, components.* in the components repeat).
var attributes = map[string]struct {
	converts []string
	types    []xform.Type
	required bool
}{
	"name":                    {[]string{"text"}, nil, false},
	"category":                {[]string{"assessment_category"}, nil, false},
	"type":                    {[]string{"assessment_type"}, nil, true},
	"academic_year":           {[]string{"academic_year"}, nil, true},
	"districts":               {[]string{"districts"}, nil, true},
	"session":                 {[]string{"code", "enum"}, nil, true},
	"date":                    {[]string{"date"}, []xform.Type{xform.Date}, true},
	"time":                    {[]string{"time"}, nil, true},
	"evaluation":              {[]string{"code", "enum"}, nil, true},
	"unit_type":               {[]string{"code", "enum"}, nil, true},
	"outcome":                 {[]string{"code", "enum"}, nil, true},
	"total_marks":             {[]string{"number"}, []xform.Type{xform.Int, xform.Decimal}, false},
	"pass_percent":            {[]string{"number"}, []xform.Type{xform.Int, xform.Decimal}, false},
	"sms_template":            {[]string{"sms_template"}, nil, false},
	"sms_enabled":             {[]string{"yes_no"}, nil, false},
	"subject_custom":          {[]string{"yes_no"}, nil, false},
	"enabled":                 {[]string{"yes_no"}, nil, false},
	"grades.grade":            {[]string{"number"}, []xform.Type{xform.Int}, true},
	"grades.subjects":         {[]string{"subjects"}, nil, true},
	"components.type":         {[]string{"component_type"}, nil, false},
	"components.max_marks":    {[]string{"number"}, []xform.Type{xform.Int, xform.Decimal}, false},
	"components.pass_percent": {[]string{"number"}, []xform.Type{xform.Int, xform.Decimal}, false},
}

// codes are the values a code attribute takes (the assessment table's
// checks): a constant or an enum value must be one of them.
var codes = map[string][]string{
	"session":    {"W", "S"},
	"evaluation": {"GRADE", "MARKS", "PERCENTAGE", "NONE"},
	"unit_type":  unitTypes,
	"outcome":    {"TSP", "BOOLEAN", "MARKS"},
}

// requiredAttributes in a stable order, for messages.
var requiredAttributes = func() []string {
	var out []string
	for name, a := range attributes {
		if a.required {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}()

// BuiltIn are the layouts shala reads without configuration, tried in this
// order: shala's own builder form, and the Samarth programme's Enketo
// assessment builder (github.com/Samarth-HP/docs,
// static/samarth-assessment-enketo-form.xml).
var BuiltIn = []Mapping{
	{Layout: "shala", Fields: []FieldMapping{
		{Path: "name", Attribute: "name", Optional: true},
		{Path: "type", Attribute: "type"},
		{Path: "deadline/academic_year", Attribute: "academic_year"},
		{Path: "deadline/districts", Attribute: "districts"},
		{Path: "deadline/session", Attribute: "session"},
		{Path: "deadline/date", Attribute: "date"},
		{Path: "deadline/time", Attribute: "time"},
		{Path: "grade_subjects/grade", Attribute: "grades.grade"},
		{Path: "grade_subjects/subjects", Attribute: "grades.subjects"},
		{Path: "evaluation", Attribute: "evaluation"},
		{Path: "unit_type", Attribute: "unit_type"},
		{Path: "outcome", Attribute: "outcome"},
		{Path: "component/component_type", Attribute: "components.type", Optional: true},
		{Path: "component/max_marks", Attribute: "components.max_marks", Optional: true},
		{Path: "component/pass_percent", Attribute: "components.pass_percent", Optional: true},
		{Path: "total_marks", Attribute: "total_marks", Optional: true},
		{Path: "pass_percent", Attribute: "pass_percent", Optional: true},
		{Path: "sms_template", Attribute: "sms_template", Optional: true},
		{Path: "enabled", Attribute: "enabled", Optional: true},
	}},
	{Layout: "samarth", Fields: []FieldMapping{
		{Path: "assessment_details/assessment_category", Attribute: "category"},
		{Path: "assessment_details/assessment_name", Attribute: "type"},
		{Path: "deadline/academic_year", Attribute: "academic_year"},
		{Path: "deadline/applicable_district", Attribute: "districts"},
		{Path: "deadline/applicable_session", Attribute: "session"},
		{Path: "deadline/date_deadline", Attribute: "date"},
		{Path: "deadline/time_deadline", Attribute: "time"},
		{Path: "grade_subject_selection/my_repeat/eval_params_grades", Attribute: "grades.grade"},
		{Path: "grade_subject_selection/my_repeat/eval_params_subjects", Attribute: "grades.subjects"},
		{Path: "eval_params/eval_params_value", Attribute: "evaluation"},
		{Path: "eval_params/overall_total_marks", Attribute: "total_marks", Optional: true},
		{Path: "eval_params/overall_pass_percentage", Attribute: "pass_percent", Optional: true},
		{Path: "eval_params/coms/assessment_component_group/component_details", Attribute: "components.type", Optional: true},
		{Path: "eval_params/coms/assessment_component_group/component_total_marks", Attribute: "components.max_marks", Optional: true},
		{Path: "eval_params/coms/assessment_component_group/component_pass_percentage", Attribute: "components.pass_percent", Optional: true},
		{Path: "eval_params/subject_custom", Attribute: "subject_custom", Optional: true},
		{Path: "au_config1/aulist", Attribute: "unit_type"},
		{Path: "sms_group/sms_enabled", Attribute: "sms_enabled", Optional: true},
		{Path: "sms_group/sms_temp", Attribute: "sms_template", Optional: true},
		{Path: "enable_ass_group/is_assessment_enabled", Attribute: "enabled", Optional: true},
	}, Constants: map[string]string{"outcome": "TSP"}},
}

// BuiltInLayout returns the built-in mapping called layout.
func BuiltInLayout(layout string) (Mapping, bool) {
	for _, m := range BuiltIn {
		if m.Layout == layout {
			return m, true
		}
	}
	return Mapping{}, false
}

var (
	layoutName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,59}$`)
	mapPath    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*(/[A-Za-z_][A-Za-z0-9_.-]*){0,31}$`)
)

// ParseMapping reads a mapping from JSON, refusing unknown keys, and checks
// it is well formed (Validate).
func ParseMapping(data []byte) (Mapping, error) {
	var m Mapping
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Mapping{}, fmt.Errorf("not a builder mapping: %v", err)
	}
	return m, m.Validate()
}

// Validate checks the mapping on its own: a layout name, known attributes
// with conversions they accept, each attribute once, paths below the root,
// every required attribute given by a row or a constant, enum values.
func (m Mapping) Validate() error {
	var problems []string
	if !layoutName.MatchString(m.Layout) {
		problems = append(problems, fmt.Sprintf("layout %q must be 1–60 lower-case letters, digits, '_' or '-'", m.Layout))
	}
	seen := map[string]bool{}
	for i, f := range m.Fields {
		at := fmt.Sprintf("fields[%d]", i)
		a, ok := attributes[f.Attribute]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: unknown attribute %q", at, f.Attribute))
			continue
		case seen[f.Attribute]:
			problems = append(problems, fmt.Sprintf("%s: attribute %s is mapped twice", at, f.Attribute))
		}
		seen[f.Attribute] = true
		if !mapPath.MatchString(f.Path) {
			problems = append(problems, fmt.Sprintf("%s: path %q must be element names below the instance root, separated by /", at, f.Path))
		}
		if f.Convert != "" && !slices.Contains(a.converts, f.Convert) {
			problems = append(problems, fmt.Sprintf("%s: %s converts with %s, not %q", at, f.Attribute, strings.Join(a.converts, " or "), f.Convert))
		}
		if (f.Convert == "enum") != (len(f.Values) > 0) {
			problems = append(problems, fmt.Sprintf("%s: values go with convert enum, and enum needs values", at))
		}
		if f.Optional && a.required {
			problems = append(problems, fmt.Sprintf("%s: %s is required and cannot be optional", at, f.Attribute))
		}
		if want, ok := codes[f.Attribute]; ok {
			from := make([]string, 0, len(f.Values))
			for k := range f.Values {
				from = append(from, k)
			}
			slices.Sort(from)
			for _, k := range from {
				if !slices.Contains(want, f.Values[k]) {
					problems = append(problems, fmt.Sprintf("%s: %s value %q (for %q) is not one of %s", at, f.Attribute, f.Values[k], k, strings.Join(want, ", ")))
				}
			}
		}
	}
	for name := range m.Constants {
		a, ok := attributes[name]
		switch {
		case !ok || strings.Contains(name, "."):
			problems = append(problems, fmt.Sprintf("constants: %q is not an attribute a constant can give", name))
		case seen[name]:
			problems = append(problems, fmt.Sprintf("constants: %s is also mapped to a path", name))
		case !slices.Contains(a.converts, "code"):
			problems = append(problems, fmt.Sprintf("constants: %s cannot be a constant", name))
		case !slices.Contains(codes[name], m.Constants[name]):
			problems = append(problems, fmt.Sprintf("constants: %s %q is not one of %s", name, m.Constants[name], strings.Join(codes[name], ", ")))
		}
		seen[name] = true
	}
	for _, name := range requiredAttributes {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("attribute %s is required: map it to a path (or give it as a constant)", name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// Layout is a mapping resolved against a form definition: ready to read
// its submissions.
type Layout struct {
	Mapping Mapping
	rows    map[string]FieldMapping // absolute field path → row
}

// Fit resolves m against definition f. It returns the layout, or the
// problems that keep f from fitting (a required path missing, a field of
// the wrong type or place), and how many required paths f has: the
// closest mapping to a definition that fits none is the one with most.
func Fit(m Mapping, f *xform.Form) (*Layout, []string, int) {
	l := &Layout{Mapping: m, rows: map[string]FieldMapping{}}
	var problems []string
	present := 0
	repeatOf := map[string]string{} // grades / components → the repeat path
	for _, row := range m.Fields {
		a := attributes[row.Attribute]
		path := "/" + f.Root + "/" + row.Path
		fl := f.Field(path)
		if fl == nil {
			if !row.Optional {
				problems = append(problems, row.Path+" is missing")
			}
			continue
		}
		if !row.Optional {
			present++
		}
		if a.types != nil && !slices.Contains(a.types, fl.Type) {
			problems = append(problems, fmt.Sprintf("%s is %s, want %v", fl.Path, fl.Type, a.types))
		}
		group, _, inRepeat := strings.Cut(row.Attribute, ".")
		switch {
		case inRepeat && fl.Repeat == "":
			problems = append(problems, fmt.Sprintf("%s must be inside a repeat", fl.Path))
		case !inRepeat && fl.Repeat != "":
			problems = append(problems, fmt.Sprintf("%s must be outside a repeat", fl.Path))
		case inRepeat && slices.ContainsFunc(f.Repeats, func(outer string) bool { return strings.HasPrefix(fl.Repeat, outer+"/") }):
			// Answers are keyed by their innermost position: instances of
			// the outer repeat would overwrite each other's.
			problems = append(problems, fmt.Sprintf("%s must not be in a repeat inside another repeat", fl.Path))
		case inRepeat && repeatOf[group] != "" && repeatOf[group] != fl.Repeat:
			problems = append(problems, fmt.Sprintf("%s must be in the repeat %s, with the other %s fields", fl.Path, repeatOf[group], group))
		case inRepeat:
			repeatOf[group] = fl.Repeat
		}
		l.rows[path] = row
	}
	if repeatOf["grades"] != "" && repeatOf["grades"] == repeatOf["components"] {
		problems = append(problems, "classes and components must be different repeats")
	}
	if len(problems) > 0 {
		return nil, problems, present
	}
	return l, nil, present
}

// Choose picks, of candidates in order, the first mapping that definition
// f fits. When none fits the error lists the problems of the closest one
// (the one with most of its required paths in f).
func Choose(candidates []Mapping, f *xform.Form) (*Layout, error) {
	best, bestPresent := []string(nil), -1
	var bestLayout string
	for _, m := range candidates {
		l, problems, present := Fit(m, f)
		if l != nil {
			return l, nil
		}
		if present > bestPresent {
			best, bestPresent, bestLayout = problems, present, m.Layout
		}
	}
	return nil, fmt.Errorf("not an assessment builder: %s (the closest builder layout, %s)", strings.Join(best, "; "), bestLayout)
}
