package assessment

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/xform"
)

// Component is one marked part of an assessment (theory, practical…).
type Component struct {
	Kind     string
	Max      float64
	PassPct  *float64
	Position int
}

// Builder is an assessment as an assessment-builder submission describes
// it, checked.
type Builder struct {
	Name, Kind, Year, Session, SMS string
	Districts                      []string
	DueAt                          time.Time
	Grades                         map[int][]string // class → subjects
	Evaluation, UnitType, Outcome  string
	Components                     []Component
	Total, PassPct                 *float64
	Enabled                        bool
}

// Read reads and checks an assessment-builder submission's answers;
// refusals are Unprocessable faults naming the field.
func Read(root string, answers []xform.Answer) (*Builder, error) {
	b := &Builder{Grades: map[int][]string{}, Enabled: true}
	var date time.Time
	var clock string
	gradeOf := map[int]int{}
	subjectsOf := map[int][]string{}
	comps := map[int]*Component{}
	component := func(i int) *Component {
		if comps[i] == nil {
			comps[i] = &Component{Position: i}
		}
		return comps[i]
	}
	for _, a := range answers {
		switch a.Field.Name {
		case "name":
			b.Name = a.Raw
		case "type":
			b.Kind = a.Raw
		case "academic_year":
			b.Year = a.Raw
		case "districts":
			b.Districts = strings.Fields(a.Raw)
		case "session":
			b.Session = a.Raw
		case "date":
			date = *a.Time
		case "time":
			clock = a.Raw
		case "grade":
			gradeOf[a.Index[0]] = int(*a.Number)
		case "subjects":
			subjectsOf[a.Index[0]] = strings.Fields(a.Raw)
		case "evaluation":
			b.Evaluation = a.Raw
		case "unit_type":
			b.UnitType = a.Raw
		case "outcome":
			b.Outcome = a.Raw
		case "component_type":
			component(a.Index[0]).Kind = a.Raw
		case "max_marks":
			component(a.Index[0]).Max = *a.Number
		case "total_marks":
			b.Total = a.Number
		case "pass_percent":
			if a.Field.Repeat != "" {
				component(a.Index[0]).PassPct = a.Number
			} else {
				b.PassPct = a.Number
			}
		case "sms_template":
			b.SMS = a.Raw
		case "enabled":
			b.Enabled = a.Raw != "no" && a.Raw != "false" && a.Raw != "0"
		}
	}
	for field, v := range map[string]string{"name": b.Name, "type": b.Kind, "deadline/academic_year": b.Year,
		"deadline/session": b.Session, "evaluation": b.Evaluation, "unit_type": b.UnitType, "outcome": b.Outcome, "deadline/time": clock} {
		if v == "" {
			return nil, refuse(root, field, CodeInvalid, "%s is required", field)
		}
	}
	if len(b.Districts) == 0 {
		return nil, refuse(root, "deadline/districts", CodeInvalid, "at least one district is required")
	}
	if date.IsZero() {
		return nil, refuse(root, "deadline/date", CodeInvalid, "deadline/date is required")
	}
	if !Supported(b.UnitType, b.Evaluation, b.Outcome) {
		return nil, refuse(root, "evaluation", CodeUnsupported,
			"unsupported assessment kind: unit type %s × evaluation %s × outcome %s (supported: Grade or Marks evaluation with a TSP outcome, for unit type LO, Unit, Question or None)",
			b.UnitType, b.Evaluation, b.Outcome)
	}
	if !slices.Contains(assessmentTypes, b.Kind) {
		return nil, refuse(root, "type", CodeInvalid, "type %q is not one of %s", b.Kind, strings.Join(assessmentTypes, ", "))
	}
	if b.Session != "W" && b.Session != "S" {
		return nil, refuse(root, "deadline/session", CodeInvalid, "session must be W or S, got %q", b.Session)
	}
	if b.SMS != "" && !slices.Contains(sms.Types, b.SMS) {
		return nil, refuse(root, "sms_template", CodeInvalid, "sms_template %q is not an SMS template type", b.SMS)
	}
	for i, g := range gradeOf {
		if g < 1 || g > 12 {
			return nil, refuse(root, fmt.Sprintf("grade_subjects[%d]/grade", i), CodeInvalid, "class %d is not 1–12", g)
		}
		if len(subjectsOf[i]) == 0 {
			return nil, refuse(root, fmt.Sprintf("grade_subjects[%d]/subjects", i), CodeInvalid, "class %d has no subjects", g)
		}
		b.Grades[g] = append(b.Grades[g], subjectsOf[i]...)
	}
	if len(b.Grades) == 0 {
		return nil, refuse(root, "grade_subjects", CodeInvalid, "at least one class with subjects is required")
	}
	sum := 0.0
	positions := make([]int, 0, len(comps))
	for i := range comps {
		positions = append(positions, i)
	}
	slices.Sort(positions)
	for _, i := range positions {
		c := comps[i]
		if c.Kind == "" || c.Max <= 0 {
			return nil, refuse(root, fmt.Sprintf("component[%d]", i), CodeInvalid, "a component needs a type and maximum marks above 0")
		}
		sum += c.Max
		b.Components = append(b.Components, *c)
	}
	if b.Total != nil && len(b.Components) > 0 && sum != *b.Total {
		return nil, refuse(root, "total_marks", CodeInvalid, "components add up to %g marks but total_marks is %g", sum, *b.Total)
	}
	if b.Total == nil && len(b.Components) > 0 {
		b.Total = &sum
	}
	tod, err := parseClock(clock)
	if err != nil {
		return nil, refuse(root, "deadline/time", CodeInvalid, "%v", err)
	}
	b.DueAt = time.Date(date.Year(), date.Month(), date.Day(), tod.Hour(), tod.Minute(), tod.Second(), 0, tod.Location())
	return b, nil
}

