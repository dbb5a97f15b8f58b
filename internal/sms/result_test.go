package sms

import (
	"testing"
	"unicode/utf8"
)

func TestSummary(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	letters := []Letter{{"A", 10}, {"B", 8}, {"C", 6}, {"D", 4}, {"E", 2}}
	marks := Scores{Evaluation: "MARKS", PassPercent: 33, MaxMarks: f(100), TopPoints: f(10), Letters: letters}
	grades := Scores{Evaluation: "GRADE", PassPercent: 50, MaxMarks: f(100), TopPoints: f(10), Letters: letters}
	for _, tt := range []struct {
		name     string
		scores   Scores
		subjects []SubjectScore
		lang     string
		want     Result
	}{
		{"marks: each subject out of the subject's maximum, passed in both", marks, []SubjectScore{
			{Present: true, Marks: f(90)}, {Present: true, Marks: f(61.5)},
		}, "hi", Result{"151.5/200 (75%) उत्तीर्ण", "75% उत्तीर्ण", "75%"}},
		{"one subject under the pass mark fails", marks, []SubjectScore{
			{Present: true, Marks: f(90)}, {Present: true, Marks: f(32.9)},
		}, "en", Result{"122.9/200 (61%) fail", "61% fail", "61%"}},
		{"exactly the pass mark passes", marks, []SubjectScore{{Present: true, Marks: f(33)}}, "en", Result{"33/100 (33%) pass", "33% pass", "33%"}},
		{"absent in a subject: its maximum counts, and it is not passed", marks, []SubjectScore{
			{Present: true, Marks: f(80)}, {Present: false},
		}, "hi", Result{"80/200 (40%) अनुत्तीर्ण", "40% अनुत्तीर्ण", "40%"}},
		{"no pass mark: every scored subject passes, as in the listing", Scores{Evaluation: "MARKS", MaxMarks: f(100)},
			[]SubjectScore{{Present: true, Marks: f(3)}}, "en", Result{"3/100 (3%) pass", "3% pass", "3%"}},
		{"no maximum known: the marks", Scores{Evaluation: "MARKS", PassPercent: 33}, []SubjectScore{{Present: true, Marks: f(52)}}, "en",
			Result{"52 marks pass", "52 marks", "52"}},
		{"too long for a DLT variable: the short form", Scores{Evaluation: "MARKS", PassPercent: 33, MaxMarks: f(10000)}, []SubjectScore{
			{Present: true, Marks: f(9000.25)}, {Present: true, Marks: f(3000.5)}, {Present: true, Marks: f(345)},
		}, "hi", Result{"41% अनुत्तीर्ण", "41% अनुत्तीर्ण", "41%"}},
		{"a percentage is rounded down, as the pass rule compares", marks, []SubjectScore{{Present: true, Marks: f(32.9)}}, "en",
			Result{"32.9/100 (32%) fail", "32% fail", "32%"}},
		{"grades: the letter at or below the average points", grades, []SubjectScore{
			{Present: true, Points: f(10)}, {Present: true, Points: f(8)}, {Present: true, Points: f(6)}, {Present: true, Points: f(8)},
		}, "hi", Result{"ग्रेड B (8/10) उत्तीर्ण", "ग्रेड B उत्तीर्ण", "B"}},
		{"grades: an average between letters, one subject failed", grades, []SubjectScore{
			{Present: true, Points: f(10)}, {Present: true, Points: f(4)}, {Present: true, Points: f(9)},
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
	for _, tt := range []struct {
		name     string
		children []Result
		want     string
	}{
		{"one child: the whole result", []Result{aarav}, "151.5/200 (75%) उत्तीर्ण"},
		{"two siblings: the short forms, in order", []Result{aarav, priya}, "75% उत्तीर्ण; 40% अनुत्तीर्ण"},
		{"three: the bare forms", []Result{aarav, priya, none}, "75%; 40%; -"},
		{"more than student_name names: as many as it names", []Result{aarav, priya, none, aarav}, "75%; 40%; -"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := childResults(tt.children)
			if got != tt.want {
				t.Errorf("childResults = %q, want %q", got, tt.want)
			}
			if n := utf8.RuneCountInString(got); n > MaxVariable {
				t.Errorf("%q has %d characters, more than %d", got, n, MaxVariable)
			}
		})
	}
}
