package xform_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/xform"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func household(t testing.TB) *xform.Form {
	t.Helper()
	f, err := xform.ParseDefinition(read(t, "household_survey.xml"))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestParseHouseholdDefinition(t *testing.T) {
	t.Parallel()
	f := household(t)
	if f.ID != "household_survey" || f.Version != "2026111501" || f.Title != "Household Survey 2026" || f.Root != "data" {
		t.Fatalf("header %q %q %q %q", f.ID, f.Version, f.Title, f.Root)
	}
	if len(f.Repeats) != 1 || f.Repeats[0] != "/data/member" {
		t.Errorf("repeats %v", f.Repeats)
	}
	if strings.Join(f.Languages, "|") != "English|Hindi (hi)" {
		t.Errorf("languages %v", f.Languages)
	}
	if f.DefaultLanguage != "English" {
		t.Errorf("default language: got %q, want English (marked default=\"true()\")", f.DefaultLanguage)
	}
	tests := []struct {
		path, name string
		typ        xform.Type
		repeat     string
		choices    int
		hindi      string
		required   bool
	}{
		{"/data/economy/monthly_income", "monthly_income", xform.Decimal, "", 0, "परिवार की मासिक आय (₹)", false},
		{"/data/economy/income_sources", "income_sources", xform.Select, "", 5, "आय के स्रोत", false},
		{"/data/home/has_toilet", "has_toilet", xform.Select1, "", 2, "क्या घर में शौचालय है?", false},
		{"/data/location/gps", "gps", xform.Geopoint, "", 0, "घर की जीपीएस स्थिति", false},
		{"/data/member/member_age", "member_age", xform.Int, "/data/member", 0, "आयु (वर्ष)", false},
		{"/data/respondent/name", "name", xform.String, "", 0, "उत्तरदाता का नाम", true},
		{"/data/survey_date", "survey_date", xform.Date, "", 0, "भेंट की तिथि", true},
		{"/data/start", "start", xform.DateTime, "", 0, "", false},
		{"/data/home/photo", "photo", xform.Binary, "", 0, "", false},
	}
	for _, tt := range tests {
		fl := f.Field(tt.path)
		if fl == nil {
			t.Errorf("%s: missing", tt.path)
			continue
		}
		if fl.Name != tt.name || fl.Type != tt.typ || fl.Repeat != tt.repeat || len(fl.Choices) != tt.choices ||
			fl.Labels["Hindi (hi)"] != tt.hindi || fl.Required != tt.required {
			t.Errorf("%s: got %+v", tt.path, *fl)
		}
	}
	if c := f.Field("/data/economy/income_sources").Choices[1]; c.Value != "horticulture" || c.Labels["Hindi (hi)"] != "बागवानी (सेब)" {
		t.Errorf("choice %+v", c)
	}
}

