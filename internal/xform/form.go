package xform

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Type is a field's value type, from its bind (and control, for selects).
type Type string

// Field types.
const (
	String   Type = "string"
	Int      Type = "int"
	Decimal  Type = "decimal"
	Date     Type = "date"
	DateTime Type = "dateTime"
	Time     Type = "time"
	Select1  Type = "select1"
	Select   Type = "select"
	Geopoint Type = "geopoint"
	Boolean  Type = "boolean"
	Binary   Type = "binary"
	Barcode  Type = "barcode"
	Geotrace Type = "geotrace"
	Geoshape Type = "geoshape"
)

var knownTypes = map[string]Type{
	"string": String, "int": Int, "integer": Int, "decimal": Decimal, "date": Date, "dateTime": DateTime,
	"time": Time, "select1": Select1, "select": Select, "geopoint": Geopoint, "boolean": Boolean,
	"binary": Binary, "barcode": Barcode, "geotrace": Geotrace, "geoshape": Geoshape,
	// ODK's rank control submits every choice, space separated, in order.
	"odk:rank": Select,
}

// Form is a parsed form definition.
type Form struct {
	ID      string
	Version string
	Title   string
	Root    string // the instance's root element name
	// Fields are the instance's leaves in document order.
	Fields []*Field
	// Repeats are the paths of repeat groups.
	Repeats   []string
	Languages []string
	// DefaultLanguage is the itext translation marked default="true()", or
	// the first one when none is marked (as ODK clients choose); "" when
	// the form has no translations (its labels are under "default").
	DefaultLanguage string

	byPath map[string]*Field
	groups map[string]bool
}

// Field is one leaf of the instance.
type Field struct {
	Path     string // /data/economy/monthly_income
	Name     string // unique variable name for rules: the last segment, or path segments joined by __ when that clashes
	Type     Type
	Repeat   string // innermost repeat group containing the field, or ""
	Required bool
	Labels   map[string]string // language → label
	Choices  []Choice
	Position int
}

// Choice is one option of a select.
type Choice struct {
	Value  string
	Labels map[string]string
}

// Field returns the field at path, or nil.
func (f *Form) Field(path string) *Field { return f.byPath[path] }

// HasChoice reports whether value is one of the field's static choices;
// fields whose choices are not known statically (external itemsets) accept
// any value.
func (fl *Field) HasChoice(value string) bool {
	if len(fl.Choices) == 0 {
		return true
	}
	for _, c := range fl.Choices {
		if c.Value == value {
			return true
		}
	}
	return false
}

