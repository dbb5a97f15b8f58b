package xform

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Submission is a parsed instance document.
type Submission struct {
	FormID       string
	Version      string
	Root         string
	InstanceID   string
	DeprecatedID string
	InstanceName string

	tree *node
}

// ParseSubmission parses an instance document and reads its header: the
// form id and version on the root element and meta/instanceID, which every
// submission must have (it is the idempotency key).
func ParseSubmission(data []byte) (*Submission, error) {
	root, err := parse(data)
	if err != nil {
		return nil, err
	}
	s := &Submission{tree: root, Root: root.name.Local, FormID: root.attr("id"), Version: root.attr("version")}
	if s.Root == "html" {
		return nil, fmt.Errorf("root element <h:html>: this is a form definition, not a submission")
	}
	if s.FormID == "" {
		return nil, fmt.Errorf("root element <%s>: id attribute (the form id) missing", s.Root)
	}
	if meta := root.child("meta"); meta != nil { // meta or orx:meta
		s.InstanceID = textOf(meta.child("instanceID"))
		s.DeprecatedID = textOf(meta.child("deprecatedID"))
		s.InstanceName = textOf(meta.child("instanceName"))
	}
	if s.InstanceID == "" {
		// Forms from before the meta block put it under the root, as ODK
		// Central also reads it.
		s.InstanceID = textOf(root.child("instanceID"))
	}
	if s.InstanceID == "" {
		return nil, fmt.Errorf("/%s/meta/instanceID: missing; every submission needs one", s.Root)
	}
	if len(s.InstanceID) > 200 {
		return nil, fmt.Errorf("/%s/meta/instanceID: longer than 200 characters", s.Root)
	}
	return s, nil
}

// Geo is a geopoint.
type Geo struct {
	Lat, Lon, Alt, Accuracy float64
}

// Answer is one field's value in one repeat instance.
type Answer struct {
	Field   *Field
	Index   []int  // 1-based position in each enclosing repeat, outermost first
	At      string // where the value is in the submission: /data/member[2]/member_age
	Raw     string
	Number  *float64   // int and decimal
	Time    *time.Time // date (UTC midnight) and dateTime
	Bool    *bool
	Choices []string // select1 (one) and select (each selected value)
	Geo     *Geo
}

// FieldError is a value that does not fit its field.
type FieldError struct {
	Path   string `json:"path"` // with repeat positions: /data/member[2]/member_age
	Reason string `json:"reason"`
}

func (e FieldError) String() string { return e.Path + ": " + e.Reason }

// Answers reads s's values against f: every non-empty leaf becomes an
// Answer coerced to its field's type; values that do not fit, and elements
// the form does not have, are FieldErrors. meta/ is submission metadata,
// not answers.
func (f *Form) Answers(s *Submission) ([]Answer, []FieldError) {
	var (
		answers []Answer
		errs    []FieldError
	)
	var walk func(n *node, path, shown string, index []int)
	walk = func(n *node, path, shown string, index []int) {
		seen := map[string]int{}
		for _, c := range n.children {
			p := path + "/" + c.name.Local
			sp := shown + "/" + c.name.Local
			idx := index
			seen[c.name.Local]++
			if contains(f.Repeats, p) {
				idx = append(append([]int(nil), index...), seen[c.name.Local])
				sp = fmt.Sprintf("%s[%d]", sp, seen[c.name.Local])
			} else if seen[c.name.Local] == 2 {
				errs = append(errs, FieldError{Path: sp, Reason: "appears more than once but is not a repeat"})
				continue
			} else if seen[c.name.Local] > 2 {
				continue
			}
			if p == "/"+f.Root+"/meta" {
				continue
			}
			if len(c.children) > 0 {
				if !f.groups[p] {
					errs = append(errs, FieldError{Path: sp, Reason: fmt.Sprintf("not in form %s version %s", f.ID, f.Version)})
					continue
				}
				walk(c, p, sp, idx)
				continue
			}
			fl := f.byPath[p]
			if fl == nil {
				if f.groups[p] {
					continue // an empty group or repeat
				}
				errs = append(errs, FieldError{Path: sp, Reason: fmt.Sprintf("not in form %s version %s", f.ID, f.Version)})
				continue
			}
			raw := c.Text()
			if raw == "" {
				continue
			}
			if n := utf8.RuneCountInString(raw); n > MaxAnswerLength {
				errs = append(errs, FieldError{Path: sp, Reason: fmt.Sprintf("%d characters, more than the %d an answer may have", n, MaxAnswerLength)})
				continue
			}
			a, reason := coerce(fl, raw)
			if reason != "" {
				errs = append(errs, FieldError{Path: sp, Reason: reason})
				continue
			}
			a.Index, a.At = idx, sp
			answers = append(answers, a)
		}
	}
	walk(s.tree, "/"+s.Root, "/"+s.Root, nil)
	return answers, errs
}

