package sms

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// ResultPlaceholder is the builtin placeholder that gives each child's own
// result in the request's assessment.
const ResultPlaceholder = "result"

// MaxVariable is the most characters the telecom operators' DLT scrubbers
// take in one variable of a registered template: {result} never holds more.
const MaxVariable = 30

// Scores is an assessment's pass rule, as the database's
// assessment_pass_rule view states it for the school's listing.
type Scores struct {
	Evaluation  string   // MARKS or GRADE
	PassPercent float64  // 0 when the assessment has none: every scored subject passes
	MaxMarks    *float64 // a subject's maximum: the total marks, or the components' maxima added up
	TopPoints   *float64 // the top grade's points
	Letters     []Letter // the grade mapping, to name an average
}

// Letter is a grade and its points (grade_mapping).
type Letter struct {
	Letter string
	Points float64
}

// SubjectScore is a child's result in one subject: present in any of its
// components, the marks added up over them (MARKS) or the average points of
// the grades (GRADE).
type SubjectScore struct {
	Present bool
	Marks   *float64
	Points  *float64
}

// Summary is a child's result, as short as a DLT variable needs, in language
// lang ("hi", or English otherwise), by the same rule as the listing's
// pass counts: a subject passes when its marks reach PassPercent of
// MaxMarks (its average points, of TopPoints); absent is not passed.
//   - marks: the total over the subjects out of MaxMarks each, the
//     percentage, and pass (every subject passed) or fail;
//   - grades: the letter at or below the average points, the average out of
//     the top, and pass or fail;
//   - absent in every subject: absent; nothing recorded: no result.
//
// The three forms go from whole to bare; Summary's Long is the first that
// fits MaxVariable.
func Summary(s Scores, subjects []SubjectScore, lang string) Result {
	w := resultWords["en"]
	if lang == "hi" {
		w = resultWords["hi"]
	}
	if len(subjects) == 0 {
		return Result{w.none, w.none, "-"}
	}
	passed, present := true, 0
	var marks, points float64
	for _, sub := range subjects {
		if !sub.Present {
			passed = false
			continue
		}
		present++
		switch {
		case s.Evaluation == "GRADE" && sub.Points != nil:
			points += *sub.Points
			passed = passed && *sub.Points*100 >= s.PassPercent*value(s.TopPoints)
		case s.Evaluation == "MARKS" && sub.Marks != nil:
			marks += *sub.Marks
			passed = passed && *sub.Marks*100 >= s.PassPercent*value(s.MaxMarks)
		default:
			passed = false // present, not scored
		}
	}
	if present == 0 {
		return Result{w.absent, w.absent, w.absent}
	}
	verdict := w.fail
	if passed {
		verdict = w.pass
	}
	if s.Evaluation == "GRADE" {
		avg := points / float64(present)
		letter := s.letter(avg)
		long := fmt.Sprintf(w.grade, letter, number(round1(avg)), number(value(s.TopPoints))) + " " + verdict
		return Result{long, fmt.Sprintf(w.gradeShort, letter) + " " + verdict, letter}.fitted()
	}
	if s.MaxMarks == nil || *s.MaxMarks <= 0 {
		return Result{fmt.Sprintf(w.marks, number(marks)) + " " + verdict, fmt.Sprintf(w.marks, number(marks)), number(marks)}.fitted()
	}
	max := *s.MaxMarks * float64(len(subjects))
	// Rounded down, as the pass rule compares: 32.9% is not shown as 33%.
	pct := number(math.Floor(marks/max*100)) + "%"
	return Result{number(marks) + "/" + number(max) + " (" + pct + ") " + verdict, pct + " " + verdict, pct}.fitted()
}

// Result is a child's result in three lengths.
type Result struct {
	Long, Short, Bare string
}

// fitted moves down to the longest form that fits MaxVariable.
func (r Result) fitted() Result {
	if fits(r.Long) {
		return r
	}
	if fits(r.Short) {
		r.Long = r.Short
		return r
	}
	r.Long, r.Short = r.Bare, r.Bare
	return r
}

func fits(s string) bool { return utf8.RuneCountInString(s) <= MaxVariable }

