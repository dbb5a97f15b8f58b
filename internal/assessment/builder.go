package assessment

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shala-edu/shala/internal/xform"
)

// Ref is a master-data value as a builder submitted it — a code (FA1,
// HINDI, shimla) or an external id (16, 101) — and where it was in the
// submission, for the refusal when it names nothing.
type Ref struct {
	Value string
	At    string
}

// ClassSubjects is one class of an assessment and the subjects it takes.
type ClassSubjects struct {
	Grade    int
	At       string // the subjects' path
	Subjects []Ref
}

// Component is one marked part of an assessment (theory, practical…).
type Component struct {
	Kind     Ref
	Max      float64
	MaxAt    string // the maximum marks' path
	PassPct  *float64
	Position int
}

// Builder is an assessment as an assessment-builder submission describes
// it, checked as far as the submission alone allows; its master-data
// references are resolved when it is saved.
type Builder struct {
	Name                          string
	Category                      *Ref
	Type                          Ref
	Year                          Ref
	Districts                     []Ref
	Session                       string
	DueAt                         time.Time
	Classes                       []ClassSubjects
	Evaluation, UnitType, Outcome string
	Components                    []Component
	Total, PassPct                *float64
	SMS                           *Ref
	Enabled                       bool
	// EvaluationAt, UnitTypeAt and TotalAt are the paths of the
	// evaluation, the unit type and the total marks, for refusals of an edit.
	EvaluationAt, UnitTypeAt, TotalAt string
}

// Read reads a builder submission's answers through layout l; refusals are
// Unprocessable faults naming the field (with its repeat position).
func Read(l *Layout, root string, answers []xform.Answer) (*Builder, error) {
	byAttr := map[string][]xform.Answer{}
	for _, a := range answers {
		if row, ok := l.rows[a.Field.Path]; ok {
			byAttr[row.Attribute] = append(byAttr[row.Attribute], a)
		}
	}
	r := &reader{l: l, root: root, byAttr: byAttr}
	b := &Builder{Enabled: true, EvaluationAt: r.at("evaluation"), UnitTypeAt: r.at("unit_type"), TotalAt: r.at("total_marks")}
	var err error
	one := func(attr string, into *string) {
		if err == nil {
			*into, err = r.value(attr)
		}
	}
	one("name", &b.Name)
	one("session", &b.Session)
	one("evaluation", &b.Evaluation)
	one("unit_type", &b.UnitType)
	one("outcome", &b.Outcome)
	if err != nil {
		return nil, err
	}
	if n := utf8.RuneCountInString(b.Name); n > 300 {
		return nil, refuse(r.at("name"), CodeInvalid, "the name has %d characters, at most 300", n)
	}
	for _, attr := range []string{"type", "academic_year", "session", "evaluation", "unit_type", "outcome", "date", "time"} {
		if v, _ := r.value(attr); v == "" {
			return nil, refuse(r.at(attr), CodeInvalid, "%s is required", r.rel(attr))
		}
	}
	b.Type = r.ref("type")
	if a, ok := r.first("academic_year"); ok {
		b.Year = Ref{Value: academicYear(strings.TrimSpace(a.Raw)), At: a.At}
	}
	if a, ok := r.first("category"); ok {
		c := Ref{Value: strings.TrimSpace(a.Raw), At: a.At}
		b.Category = &c
	}
	if a, ok := r.first("districts"); ok {
		for _, d := range strings.Fields(a.Raw) {
			b.Districts = append(b.Districts, Ref{Value: d, At: a.At})
		}
	}
	if len(b.Districts) == 0 {
		return nil, refuse(r.at("districts"), CodeInvalid, "at least one district is required")
	}
	if !Supported(b.UnitType, b.Evaluation, b.Outcome) {
		return nil, refuse(r.at("evaluation"), CodeUnsupported,
			"unsupported assessment kind: unit type %s × evaluation %s × outcome %s (supported: Grade or Marks evaluation with a TSP outcome, for unit type LO, Unit, Question or None)",
			b.UnitType, b.Evaluation, b.Outcome)
	}
	if b.Session != "W" && b.Session != "S" {
		return nil, refuse(r.at("session"), CodeInvalid, "session must be W or S, got %q", b.Session)
	}
	if b.Enabled, err = r.yesNo("enabled", true); err != nil {
		return nil, err
	}
	smsOn, err := r.yesNo("sms_enabled", true)
	if err != nil {
		return nil, err
	}
	// Marks that differ per subject would need a total and components per
	// subject, which assessments do not have: refused rather than read as
	// the same for every subject.
	if custom, err := r.yesNo("subject_custom", false); err != nil || custom {
		if err != nil {
			return nil, err
		}
		return nil, refuse(r.at("subject_custom"), CodeInvalid, "marks that differ per subject are not supported: the total and components apply to every subject")
	}
	if a, ok := r.first("sms_template"); ok && smsOn {
		s := Ref{Value: strings.TrimSpace(a.Raw), At: a.At}
		b.SMS = &s
	}
	if b.Total, err = r.number("total_marks"); err != nil {
		return nil, err
	}
	if b.Total != nil && *b.Total <= 0 {
		return nil, refuse(r.at("total_marks"), CodeInvalid, "total marks %g must be above 0", *b.Total)
	}
	if b.PassPct, err = r.number("pass_percent"); err != nil {
		return nil, err
	}
	if err := percent(r.at("pass_percent"), b.PassPct); err != nil {
		return nil, err
	}
	if err := r.classes(b); err != nil {
		return nil, err
	}
	if err := r.components(b); err != nil {
		return nil, err
	}
	date, _ := r.first("date")
	clock, _ := r.first("time")
	tod, err := parseClock(strings.TrimSpace(clock.Raw))
	if err != nil {
		return nil, refuse(clock.At, CodeInvalid, "%v", err)
	}
	d := *date.Time
	b.DueAt = time.Date(d.Year(), d.Month(), d.Day(), tod.Hour(), tod.Minute(), tod.Second(), 0, tod.Location())
	return b, nil
}

