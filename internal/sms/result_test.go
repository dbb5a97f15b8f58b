package sms

import (
	"testing"
	"unicode/utf8"
)

func TestSummary(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	letters := []Letter{{"A", 10}, {"B", 8}, {"C", 6}, {"D", 4}, {"E", 2}}
	marks := Scores{Evaluation: "MARKS", MaxMarks: f(100), TopPoints: f(10), Letters: letters}
	grades := Scores{Evaluation: "GRADE", MaxMarks: f(100), TopPoints: f(10), Letters: letters}
	for _, tt := range []struct {
		name     string
		scores   Scores
		subjects []SubjectScore
		lang     string
		want     Result
	}{
		{"marks: each subject out of the subject's maximum, passed in both", marks, []SubjectScore{
			{Present: true, Marks: f(90), Passed: true}, {Present: true, Marks: f(61.5), Passed: true},
		}, "hi", Result{"151.5/200 (75%) उत्तीर्ण", "75% उत्तीर्ण", "75%"}},
		{"one subject not passed fails", marks, []SubjectScore{
			{Present: true, Marks: f(90), Passed: true}, {Present: true, Marks: f(32.9)},
		}, "en", Result{"122.9/200 (61%) fail", "61% fail", "61%"}},
		{"absent in a subject: its maximum counts, and it is not passed", marks, []SubjectScore{
			{Present: true, Marks: f(80), Passed: true}, {Present: false},
		}, "hi", Result{"80/200 (40%) अनुत्तीर्ण", "40% अनुत्तीर्ण", "40%"}},
		{"decimal marks add up as written", marks, []SubjectScore{
			{Present: true, Marks: f(10.1), Passed: true}, {Present: true, Marks: f(20.2), Passed: true},
		}, "en", Result{"30.3/200 (15%) pass", "15% pass", "15%"}},
		{"26.4 of 80 is 33%, not 32.99…", Scores{Evaluation: "MARKS", MaxMarks: f(80)}, []SubjectScore{{Present: true, Marks: f(26.4), Passed: true}}, "en",
			Result{"26.4/80 (33%) pass", "33% pass", "33%"}},
		{"a percentage is rounded down: 32.9% is not shown as 33%", marks, []SubjectScore{{Present: true, Marks: f(32.9)}}, "en",
			Result{"32.9/100 (32%) fail", "32% fail", "32%"}},
		{"no maximum known: the marks", Scores{Evaluation: "MARKS"}, []SubjectScore{{Present: true, Marks: f(52), Passed: true}}, "en",
			Result{"52 marks pass", "52 marks", "52"}},
		{"too long for a DLT variable: the short form", Scores{Evaluation: "MARKS", MaxMarks: f(10000)}, []SubjectScore{
			{Present: true, Marks: f(9000.25), Passed: true}, {Present: true, Marks: f(3000.5), Passed: true}, {Present: true, Marks: f(345)},
		}, "hi", Result{"41% अनुत्तीर्ण", "41% अनुत्तीर्ण", "41%"}},
		{"grades: the letter at or below the average points", grades, []SubjectScore{
			{Present: true, Points: f(10), Passed: true}, {Present: true, Points: f(8), Passed: true},
			{Present: true, Points: f(6), Passed: true}, {Present: true, Points: f(8), Passed: true},
		}, "hi", Result{"ग्रेड B (8/10) उत्तीर्ण", "ग्रेड B उत्तीर्ण", "B"}},
		{"grades: an average between letters, one subject not passed", grades, []SubjectScore{
			{Present: true, Points: f(10), Passed: true}, {Present: true, Points: f(4)}, {Present: true, Points: f(9), Passed: true},
		}, "en", Result{"grade C (7.7/10) fail", "grade C fail", "C"}},
		{"absent everywhere", marks, []SubjectScore{{}, {}}, "hi", Result{"अनुपस्थित", "अनुपस्थित", "अनुपस्थित"}},
		{"nothing recorded", marks, nil, "hi", Result{"परिणाम दर्ज नहीं", "परिणाम दर्ज नहीं", "-"}},
		{"a language without words of its own reads English", marks, nil, "pa", Result{"no result recorded", "no result recorded", "-"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Summary(tt.scores, tt.subjects, tt.lang)
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
	aarav := Result{"151.5/200 (75%) उत्तीर्ण", "75% उत्तीर्ण", "75%"}
	priya := Result{"80/200 (40%) अनुत्तीर्ण", "40% अनुत्तीर्ण", "40%"}
	none := Result{"परिणाम दर्ज नहीं", "परिणाम दर्ज नहीं", "-"}
	sib := func(r Result) child {
		return child{result: r, father: "राजेश कुमार", mother: "सुनीता"}
	}
	for _, tt := range []struct {
		name     string
		children []child
		want     string
	}{
		{"one child: the whole result", []child{{result: aarav}}, "151.5/200 (75%) उत्तीर्ण"},
		{"two siblings: the short forms, in order", []child{sib(aarav), sib(priya)}, "75% उत्तीर्ण; 40% अनुत्तीर्ण"},
		{"three: the bare forms", []child{sib(aarav), sib(priya), sib(none)}, "75%; 40%; -"},
		{"siblings by the mother's name alone, compared without case or spaces", []child{
			{result: aarav, father: "Rajesh", mother: "Sunita "}, {result: priya, father: "", mother: " sunita"},
		}, "75% उत्तीर्ण; 40% अनुत्तीर्ण"},
		{"strangers on one phone get no one's result", []child{
			{result: aarav, father: "राजेश", mother: "सुनीता"}, {result: priya, father: "मोहन", mother: "गीता"},
		}, "विद्यालय से जानकारी लें"},
		{"parents not recorded: not known to be siblings", []child{{result: aarav}, {result: priya}}, "विद्यालय से जानकारी लें"},
		{"more children than student_name names: a shared number", []child{sib(aarav), sib(priya), sib(none), sib(aarav)}, "विद्यालय से जानकारी लें"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := childResults(tt.children, "hi")
			if got != tt.want {
				t.Errorf("childResults = %q, want %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > MaxVariable {
				t.Errorf("%q has %d characters, more than %d", got, n, MaxVariable)
			}
		})
	}
}
