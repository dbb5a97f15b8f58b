package sms

import (
	"testing"
	"unicode/utf8"
)

func TestSummary(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	letters := []Letter{{"A", 10}, {"B", 8}, {"C", 6}, {"D", 4}, {"E", 2}}
	marks := Scores{Evaluation: "MARKS", MaxMarks: f(100), TopPoints: f(10), PassMark: true, Letters: letters}
	grades := Scores{Evaluation: "GRADE", MaxMarks: f(100), TopPoints: f(10), PassMark: true, Letters: letters}
	withheld := func(why string) Result {
		return Result{"विद्यालय से जानकारी लें", "विद्यालय से जानकारी लें", "विद्यालय से जानकारी लें", why}
	}
	for _, tt := range []struct {
		name     string
		scores   Scores
		subjects []SubjectScore
		missing  bool // a subject of the child's has no row
		lang     string
		want     Result
	}{
		{"marks: each subject out of the subject's maximum, passed in both", marks, []SubjectScore{
			{Final: true, Present: true, Marks: f(90), Passed: true}, {Final: true, Present: true, Marks: f(61.5), Passed: true},
		}, false, "hi", Result{"151.5/200 (75%) उत्तीर्ण", "75% उत्तीर्ण", "75%", ""}},
		{"one subject not passed fails", marks, []SubjectScore{
			{Final: true, Present: true, Marks: f(90), Passed: true}, {Final: true, Present: true, Marks: f(32.9)},
		}, false, "en", Result{"122.9/200 (61%) fail", "61% fail", "61%", ""}},
		{"absent in a subject: its maximum counts, and it is not passed", marks, []SubjectScore{
			{Final: true, Present: true, Marks: f(80), Passed: true}, {Final: true, Present: false},
		}, false, "hi", Result{"80/200 (40%) अनुत्तीर्ण", "40% अनुत्तीर्ण", "40%", ""}},
		{"decimal marks add up as written", marks, []SubjectScore{
			{Final: true, Present: true, Marks: f(10.1), Passed: true}, {Final: true, Present: true, Marks: f(20.2), Passed: true},
		}, false, "en", Result{"30.3/200 (15%) pass", "15% pass", "15%", ""}},
		{"26.4 of 80 is 33%, not 32.99…", Scores{Evaluation: "MARKS", MaxMarks: f(80), PassMark: true}, []SubjectScore{{Final: true, Present: true, Marks: f(26.4), Passed: true}}, false, "en",
			Result{"26.4/80 (33%) pass", "33% pass", "33%", ""}},
		{"a percentage is rounded down: 32.9% is not shown as 33%", marks, []SubjectScore{{Final: true, Present: true, Marks: f(32.9)}}, false, "en",
			Result{"32.9/100 (32%) fail", "32% fail", "32%", ""}},
		{"no pass mark: no verdict", Scores{Evaluation: "MARKS", MaxMarks: f(100)}, []SubjectScore{{Final: true, Present: true, Marks: f(3), Passed: true}}, false, "en",
			Result{"3/100 (3%)", "3%", "3%", ""}},
		{"no maximum known: the marks", Scores{Evaluation: "MARKS", PassMark: true}, []SubjectScore{{Final: true, Present: true, Marks: f(52), Passed: true}}, false, "en",
			Result{"52 marks pass", "52 marks", "52", ""}},
		{"too long for a DLT variable: the short form", Scores{Evaluation: "MARKS", MaxMarks: f(10000), PassMark: true}, []SubjectScore{
			{Final: true, Present: true, Marks: f(9000.25), Passed: true}, {Final: true, Present: true, Marks: f(3000.5), Passed: true}, {Final: true, Present: true, Marks: f(345)},
		}, false, "hi", Result{"41% अनुत्तीर्ण", "41% अनुत्तीर्ण", "41%", ""}},
		{"a subject written in a class not final yet: not said", marks, []SubjectScore{
			{Final: true, Present: true, Marks: f(90), Passed: true}, {Present: true, Marks: f(61.5), Passed: true},
		}, false, "hi", withheld(WhyNotFinal)},
		{"a subject of the class not recorded: not said, not counted as a pass", marks, []SubjectScore{
			{Final: true, Present: true, Marks: f(100), Passed: true},
		}, true, "hi", withheld(WhyMissingSubject)},
		{"more marks in a subject than it has (rows with and without component): not said", marks, []SubjectScore{
			{Final: true, Present: true, Marks: f(200), Passed: true}, {Final: true, Present: true, Marks: f(50), Passed: true},
		}, false, "hi", withheld(WhyOverMaximum)},
		{"grades: the letter at or below the average points", grades, []SubjectScore{
			{Final: true, Present: true, Points: f(10), Passed: true}, {Final: true, Present: true, Points: f(8), Passed: true},
			{Final: true, Present: true, Points: f(6), Passed: true}, {Final: true, Present: true, Points: f(8), Passed: true},
		}, false, "hi", Result{"ग्रेड B (8/10) उत्तीर्ण", "ग्रेड B उत्तीर्ण", "B", ""}},
		{"grades: an average between letters, one subject not passed", grades, []SubjectScore{
			{Final: true, Present: true, Points: f(10), Passed: true}, {Final: true, Present: true, Points: f(4)}, {Final: true, Present: true, Points: f(9), Passed: true},
		}, false, "en", Result{"grade C (7.6/10) fail", "grade C fail", "C", ""}},
		{"grades: the average shown rounded down, as the letter is chosen", grades, []SubjectScore{
			{Final: true, Present: true, Points: f(7.97), Passed: true},
		}, false, "en", Result{"grade C (7.9/10) pass", "grade C pass", "C", ""}},
		{"absent everywhere", marks, []SubjectScore{{Final: true}, {Final: true}}, false, "hi", Result{"अनुपस्थित", "अनुपस्थित", "अनुपस्थित", ""}},
		{"nothing recorded", marks, nil, true, "hi", Result{"दर्ज नहीं", "दर्ज नहीं", "दर्ज नहीं", ""}},
		{"a language without words of its own reads English", marks, nil, false, "pa", Result{"not recorded", "not recorded", "not recorded", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Summary(tt.scores, tt.subjects, tt.missing, tt.lang)
			if got != tt.want {
				t.Errorf("Summary =\n %q\nwant\n %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got.Long); n > MaxVariable {
				t.Errorf("%q has %d characters, more than a DLT variable's %d", got.Long, n, MaxVariable)
			}
		})
	}
}

func TestChildResults(t *testing.T) {
	aarav := Result{"151.5/200 (75%) उत्तीर्ण", "75% उत्तीर्ण", "75%", ""}
	priya := Result{"80/200 (40%) अनुत्तीर्ण", "40% अनुत्तीर्ण", "40%", ""}
	none := Result{"दर्ज नहीं", "दर्ज नहीं", "दर्ज नहीं", ""}
	absent := Result{"अनुपस्थित", "अनुपस्थित", "अनुपस्थित", ""}
	notFinal := withheld("hi", WhyNotFinal)
	sib := func(r Result) child {
		return child{result: r, father: "राजेश कुमार", mother: "सुनीता"}
	}
	const ask = "विद्यालय से जानकारी लें"
	for _, tt := range []struct {
		name      string
		children  []child
		household []child // the school's children on the phone; nil: the message's
		names     int     // names in student_name; 0: one a child
		want, why string
	}{
		{"one child: the whole result", []child{{result: aarav}}, nil, 0, "151.5/200 (75%) उत्तीर्ण", ""},
		{"one child's result not given: why", []child{{result: notFinal}}, nil, 0, ask, WhyNotFinal},
		{"two siblings: the short forms, in order", []child{sib(aarav), sib(priya)}, nil, 0, "75% उत्तीर्ण; 40% अनुत्तीर्ण", ""},
		{"three: the bare forms", []child{sib(aarav), sib(priya), sib(none)}, nil, 0, "75%; 40%; दर्ज नहीं", ""},
		{"a sibling's result not given: neither's", []child{sib(aarav), sib(notFinal)}, nil, 0, ask, WhyNotFinal},
		{"the mother's name as records write it, the father's recorded for one only", []child{
			{result: aarav, father: "Rajesh", mother: "Smt. Sunita Devi"}, {result: priya, father: "", mother: " sunita"},
		}, nil, 0, "75% उत्तीर्ण; 40% अनुत्तीर्ण", ""},
		{"an initial for a name", []child{
			{result: aarav, father: "R. Kumar"}, {result: priya, father: "Rajesh  Kumar"},
		}, nil, 0, "75% उत्तीर्ण; 40% अनुत्तीर्ण", ""},
		{"same mother's name, fathers differ: not siblings", []child{
			{result: aarav, father: "राजेश कुमार", mother: "सुनीता देवी"}, {result: priya, father: "मोहन लाल", mother: "सुनीता देवी"},
		}, nil, 0, ask, WhyHousehold},
		{"strangers on one phone get no one's result", []child{
			{result: aarav, father: "राजेश", mother: "सुनीता"}, {result: priya, father: "मोहन", mother: "गीता"},
		}, nil, 0, ask, WhyHousehold},
		{"parents not recorded: not known to be siblings", []child{{result: aarav}, {result: priya}}, nil, 0, ask, WhyHousehold},
		{"one has only the father's, the other only the mother's: nothing shared", []child{
			{result: aarav, father: "राजेश"}, {result: priya, mother: "सुनीता"},
		}, nil, 0, ask, WhyHousehold},
		{"Devanagari initials, a pipe for a danda, a zero-width joiner", []child{
			{result: aarav, father: "रा. कु. शर्मा|"}, {result: priya, father: "राजेश कुमार\u200d शर्मा"},
		}, nil, 0, "75% उत्तीर्ण; 40% अनुत्तीर्ण", ""},
		{"stand-ins are not names: NA and N/A are not one father", []child{
			{result: aarav, father: "NA", mother: "N.A."}, {result: priya, father: "N/A", mother: "na"},
		}, nil, 0, ask, WhyHousehold},
		{"a word matched whole before an initial's", []child{
			{result: aarav, father: "R. Ramesh"}, {result: priya, father: "Ramesh"},
		}, nil, 0, "75% उत्तीर्ण; 40% अनुत्तीर्ण", ""},
		{"initials alone say neither: the mother's name decides", []child{
			{result: aarav, father: "R. K.", mother: "Sita"}, {result: priya, father: "R K", mother: "Sita Devi"},
		}, nil, 0, "75% उत्तीर्ण; 40% अनुत्तीर्ण", ""},
		{"a conjunct initial", []child{
			{result: aarav, father: "क्ष. शर्मा"}, {result: priya, father: "क्षितिज शर्मा"},
		}, nil, 0, "75% उत्तीर्ण; 40% अनुत्तीर्ण", ""},
		{"'Not Available' is no father", []child{
			{result: aarav, father: "Not Available"}, {result: priya, father: "not available"},
		}, nil, 0, ask, WhyHousehold},
		{"initials alone match no one", []child{
			{result: aarav, father: "R"}, {result: priya, father: "Ramesh Kumar", mother: "Sita"},
		}, nil, 0, ask, WhyHousehold},
		{"names in two scripts do not match", []child{{result: aarav, father: "Rajesh"}, {result: priya, father: "राजेश"}}, nil, 0, ask, WhyHousehold},
		{"more children than student_name names: a shared number", []child{sib(aarav), sib(priya), sib(none), sib(aarav)}, nil, 0, ask, WhyMessage},
		{"two children of one name: whose result is whose cannot be read", []child{sib(aarav), sib(priya)}, nil, 1, ask, WhyMessage},
		{"too long even bare", []child{sib(absent), sib(absent), sib(absent)}, nil, 0, ask, WhyMessage},
		{"one child, the phone also a stranger's in another class: no one's result", []child{sib(aarav)},
			[]child{sib(Result{}), {father: "मोहन", mother: "गीता"}}, 0, ask, WhyHousehold},
		{"one child, a brother in another class: the result", []child{sib(aarav)}, []child{sib(Result{}), sib(Result{})}, 0, "151.5/200 (75%) उत्तीर्ण", ""},
		{"siblings here, a stranger elsewhere on the phone: no one's result", []child{sib(aarav), sib(priya)},
			[]child{sib(Result{}), sib(Result{}), {father: "हरि"}}, 0, ask, WhyHousehold},
	} {
		t.Run(tt.name, func(t *testing.T) {
			names := tt.names
			if names == 0 {
				names = len(tt.children)
			}
			household := tt.household
			if household == nil {
				household = tt.children
			}
			got, why := childResults(tt.children, household, names, "hi")
			if got != tt.want || why != tt.why {
				t.Errorf("childResults = %q (%q), want %q (%q)", got, why, tt.want, tt.why)
			}
		})
	}
	t.Run("never more than a DLT variable holds", func(t *testing.T) {
		f := func(v float64) *float64 { return &v }
		s := Scores{Evaluation: "MARKS", MaxMarks: f(1000), PassMark: true}
		var all []Result
		for _, subjects := range [][]SubjectScore{
			nil, {{Final: true}}, {{Final: true, Present: true, Marks: f(999.99)}, {Final: true, Present: true, Marks: f(999.99), Passed: true}},
			{{Final: true, Present: true, Marks: f(1)}}, {{Final: true, Present: true, Marks: f(1000), Passed: true}, {Final: true}}, {{}},
		} {
			for _, lang := range []string{"hi", "en"} {
				all = append(all, Summary(s, subjects, false, lang))
			}
		}
		for _, a := range all {
			for _, b := range all {
				for _, c := range all {
					for _, children := range [][]child{{sib(a)}, {sib(a), sib(b)}, {sib(a), sib(b), sib(c)}} {
						if got, _ := childResults(children, children, len(children), "hi"); utf8.RuneCountInString(got) > MaxVariable {
							t.Fatalf("%q has more than %d characters", got, MaxVariable)
						}
					}
				}
			}
		}
	})
}