var (
	itextRef    = regexp.MustCompile(`jr:itext\(\s*'([^']+)'\s*\)`)
	instanceRef = regexp.MustCompile(`instance\(\s*'([^']+)'\s*\)`)
	formIDPat   = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,100}$`)
	// xlsformID is an XLSForm name (pyxform's rule for XML identifiers: a
	// letter or underscore, then letters, digits, '_', '-' or '.'), in
	// ASCII as the form table's id check wants.
	xlsformID = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,99}$`)
	// xlsformVersion: the same characters, starting with a letter, digit or
	// '_' (XLSForm's usual yyyymmddrr, 1.2, v3). A form may have no version
	// at all (Central serves it as version "").
	xlsformVersion = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$`)
)

// Unversioned stands for version "" (a definition without a version
// attribute) in the URLs forms are downloaded from, as in ODK Central's; no
// form may have it as its real version.
const Unversioned = "___"

// CheckNames refuses a form id or version that XLSForm would not produce:
// ids and versions become path segments of the URLs ODK Collect downloads
// forms from, so no '/', no spaces, never "." or "..". Registration applies
// it; definitions registered before it still parse.
func (f *Form) CheckNames() error {
	if !xlsformID.MatchString(f.ID) {
		return fmt.Errorf("instance root <%s>: id %q must start with a letter or '_' and have up to 100 letters, digits, '_', '-' or '.'", f.Root, f.ID)
	}
	if f.Version != "" && !xlsformVersion.MatchString(f.Version) {
		return fmt.Errorf("instance root <%s id=%q>: version %q must be up to 100 letters, digits, '_', '-' or '.', not starting with '.'", f.Root, f.ID, f.Version)
	}
	if f.Version == Unversioned {
		return fmt.Errorf("instance root <%s id=%q>: version %q stands for a form without a version in form URLs (as in ODK Central): choose another", f.Root, f.ID, f.Version)
	}
	return nil
}

// ParseDefinition parses an XForm definition.
func ParseDefinition(data []byte) (*Form, error) {
	root, err := parse(data)
	if err != nil {
		return nil, err
	}
	if root.name.Local != "html" {
		return nil, fmt.Errorf("root element <%s>: an XForm definition starts with <h:html>", root.name.Local)
	}
	head := root.child("head")
	body := root.child("body")
	if head == nil || body == nil {
		return nil, fmt.Errorf("an XForm needs <h:head> and <h:body>")
	}
	model := head.child("model")
	if model == nil {
		return nil, fmt.Errorf("<h:head> has no <model>")
	}
	// Never nil: a form without translations has no languages, and that is
	// an empty list, not a missing one.
	f := &Form{byPath: map[string]*Field{}, groups: map[string]bool{}, Fields: []*Field{}, Repeats: []string{}, Languages: []string{}}
	if t := head.child("title"); t != nil {
		f.Title = t.Text()
	}

	var primary *node
	secondary := map[string]*node{}
	for _, inst := range model.all("instance") {
		if id := inst.attr("id"); id != "" {
			if len(inst.children) > 0 {
				secondary[id] = inst.children[0]
			}
			continue
		}
		if primary == nil && len(inst.children) > 0 {
			primary = inst.children[0]
		}
	}
	if primary == nil {
		return nil, fmt.Errorf("<model> has no primary <instance>")
	}
	f.Root = primary.name.Local
	f.ID = primary.attr("id")
	// No version attribute is version "" (ODK Central stores it so): XLSForm
	// writes none when the settings sheet has no version.
	f.Version = primary.attr("version")
	if !formIDPat.MatchString(f.ID) {
		return nil, fmt.Errorf("instance root <%s>: id %q must be 1–100 letters, digits, '_', '.' or '-'", f.Root, f.ID)
	}
	if f.Title == "" {
		f.Title = f.ID
	}

	translations := itext(model)
	f.DefaultLanguage = defaultLanguage(model)
	for lang := range translations {
		f.Languages = append(f.Languages, lang)
	}
	sort.Strings(f.Languages)

	// Leaves of the primary instance are the fields; elements with
	// jr:template are repeats.
	var collect func(n *node, path, repeat string)
	collect = func(n *node, path, repeat string) {
		if n.hasAttr("template") {
			repeat = path
			if !contains(f.Repeats, path) {
				f.Repeats = append(f.Repeats, path)
			}
		}
		if len(n.children) == 0 {
			if _, dup := f.byPath[path]; dup {
				return // a repeat's template and its first instance both list the leaf
			}
			fl := &Field{Path: path, Type: String, Repeat: repeat, Position: len(f.Fields), Labels: map[string]string{}}
			f.Fields = append(f.Fields, fl)
			f.byPath[path] = fl
			return
		}
		f.groups[path] = true
		for _, c := range n.children {
			collect(c, path+"/"+c.name.Local, repeat)
		}
	}
	for _, c := range primary.children {
		collect(c, "/"+f.Root+"/"+c.name.Local, "")
	}

	for _, b := range model.all("bind") {
		fl := f.byPath[absolute(f.Root, b.attr("nodeset"))]
		if fl == nil {
			continue // binds on groups (relevant) or on nothing
		}
		if t := b.attr("type"); t != "" {
			t = strings.TrimPrefix(t, "xsd:")
			typ, ok := knownTypes[t]
			if !ok {
				return nil, fmt.Errorf("bind %s: unknown type %q", fl.Path, t)
			}
			fl.Type = typ
		}
		fl.Required = strings.HasPrefix(strings.TrimSpace(b.attr("required")), "true")
	}

	// Body controls give select types, labels and choices; repeats declared
	// only in the body are repeats too.
	body.walk(func(n *node) {
		switch n.name.Local {
		case "repeat":
			p := absolute(f.Root, n.attr("nodeset"))
			if f.groups[p] && !contains(f.Repeats, p) {
				f.Repeats = append(f.Repeats, p)
				for _, fl := range f.Fields {
					if strings.HasPrefix(fl.Path, p+"/") && len(p) > len(fl.Repeat) {
						fl.Repeat = p
					}
				}
			}
		case "input", "select1", "select", "upload", "range", "rank", "trigger":
			fl := f.byPath[absolute(f.Root, n.attr("ref"))]
			if fl == nil {
				return
			}
			fl.Labels = labels(n.child("label"), translations)
			if len(fl.Labels) == 0 {
				// A question with only a hint (pyxform allows it): the hint
				// is the text the collector saw.
				fl.Labels = labels(n.child("hint"), translations)
			}
			switch n.name.Local {
			case "select1":
				fl.Type = Select1
			case "select", "rank":
				fl.Type = Select
			}
			for _, it := range n.all("item") {
				fl.Choices = append(fl.Choices, Choice{Value: textOf(it.child("value")), Labels: labels(it.child("label"), translations)})
			}
			if is := n.child("itemset"); is != nil {
				fl.Choices = append(fl.Choices, itemset(is, secondary, translations)...)
			}
		}
	})
	f.nameFields()
	return f, nil
}

// nameFields gives each field a variable name: its last segment when that is
// unique in the form, else the path below the root joined by "__".
func (f *Form) nameFields() {
	count := map[string]int{}
	for _, fl := range f.Fields {
		count[last(fl.Path)]++
	}
	for _, fl := range f.Fields {
		fl.Name = last(fl.Path)
		if count[fl.Name] > 1 {
			fl.Name = strings.ReplaceAll(strings.TrimPrefix(fl.Path, "/"+f.Root+"/"), "/", "__")
		}
	}
}

func last(path string) string { return path[strings.LastIndexByte(path, '/')+1:] }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// absolute normalises a nodeset or ref to an absolute path of local names:
// /data/orx:meta/orx:instanceID (older pyxform, ODK Build, Enketo) is
// /data/meta/instanceID, as the instance's elements are keyed.
func absolute(root, ref string) string {
	ref = strings.TrimSpace(ref)
	if !strings.HasPrefix(ref, "/") {
		ref = "/" + root + "/" + ref
	}
	if !strings.Contains(ref, ":") {
		return ref
	}
	steps := strings.Split(ref, "/")
	for i, s := range steps {
		if j := strings.IndexByte(s, ':'); j >= 0 && !strings.ContainsAny(s[:j], "[(") {
			steps[i] = s[j+1:]
		}
	}
	return strings.Join(steps, "/")
}

func textOf(n *node) string {
	if n == nil {
		return ""
	}
	return n.Text()
}

// itext reads <itext>: language → text id → label.
func itext(model *node) map[string]map[string]string {
	out := map[string]map[string]string{}
	it := model.child("itext")
	if it == nil {
		return out
	}
	for _, tr := range it.all("translation") {
		lang := tr.attr("lang")
		texts := map[string]string{}
		for _, t := range tr.all("text") {
			for _, v := range t.all("value") {
				if form := v.attr("form"); form == "" || form == "long" {
					texts[t.attr("id")] = v.Text()
					break
				}
			}
		}
		out[lang] = texts
	}
	return out
}

// defaultLanguage is the translation marked default="true()" (pyxform
// writes that), else the first in document order.
func defaultLanguage(model *node) string {
	it := model.child("itext")
	if it == nil {
		return ""
	}
	first := ""
	for _, tr := range it.all("translation") {
		if first == "" {
			first = tr.attr("lang")
		}
		if d := strings.TrimSpace(tr.attr("default")); d == "true()" || d == "true" {
			return tr.attr("lang")
		}
	}
	return first
}

// labels resolves a <label>: inline text (language "default"), or a
// jr:itext reference in every language.
func labels(label *node, translations map[string]map[string]string) map[string]string {
	out := map[string]string{}
	if label == nil {
		return out
	}
	if m := itextRef.FindStringSubmatch(label.attr("ref")); m != nil {
		for lang, texts := range translations {
			if t, ok := texts[m[1]]; ok {
				out[lang] = t
			}
		}
		return out
	}
	if t := label.Text(); t != "" {
		out["default"] = t
	}
	return out
}

// itemset resolves choices from a secondary instance, as pyxform writes
// them: <itemset nodeset="instance('list')/root/item[…]"><value ref="name"/>
// <label ref="label"/> or <label ref="jr:itext(itextId)"/>.
func itemset(is *node, secondary map[string]*node, translations map[string]map[string]string) []Choice {
	m := instanceRef.FindStringSubmatch(is.attr("nodeset"))
	if m == nil {
		return nil // external or computed: not known statically
	}
	inst := secondary[m[1]]
	if inst == nil {
		return nil
	}
	valueRef := "name"
	if v := is.child("value"); v != nil && v.attr("ref") != "" {
		valueRef = v.attr("ref")
	}
	labelRef := "label"
	if l := is.child("label"); l != nil && l.attr("ref") != "" {
		labelRef = l.attr("ref")
	}
	var out []Choice
	for _, item := range inst.all("item") {
		c := Choice{Value: textOf(item.child(valueRef)), Labels: map[string]string{}}
		if strings.HasPrefix(labelRef, "jr:itext(") {
			if id := textOf(item.child(strings.TrimSuffix(strings.TrimPrefix(labelRef, "jr:itext("), ")"))); id != "" {
				for lang, texts := range translations {
					if t, ok := texts[id]; ok {
						c.Labels[lang] = t
					}
				}
			}
		} else if l := textOf(item.child(labelRef)); l != "" {
			c.Labels["default"] = l
		}
		if c.Value != "" {
			out = append(out, c)
		}
	}
	return out
}