func parseClock(s string) (time.Time, error) {
	for _, layout := range []string{"15:04:05.999-07:00", "15:04:05.999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05.999", "15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, IST); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time of day", s)
}

// builderFields are the fields an assessment-builder form must have.
var builderFields = []string{"name", "type", "academic_year", "districts", "session", "date", "time",
	"grade", "subjects", "evaluation", "unit_type", "outcome"}

// builderShape is what reading an assessment builder's submission relies on:
// the type of some fields (nil: any) and whether they sit in a repeat
// (grade→subjects and components are repeats; the deadline date is not).
var builderShape = map[string]struct {
	types  []xform.Type
	repeat *bool
}{
	"date":           {[]xform.Type{xform.Date}, ptr(false)},
	"grade":          {[]xform.Type{xform.Int}, ptr(true)},
	"subjects":       {nil, ptr(true)},
	"component_type": {nil, ptr(true)},
	"max_marks":      {[]xform.Type{xform.Int, xform.Decimal}, ptr(true)},
	"total_marks":    {[]xform.Type{xform.Int, xform.Decimal}, ptr(false)},
	"pass_percent":   {[]xform.Type{xform.Int, xform.Decimal}, nil},
}

func ptr[T any](v T) *T { return &v }

// CheckDefinition refuses an assessment-builder definition that lacks a
// field or has one of the wrong type or place, naming each; the caller
// says which input was wrong.
func CheckDefinition(f *xform.Form) error {
	var problems []string
	for _, name := range builderFields {
		if !slices.ContainsFunc(f.Fields, func(fl *xform.Field) bool { return fl.Name == name }) {
			problems = append(problems, name+" is missing")
		}
	}
	for _, fl := range f.Fields {
		shape, ok := builderShape[fl.Name]
		if !ok {
			continue
		}
		if shape.types != nil && !slices.Contains(shape.types, fl.Type) {
			problems = append(problems, fmt.Sprintf("%s is %s, want %v", fl.Path, fl.Type, shape.types))
		}
		if shape.repeat != nil && *shape.repeat != (fl.Repeat != "") {
			where := "outside a repeat"
			if *shape.repeat {
				where = "inside a repeat"
			}
			problems = append(problems, fmt.Sprintf("%s must be %s", fl.Path, where))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("not an assessment builder: %s", strings.Join(problems, "; "))
	}
	return nil
}
