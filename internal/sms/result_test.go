package sms_test

import (
	"testing"

	"github.com/shala-edu/shala/internal/sms"
)

func TestSummary(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	marks := sms.Scores{Evaluation: "MARKS", PassPercent: f(40)}
	for _, tt := range []struct {
		name   string
		scores sms.Scores
		rows   []sms.Score
		lang   string
		want   string
	}{
		{"marks over two subjects, passed", marks, []sms.Score{
			{Subject: "गणित", Present: true, Marks: f(72), Max: f(80)},
			{Subject: "हिंदी", Present: true, Marks: f(60.5), Max: f(80)},
		}, "hi", "कुल 132.5/160 (83%), उत्तीर्ण"},
		{"components of one subject add up", marks, []sms.Score{
			{Subject: "Science", Present: true, Marks: f(50), Max: f(80)},
			{Subject: "Science", Present: true, Marks: f(15), Max: f(20)},
		}, "en", "total 65/100 (65%), pass"},
		{"absent in a subject: its maximum still counts, and the subject is named", marks, []sms.Score{
			{Subject: "गणित", Present: true, Marks: f(30), Max: f(80)},
			{Subject: "हिंदी", Present: false, Max: f(80)},
		}, "hi", "कुल 30/160 (19%), अनुत्तीर्ण, अनुपस्थित: हिंदी"},
		{"exactly the pass mark passes", marks, []sms.Score{{Subject: "Maths", Present: true, Marks: f(32), Max: f(80)}}, "en", "total 32/80 (40%), pass"},
		{"no pass mark: no verdict", sms.Scores{Evaluation: "MARKS"}, []sms.Score{{Subject: "Maths", Present: true, Marks: f(32), Max: f(80)}}, "en", "total 32/80 (40%)"},
		{"a maximum unknown: marks only", marks, []sms.Score{
			{Subject: "Maths", Present: true, Marks: f(32), Max: f(80)},
			{Subject: "Hindi", Present: true, Marks: f(20)},
		}, "en", "total 52 marks"},
		{"absent everywhere", marks, []sms.Score{{Subject: "गणित", Max: f(80)}, {Subject: "हिंदी", Max: f(80)}}, "hi", "अनुपस्थित"},
		{"nothing recorded", marks, nil, "hi", "परिणाम दर्ज नहीं"},
		{"nothing recorded, a language without words of its own reads English", marks, nil, "pa", "no result recorded"},
		{"grades per subject, components joined, an absent component said", sms.Scores{Evaluation: "GRADE"}, []sms.Score{
			{Subject: "गणित", Present: true, Grade: "A"},
			{Subject: "हिंदी", Present: true, Grade: "B"},
			{Subject: "हिंदी", Present: false},
			{Subject: "विज्ञान", Present: true, Grade: "C2"},
		}, "hi", "गणित A, हिंदी B/अनुपस्थित, विज्ञान C2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := sms.Summary(tt.scores, tt.rows, tt.lang); got != tt.want {
				t.Errorf("Summary = %q, want %q", got, tt.want)
			}
		})
	}
}