// reader reads one submission's answers by attribute.
type reader struct {
	l      *Layout
	root   string
	byAttr map[string][]xform.Answer
}

// rel is the mapped path of attr (its name when it is not mapped).
func (r *reader) rel(attr string) string {
	for _, row := range r.l.Mapping.Fields {
		if row.Attribute == attr {
			return row.Path
		}
	}
	return attr
}

// at is where a refusal about attr points: the mapped field.
func (r *reader) at(attr string) string { return "/" + r.root + "/" + r.rel(attr) }

func (r *reader) row(attr string) FieldMapping {
	for _, row := range r.l.Mapping.Fields {
		if row.Attribute == attr {
			return row
		}
	}
	return FieldMapping{Attribute: attr, Convert: "code"}
}

func (r *reader) first(attr string) (xform.Answer, bool) {
	if as := r.byAttr[attr]; len(as) > 0 {
		return as[0], true
	}
	return xform.Answer{}, false
}

// value is attr's text converted (text, code or enum), or the layout's
// constant; "" when absent.
func (r *reader) value(attr string) (string, error) {
	a, ok := r.first(attr)
	if !ok {
		return r.l.Mapping.Constants[attr], nil
	}
	raw := strings.TrimSpace(a.Raw)
	row := r.row(attr)
	convert := row.Convert
	if convert == "" {
		convert = attributes[attr].converts[0]
	}
	switch convert {
	case "code":
		return strings.ToUpper(raw), nil
	case "enum":
		v, ok := row.Values[raw]
		if !ok {
			keys := make([]string, 0, len(row.Values))
			for k := range row.Values {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			return "", refuse(a.At, CodeInvalid, "%q is not one of %s", raw, strings.Join(keys, ", "))
		}
		return v, nil
	default:
		return raw, nil
	}
}

func (r *reader) ref(attr string) Ref {
	a, _ := r.first(attr)
	return Ref{Value: strings.TrimSpace(a.Raw), At: a.At}
}

func (r *reader) yesNo(attr string, absent bool) (bool, error) {
	a, ok := r.first(attr)
	if !ok {
		return absent, nil
	}
	switch strings.ToLower(strings.TrimSpace(a.Raw)) {
	case "yes", "true", "1":
		return true, nil
	case "no", "false", "0":
		return false, nil
	}
	return false, refuse(a.At, CodeInvalid, "%q is not yes or no", a.Raw)
}

// number reads a numeric attribute (its field is int or decimal: the
// parser typed it).
func (r *reader) number(attr string) (*float64, error) {
	a, ok := r.first(attr)
	if !ok {
		return nil, nil
	}
	return numberOf(a)
}

func numberOf(a xform.Answer) (*float64, error) {
	if a.Number != nil {
		return a.Number, nil
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(a.Raw), 64)
	if err != nil {
		return nil, refuse(a.At, CodeInvalid, "%q is not a number", a.Raw)
	}
	return &v, nil
}

// instance keys an answer by its innermost repeat position.
func instance(a xform.Answer) int { return a.Index[len(a.Index)-1] }

func (r *reader) classes(b *Builder) error {
	grades := map[int]xform.Answer{}
	subjects := map[int]xform.Answer{}
	var order []int
	for _, a := range r.byAttr["grades.grade"] {
		grades[instance(a)] = a
		order = append(order, instance(a))
	}
	for _, a := range r.byAttr["grades.subjects"] {
		if _, ok := grades[instance(a)]; !ok {
			return refuse(strings.TrimSuffix(a.At, "/"+a.Field.Name)+"/"+lastSegment(r.rel("grades.grade")), CodeInvalid, "the class is required")
		}
		subjects[instance(a)] = a
	}
	slices.Sort(order)
	byGrade := map[int]int{} // grade → index in b.Classes
	for _, i := range order {
		g := grades[i]
		grade := int(*g.Number)
		if grade < 1 || grade > 12 {
			return refuse(g.At, CodeInvalid, "class %d is not 1–12", grade)
		}
		s, ok := subjects[i]
		if !ok || len(strings.Fields(s.Raw)) == 0 {
			return refuse(strings.TrimSuffix(g.At, "/"+g.Field.Name)+"/"+lastSegment(r.rel("grades.subjects")), CodeInvalid, "class %d has no subjects", grade)
		}
		var refs []Ref
		for _, v := range strings.Fields(s.Raw) {
			refs = append(refs, Ref{Value: v, At: s.At})
		}
		if j, seen := byGrade[grade]; seen {
			b.Classes[j].Subjects = append(b.Classes[j].Subjects, refs...)
			continue
		}
		byGrade[grade] = len(b.Classes)
		b.Classes = append(b.Classes, ClassSubjects{Grade: grade, At: s.At, Subjects: refs})
	}
	if len(b.Classes) == 0 {
		return refuse(r.at("grades.grade"), CodeInvalid, "at least one class with subjects is required")
	}
	return nil
}

func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func (r *reader) components(b *Builder) error {
	comps := map[int]*Component{}
	component := func(a xform.Answer) *Component {
		i := instance(a)
		if comps[i] == nil {
			comps[i] = &Component{Position: i}
		}
		return comps[i]
	}
	for _, a := range r.byAttr["components.type"] {
		component(a).Kind = Ref{Value: strings.TrimSpace(a.Raw), At: a.At}
	}
	for _, a := range r.byAttr["components.max_marks"] {
		v, err := numberOf(a)
		if err != nil {
			return err
		}
		c := component(a)
		c.Max, c.MaxAt = *v, a.At
	}
	for _, a := range r.byAttr["components.pass_percent"] {
		v, err := numberOf(a)
		if err != nil {
			return err
		}
		if err := percent(a.At, v); err != nil {
			return err
		}
		component(a).PassPct = v
	}
	positions := make([]int, 0, len(comps))
	for i := range comps {
		positions = append(positions, i)
	}
	slices.Sort(positions)
	sum := 0.0
	for _, i := range positions {
		c := comps[i]
		if c.Kind.Value == "" || c.Max <= 0 {
			return refuse(fmt.Sprintf("/%s/%s[%d]", r.root, repeatOf(r.rel("components.type")), i), CodeInvalid,
				"a component needs a type and maximum marks above 0")
		}
		sum += c.Max
		b.Components = append(b.Components, *c)
	}
	if b.Total != nil && len(b.Components) > 0 && sum != *b.Total {
		return refuse(r.at("total_marks"), CodeInvalid, "components add up to %g marks but total_marks is %g", sum, *b.Total)
	}
	if b.Total == nil && len(b.Components) > 0 {
		b.Total = &sum
	}
	return nil
}

// percent refuses, at at, a pass percentage outside 0–100.
func percent(at string, v *float64) error {
	if v != nil && (*v < 0 || *v > 100) {
		return refuse(at, CodeInvalid, "pass percentage %g is not 0–100", *v)
	}
	return nil
}

// repeatOf is the repeat part of a repeat field's mapped path.
func repeatOf(rel string) string { return rel[:max(strings.LastIndexByte(rel, '/'), 0)] }

// academicYear writes 2022-2023 (the programme's form) as 2022-23 (shala's
// academic_year ids); anything else is looked up as it is.
func academicYear(s string) string {
	if len(s) == 9 && s[4] == '-' {
		from, err1 := strconv.Atoi(s[:4])
		to, err2 := strconv.Atoi(s[5:])
		if err1 == nil && err2 == nil && to == from+1 {
			return s[:5] + s[7:]
		}
	}
	return s
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