func TestHouseholdSubmissionAnswers(t *testing.T) {
	t.Parallel()
	f := household(t)
	s, err := xform.ParseSubmission(read(t, "household_submission.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.FormID != "household_survey" || s.Version != "2026111501" || s.InstanceID != "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b" || s.InstanceName != "सुनीता ठाकुर - Matiana" {
		t.Fatalf("header %+v", s)
	}
	answers, errs := f.Answers(s)
	if len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	byKey := map[string]xform.Answer{}
	members := 0
	for _, a := range answers {
		key := a.Field.Name
		if a.Field.Repeat != "" {
			key += "#" + strconv.Itoa(a.Index[0])
		}
		byKey[key] = a
		if a.Field.Name == "member_name" {
			members++
		}
	}
	if members != 3 {
		t.Errorf("%d members, want 3", members)
	}
	if a := byKey["monthly_savings"]; a.Number == nil || *a.Number != 2500.5 {
		t.Errorf("savings %+v", a)
	}
	if a := byKey["income_sources"]; strings.Join(a.Choices, ",") != "horticulture,wages" {
		t.Errorf("income sources %v", a.Choices)
	}
	if a := byKey["gps"]; a.Geo == nil || a.Geo.Lat != 31.1561 || a.Geo.Accuracy != 4.8 {
		t.Errorf("gps %+v", a.Geo)
	}
	if a := byKey["member_age#3"]; a.Number == nil || *a.Number != 11 || a.Index[0] != 3 {
		t.Errorf("third member's age %+v", a)
	}
	if a := byKey["start"]; a.Time == nil || a.Time.UTC().Format("15:04") != "04:32" {
		t.Errorf("start %+v", a.Time)
	}
	if _, ok := byKey["remarks"]; ok {
		t.Error("the empty remarks became an answer")
	}
}

func TestValuesThatDoNotFitAreListedWithTheirPaths(t *testing.T) {
	t.Parallel()
	f := household(t)
	bad := strings.NewReplacer(
		"<monthly_income>18000</monthly_income>", "<monthly_income>अठारह हज़ार</monthly_income>",
		"<member_age>41</member_age>", "<member_age>41.5</member_age>",
		"<has_toilet>yes</has_toilet>", "<has_toilet>maybe</has_toilet>",
		"<gps>31.1561 77.3592 2205.4 4.8</gps>", "<gps>131.1 77.3</gps>",
		"<survey_date>2026-11-20</survey_date>", "<survey_date>20/11/2026</survey_date>",
		"<remarks/>", "<remarks>"+strings.Repeat("ब", 10001)+"</remarks><favourite_colour>blue</favourite_colour>",
		"<monthly_savings>2500.50</monthly_savings>", "<monthly_savings>0x1p4</monthly_savings>",
		"<rooms>3</rooms>", "<rooms>3</rooms><rooms>4</rooms>",
		"<household_size>3</household_size>", "<household_size>1_0</household_size>",
	).Replace(string(read(t, "household_submission.xml")))
	s, err := xform.ParseSubmission([]byte(bad))
	if err != nil {
		t.Fatal(err)
	}
	_, errs := f.Answers(s)
	want := map[string]string{
		"/data/economy/monthly_income": "is not a number",
		"/data/member[2]/member_age":   "is not a whole number",
		"/data/home/has_toilet":        "is not one of the choices",
		"/data/location/gps":           "latitude must be within",
		"/data/survey_date":            "is not a date",
		"/data/favourite_colour":       "not in form household_survey version 2026111501",
		// What Postgres would refuse is refused here, with its path.
		"/data/remarks":                 "10001 characters, more than the 10000",
		"/data/economy/monthly_savings": "is not a number",
		"/data/home/rooms":              "appears more than once",
		"/data/household_size":          "is not a whole number",
	}
	got := map[string]string{}
	for _, e := range errs {
		got[e.Path] = e.Reason
	}
	for path, reason := range want {
		if !strings.Contains(got[path], reason) {
			t.Errorf("%s: got %q, want it to say %q", path, got[path], reason)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors %v, want %d", len(errs), errs, len(want))
	}
}

func TestAssessmentBuilderDefinition(t *testing.T) {
	t.Parallel()
	f, err := xform.ParseDefinition(read(t, "assessment_builder.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != "assessment_builder" || len(f.Repeats) != 2 {
		t.Fatalf("%s repeats %v", f.ID, f.Repeats)
	}
	s, err := xform.ParseSubmission(read(t, "assessment_submission.xml"))
	if err != nil {
		t.Fatal(err)
	}
	answers, errs := f.Answers(s)
	if len(errs) != 0 {
		t.Fatalf("errors %v", errs)
	}
	subjects := 0
	for _, a := range answers {
		if a.Field.Name == "subjects" {
			subjects += len(a.Choices)
		}
	}
	if subjects != 4 {
		t.Errorf("%d grade-subject selections, want 4", subjects)
	}
}

func TestHostileDocuments(t *testing.T) {
	t.Parallel()
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><data id="x"><a>&lol2;</a><meta><instanceID>uuid:1</instanceID></meta></data>`
	external := `<?xml version="1.0"?><!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><data id="x"><a>&xxe;</a><meta><instanceID>uuid:1</instanceID></meta></data>`
	undeclared := `<data id="x"><a>&xxe;</a><meta><instanceID>uuid:1</instanceID></meta></data>`
	deep := `<data id="x">` + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100) + `<meta><instanceID>uuid:1</instanceID></meta></data>`
	tests := []struct {
		name, doc string
		want      error
		mention   string
	}{
		{"billion laughs", laughs, xform.ErrDTD, ""},
		{"external entity", external, xform.ErrDTD, ""},
		{"undeclared entity", undeclared, xform.ErrNotXML, ""},
		{"deep nesting", deep, xform.ErrTooDeep, ""},
		{"not xml", `{"json": true}`, xform.ErrNotXML, ""},
		{"unclosed", `<data id="x"><a>`, xform.ErrNotXML, ""},
		{"two roots", `<data id="x"/><data id="y"/>`, xform.ErrNotXML, ""},
		{"definition as submission", string(read(t, "household_survey.xml")), nil, "form definition"},
		{"no form id", `<data><meta><instanceID>uuid:1</instanceID></meta></data>`, nil, "id attribute"},
		{"no instanceID", `<data id="household_survey" version="1"><a>1</a></data>`, nil, "instanceID: missing"},
	}
	for _, tt := range tests {
		_, err := xform.ParseSubmission([]byte(tt.doc))
		if err == nil {
			t.Errorf("%s: accepted", tt.name)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%s: %v, want it to mention %q", tt.name, err, tt.mention)
		}
	}
	if _, err := xform.ParseDefinition([]byte(laughs)); !errors.Is(err, xform.ErrDTD) {
		t.Errorf("definition with a DTD: %v", err)
	}
}

func TestItemsetChoicesFromSecondaryInstance(t *testing.T) {
	t.Parallel()
	def := `<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" xmlns:jr="http://openrosa.org/javarosa">
<h:head><h:title>Itemsets</h:title><model>
<itext><translation lang="Hindi (hi)" default="true()"><text id="static_instance-crops-0"><value>सेब</value></text><text id="static_instance-crops-1"><value>मक्का</value></text></translation></itext>
<instance><data id="crops" version="3"><crop/><meta><instanceID/></meta></data></instance>
<instance id="crops"><root><item><itextId>static_instance-crops-0</itextId><name>apple</name></item><item><itextId>static_instance-crops-1</itextId><name>maize</name></item></root></instance>
<bind nodeset="/data/crop" type="string"/></model></h:head>
<h:body><select1 ref="/data/crop"><label>Crop</label><itemset nodeset="instance('crops')/root/item"><value ref="name"/><label ref="jr:itext(itextId)"/></itemset></select1></h:body></h:html>`
	f, err := xform.ParseDefinition([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	fl := f.Field("/data/crop")
	if fl.Type != xform.Select1 || len(fl.Choices) != 2 || fl.Choices[0].Value != "apple" || fl.Choices[0].Labels["Hindi (hi)"] != "सेब" {
		t.Errorf("crop %+v", fl)
	}
}

func BenchmarkParseSubmission(b *testing.B) {
	f := household(b)
	doc := read(b, "household_submission.xml")
	b.ReportAllocs()
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		s, err := xform.ParseSubmission(doc)
		if err != nil {
			b.Fatal(err)
		}
		if _, errs := f.Answers(s); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func FuzzParseSubmission(f *testing.F) {
	form, err := xform.ParseDefinition(read(f, "household_survey.xml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(read(f, "household_submission.xml"))
	f.Add(read(f, "assessment_submission.xml"))
	f.Add([]byte(`<data id="household_survey" version="2026111501"><member><member_age>7</member_age></member><meta><instanceID>uuid:x</instanceID></meta></data>`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := xform.ParseSubmission(doc)
		if err != nil {
			return
		}
		if s.InstanceID == "" || s.FormID == "" {
			t.Fatalf("accepted without instanceID or form id: %+v", s)
		}
		answers, errs := form.Answers(s)
		for _, a := range answers {
			if a.Field == nil || a.Raw == "" {
				t.Fatalf("answer without field or value: %+v", a)
			}
		}
		for _, e := range errs {
			if e.Path == "" || e.Reason == "" {
				t.Fatalf("error without path or reason: %+v", e)
			}
		}
	})
}

// shapes are definitions as pyxform and Enketo write them that the
// household survey does not cover, each with one valid submission. Every
// one must parse, and its submission must read without errors.
var shapes = []struct {
	name, file string
	check      func(t *testing.T, f *xform.Form, answers []xform.Answer)
}{
	{"no itext: plain labels, choices from secondary instances", "plain", func(t *testing.T, f *xform.Form, answers []xform.Answer) {
		if f.Languages == nil || len(f.Languages) != 0 {
			t.Errorf("languages %#v, want an empty list", f.Languages)
		}
		if got := f.Field("/data/village").Labels["default"]; got != "Village" {
			t.Errorf("label %q", got)
		}
		if fl := f.Field("/data/source_type"); fl.Type != xform.Select1 || len(fl.Choices) != 3 || fl.Choices[2].Labels["default"] != "Spring" {
			t.Errorf("source_type %+v", fl)
		}
	}},
	{"itext with one language", "one_language", func(t *testing.T, f *xform.Form, _ []xform.Answer) {
		if strings.Join(f.Languages, "|") != "Hindi (hi)" {
			t.Errorf("languages %v", f.Languages)
		}
		if fl := f.Field("/data/meal_served"); len(fl.Choices) != 2 || fl.Choices[0].Labels["Hindi (hi)"] != "हाँ" {
			t.Errorf("meal_served %+v", fl)
		}
	}},
	{"itext entries with media only", "media_itext", func(t *testing.T, f *xform.Form, _ []xform.Answer) {
		if fl := f.Field("/data/animal"); len(fl.Choices) != 2 || fl.Labels == nil || len(fl.Labels) != 0 {
			t.Errorf("animal %+v: want two choices and no text label", fl)
		}
		if got := f.Field("/data/child_name").Labels["default"]; got != "Child's name" {
			t.Errorf("child_name label %q", got)
		}
	}},
	{"hint-only questions", "hint_only", func(t *testing.T, f *xform.Form, _ []xform.Answer) {
		if got := f.Field("/data/books_issued").Labels["default"]; got != "Books issued today (count the register)" {
			t.Errorf("a hint-only question's label %q, want its hint", got)
		}
		if got := f.Field("/data/librarian").Labels["default"]; got != "Librarian" {
			t.Errorf("label %q", got)
		}
	}},
	{"notes and a trigger", "note_trigger", func(t *testing.T, f *xform.Form, answers []xform.Answer) {
		if len(answers) != 2 {
			t.Errorf("%d answers, want the name and the acknowledgement (notes are empty)", len(answers))
		}
	}},
	{"odk: extensions (rank, setgeopoint, audit, max-pixels)", "odk_extensions", func(t *testing.T, f *xform.Form, answers []xform.Answer) {
		fl := f.Field("/data/priorities")
		if fl.Type != xform.Select || len(fl.Choices) != 3 {
			t.Errorf("rank %+v", fl)
		}
		for _, a := range answers {
			if a.Field == fl && strings.Join(a.Choices, " ") != "toilets roof ramp" {
				t.Errorf("rank order %v", a.Choices)
			}
		}
	}},
	{"no version attribute (version \"\", as in ODK Central)", "unversioned", func(t *testing.T, f *xform.Form, answers []xform.Answer) {
		if f.Version != "" || len(answers) != 2 {
			t.Errorf("version %q, %d answers", f.Version, len(answers))
		}
	}},
	{"orx:meta instead of meta", "orx_meta", func(t *testing.T, f *xform.Form, answers []xform.Answer) {
		if fl := f.Field("/data/meta/timeStart"); fl == nil || fl.Type != xform.DateTime {
			t.Errorf("a bind on /data/orx:meta/orx:timeStart: %+v", fl)
		}
		if len(answers) != 2 {
			t.Errorf("%d answers, want 2 (meta is not an answer)", len(answers))
		}
	}},
}

func TestRealXFormShapes(t *testing.T) {
	t.Parallel()
	for _, tt := range shapes {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := xform.ParseDefinition(read(t, "shapes/"+tt.file+".xml"))
			if err != nil {
				t.Fatalf("definition: %v", err)
			}
			if f.Languages == nil {
				t.Error("languages is nil")
			}
			for _, fl := range f.Fields {
				if fl.Labels == nil {
					t.Errorf("%s: labels is nil", fl.Path)
				}
				for _, c := range fl.Choices {
					if c.Labels == nil {
						t.Errorf("%s choice %s: labels is nil", fl.Path, c.Value)
					}
				}
			}
			sub, err := xform.ParseSubmission(read(t, "shapes/"+tt.file+".instance.xml"))
			if err != nil {
				t.Fatalf("submission: %v", err)
			}
			if sub.InstanceID == "" || sub.FormID != f.ID || sub.Version != f.Version || sub.Root != f.Root {
				t.Errorf("submission header %+v, form %s %s <%s>", sub, f.ID, f.Version, f.Root)
			}
			answers, errs := f.Answers(sub)
			if len(errs) != 0 {
				t.Errorf("errors %v", errs)
			}
			tt.check(t, f, answers)
		})
	}
}

// A version spelled like the URL stand-in for "no version" would share its
// download URL with the unversioned form: registration refuses it.
func TestVersionThatStandsForNoVersionIsRefused(t *testing.T) {
	t.Parallel()
	def := strings.Replace(string(read(t, "household_survey.xml")), `version="2026111501"`, `version="___"`, 1)
	f, err := xform.ParseDefinition([]byte(def))
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != xform.Unversioned {
		t.Fatalf("version %q, want %q", f.Version, xform.Unversioned)
	}
	if err := f.CheckNames(); err == nil || !strings.Contains(err.Error(), "stands for a form without a version") {
		t.Errorf("CheckNames: %v, want the version refused", err)
	}
}