func value(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

func ptr(v pgtype.Float8) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// letter is the grade whose points are the highest at or below avg (the
// lowest grade when avg is below them all).
func (s Scores) letter(avg float64) string {
	best, lowest := "", ""
	var bestPts, lowPts float64
	for _, l := range s.Letters {
		if l.Points <= avg+1e-9 && (best == "" || l.Points > bestPts) {
			best, bestPts = l.Letter, l.Points
		}
		if lowest == "" || l.Points < lowPts {
			lowest, lowPts = l.Letter, l.Points
		}
	}
	if best == "" {
		return lowest
	}
	return best
}

var resultWords = map[string]struct {
	none, absent, pass, fail, marks, grade, gradeShort string
}{
	"hi": {none: "परिणाम दर्ज नहीं", absent: "अनुपस्थित", pass: "उत्तीर्ण", fail: "अनुत्तीर्ण",
		marks: "%s अंक", grade: "ग्रेड %s (%s/%s)", gradeShort: "ग्रेड %s"},
	"en": {none: "no result recorded", absent: "absent", pass: "pass", fail: "fail",
		marks: "%s marks", grade: "grade %s (%s/%s)", gradeShort: "grade %s"},
}

// number writes marks as people write them: 72, 72.5.
func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// results reads the results of students in r's assessment and says each
// one's Summary. Only results of a final class count (a class's results
// are sent only once they can no longer change), and of the request's
// classes when it names them: a child who changed class since is not sent
// another class's results.
func results(ctx context.Context, tx pgx.Tx, r *Request, students []uuid.UUID) (map[uuid.UUID]Result, error) {
	s := r.Scores
	if s.Letters == nil {
		rows, _ := tx.Query(ctx, `SELECT letter, value::float8 FROM grade_mapping`)
		letters, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Letter])
		if err != nil {
			return nil, err
		}
		r.Scores.Letters, s.Letters = letters, letters
	}
	var grades, sections any // NULL: no filter (see students)
	if len(r.Grades) > 0 {
		grades = r.Grades
	}
	if len(r.Sections) > 0 {
		sections = r.Sections
	}
	rows, err := tx.Query(ctx, `SELECT res.student_id, bool_or(res.present), sum(res.marks)::float8, avg(g.value)::float8
		FROM assessment_result res
		JOIN assessment_class c ON c.assessment_id = res.assessment_id AND c.school_id = res.school_id
		 AND c.grade = res.class_grade AND c.section = res.class_section AND c.final
		LEFT JOIN grade_mapping g ON g.letter = res.grade
		WHERE res.assessment_id = $1 AND res.school_id = $2 AND res.student_id = ANY ($3)
		  AND ($4::int[] IS NULL OR res.class_grade = ANY ($4))
		  AND ($5::text[] IS NULL OR res.class_section = ANY ($5))
		GROUP BY res.student_id, res.subject`, r.AssessmentID, r.SchoolID, students, grades, sections)
	if err != nil {
		return nil, err
	}
	byStudent := map[uuid.UUID][]SubjectScore{}
	var id uuid.UUID
	var present bool
	var marks, points pgtype.Float8
	if _, err := pgx.ForEachRow(rows, []any{&id, &present, &marks, &points}, func() error {
		byStudent[id] = append(byStudent[id], SubjectScore{Present: present, Marks: ptr(marks), Points: ptr(points)})
		return nil
	}); err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]Result, len(students))
	for _, id := range students {
		out[id] = Summary(s, byStudent[id], r.Language)
	}
	return out, nil
}

// childResults is the {result} of one message: the child's result, or for
// siblings sharing the phone each child's, in the order {student_name}
// names them — the longest forms that fit MaxVariable together.
func childResults(results []Result) string {
	if len(results) == 1 {
		return results[0].Long
	}
	results = results[:min(len(results), MaxListed)] // as many as student_name names
	var join string
	for _, form := range []func(Result) string{
		func(r Result) string { return r.Long },
		func(r Result) string { return r.Short },
		func(r Result) string { return r.Bare },
	} {
		parts := make([]string, len(results))
		for i, r := range results {
			parts[i] = form(r)
		}
		if join = strings.Join(parts, "; "); fits(join) {
			break
		}
	}
	return join
}