// MaxAnswerLength is the most characters one answer may have (the
// answer.value_text constraint).
const MaxAnswerLength = 10000

// decimalSyntax is xsd:decimal, plus the exponent JavaRosa writes for large
// values (1.0E7); Postgres numeric reads exactly these, where Go's ParseFloat
// would also take hex floats, underscores and "Inf".
var decimalSyntax = regexp.MustCompile(`^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// Value types raw, a non-empty value of fl as a submission holds it (a
// multiple choice's values separated by spaces), as Answers does; reason
// says why it does not fit, naming no field.
func (fl *Field) Value(raw string) (a Answer, reason string) { return coerce(fl, raw) }

func coerce(fl *Field, raw string) (Answer, string) {
	a := Answer{Field: fl, Raw: raw}
	switch fl.Type {
	case Int:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || !decimalSyntax.MatchString(raw) {
			return a, fmt.Sprintf("%q is not a whole number", short(raw))
		}
		v := float64(n)
		a.Number = &v
	case Decimal:
		v, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || !decimalSyntax.MatchString(raw) {
			return a, fmt.Sprintf("%q is not a number", short(raw))
		}
		a.Number = &v
	case Date:
		// JavaRosa pads (2022-02-28); Enketo's exports and hand-made
		// instances do not always (2022-2-28).
		t, err := time.Parse("2006-1-2", raw)
		if err != nil {
			return a, fmt.Sprintf("%q is not a date (YYYY-MM-DD)", short(raw))
		}
		a.Time = &t
	case DateTime:
		t, err := parseDateTime(raw)
		if err != nil {
			return a, fmt.Sprintf("%q is not a date and time (ISO 8601 with zone)", short(raw))
		}
		a.Time = &t
	case Time:
		if _, err := parseTimeOfDay(raw); err != nil {
			return a, fmt.Sprintf("%q is not a time of day (HH:MM:SS)", short(raw))
		}
	case Boolean:
		switch raw {
		case "true", "1":
			v := true
			a.Bool = &v
		case "false", "0":
			v := false
			a.Bool = &v
		default:
			return a, fmt.Sprintf("%q is not true or false", short(raw))
		}
	case Select1:
		if !fl.HasChoice(raw) {
			return a, fmt.Sprintf("%q is not one of the choices", short(raw))
		}
		a.Choices = []string{raw}
	case Select:
		for _, v := range strings.Fields(raw) {
			if !fl.HasChoice(v) {
				return a, fmt.Sprintf("%q is not one of the choices", short(v))
			}
			if !contains(a.Choices, v) {
				a.Choices = append(a.Choices, v)
			}
		}
	case Geopoint:
		g, err := parseGeo(raw)
		if err != "" {
			return a, err
		}
		a.Geo = g
	}
	return a, ""
}

func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999-07:00", "2006-01-02T15:04:05.999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad dateTime")
}

func parseTimeOfDay(s string) (time.Time, error) {
	for _, layout := range []string{"15:04:05.999-07:00", "15:04:05.999Z07:00", "15:04:05.999", "15:04:05", "15:04"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time")
}

func parseGeo(s string) (*Geo, string) {
	parts := strings.Fields(s)
	if len(parts) < 2 || len(parts) > 4 {
		return nil, fmt.Sprintf("%q is not a geopoint (latitude longitude [altitude [accuracy]])", short(s))
	}
	var nums [4]float64
	for i, p := range parts {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Sprintf("%q is not a geopoint (latitude longitude [altitude [accuracy]])", short(s))
		}
		nums[i] = v
	}
	if nums[0] < -90 || nums[0] > 90 || nums[1] < -180 || nums[1] > 180 {
		return nil, fmt.Sprintf("%q: latitude must be within ±90 and longitude within ±180", short(s))
	}
	return &Geo{Lat: nums[0], Lon: nums[1], Alt: nums[2], Accuracy: nums[3]}, ""
}

func short(s string) string {
	r := []rune(s)
	if len(r) > 60 {
		return string(r[:60]) + "…"
	}
	return s
}
