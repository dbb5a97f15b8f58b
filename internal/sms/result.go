package sms

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ResultPlaceholder is the builtin placeholder that gives each child's own
// result in the request's assessment.
const ResultPlaceholder = "result"

// Scores is how an assessment scores its results, as the {result}
// placeholder needs it.
type Scores struct {
	Evaluation  string   // MARKS or GRADE
	PassPercent *float64 // the assessment's overall pass mark, if it has one
}

// Score is one recorded result row of a child: a subject (and component),
// present or absent, with marks out of Max or a grade.
type Score struct {
	Subject string // the subject's name in the request's language
	Present bool
	Marks   *float64
	Max     *float64 // the component's maximum, or the assessment's total; nil when neither is known
	Grade   string
}

// Summary is a child's result in one line, in language lang ("hi", or
// English otherwise), from their result rows in subject order:
//   - marks: the total over every recorded row out of the sum of their
//     maxima, the percentage, pass or fail against the pass mark, and the
//     subjects the child was absent in;
//   - grades: each subject's grade (a subject's components joined by "/"),
//     "absent" for a subject the child missed;
//   - absent in every row: absent; no row at all: no result recorded.
func Summary(s Scores, rows []Score, lang string) string {
	w := resultWords[lang]
	if lang != "hi" {
		w = resultWords["en"]
	}
	if len(rows) == 0 {
		return w.none
	}
	var absent []string
	present := 0
	for _, r := range rows {
		if r.Present {
			present++
		} else if len(absent) == 0 || absent[len(absent)-1] != r.Subject {
			absent = append(absent, r.Subject)
		}
	}
	if present == 0 {
		return w.absent
	}
	if s.Evaluation == "GRADE" {
		var parts []string
		for i := 0; i < len(rows); {
			j := i
			var grades []string
			for ; j < len(rows) && rows[j].Subject == rows[i].Subject; j++ {
				if rows[j].Present {
					grades = append(grades, rows[j].Grade)
				} else {
					grades = append(grades, w.absent)
				}
			}
			parts = append(parts, rows[i].Subject+" "+strings.Join(grades, "/"))
			i = j
		}
		return strings.Join(parts, ", ")
	}
	var total, max float64
	known := true
	for _, r := range rows {
		if r.Present && r.Marks != nil {
			total += *r.Marks
		}
		if r.Max == nil {
			known = false
		} else {
			max += *r.Max
		}
	}
	var out string
	if !known || max <= 0 {
		out = fmt.Sprintf(w.marks, number(total))
	} else {
		pct := total / max * 100
		out = fmt.Sprintf(w.outOf, number(total), number(max), number(math.Round(pct)))
		if s.PassPercent != nil {
			if pct >= *s.PassPercent {
				out += ", " + w.pass
			} else {
				out += ", " + w.fail
			}
		}
	}
	if len(absent) > 0 {
		out += ", " + w.absentIn + ": " + strings.Join(absent, ", ")
	}
	return out
}

var resultWords = map[string]struct {
	none, absent, absentIn, marks, outOf, pass, fail string
}{
	"hi": {none: "परिणाम दर्ज नहीं", absent: "अनुपस्थित", absentIn: "अनुपस्थित", marks: "कुल %s अंक",
		outOf: "कुल %s/%s (%s%%)", pass: "उत्तीर्ण", fail: "अनुत्तीर्ण"},
	"en": {none: "no result recorded", absent: "absent", absentIn: "absent in", marks: "total %s marks",
		outOf: "total %s/%s (%s%%)", pass: "pass", fail: "fail"},
}

// number writes marks as people write them: 72, 72.5.
func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// results reads the result rows of students in assessment within school,
// and says each one's Summary.
func results(ctx context.Context, tx pgx.Tx, r *Request, students []uuid.UUID) (map[uuid.UUID]string, error) {
	name := "s.name"
	if r.Language == "hi" {
		name = "s.name_hi"
	}
	rows, err := tx.Query(ctx, `SELECT res.student_id, `+name+`, res.present, res.marks::float8,
			coalesce(c.max_marks, a.total_marks)::float8, coalesce(res.grade, '')
		FROM assessment_result res
		JOIN assessment a ON a.id = res.assessment_id
		JOIN subject s ON s.id = res.subject
		LEFT JOIN assessment_component c ON c.id = res.component_id
		WHERE res.assessment_id = $1 AND res.school_id = $2 AND res.student_id = ANY ($3)
		ORDER BY res.student_id, res.subject, c.position NULLS FIRST`, r.AssessmentID, r.SchoolID, students)
	if err != nil {
		return nil, err
	}
	byStudent := map[uuid.UUID][]Score{}
	for rows.Next() {
		var id uuid.UUID
		var sc Score
		if err := rows.Scan(&id, &sc.Subject, &sc.Present, &sc.Marks, &sc.Max, &sc.Grade); err != nil {
			return nil, err
		}
		byStudent[id] = append(byStudent[id], sc)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]string, len(students))
	for _, id := range students {
		out[id] = Summary(r.Scores, byStudent[id], r.Language)
	}
	return out, nil
}

// childResults is the {result} of one message: the child's result, or,
// for siblings sharing the phone, each child's named, at most MaxListed.
func childResults(names, summaries []string, lang string) string {
	if len(summaries) == 1 {
		return summaries[0]
	}
	var parts []string
	for i := range min(len(summaries), MaxListed) {
		parts = append(parts, names[i]+": "+summaries[i])
	}
	out := strings.Join(parts, "; ")
	if rest := len(summaries) - MaxListed; rest > 0 {
		if lang == "hi" {
			return fmt.Sprintf("%s; और %d अन्य", out, rest)
		}
		return fmt.Sprintf("%s; and %d others", out, rest)
	}
	return out
}
