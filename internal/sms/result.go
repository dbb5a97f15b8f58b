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

// Scores is how an assessment scores a subject, as the database's
// assessment_pass_rule view states it for the school's listing.
type Scores struct {
	Evaluation string   // MARKS or GRADE
	MaxMarks   *float64 // a subject's maximum: the total marks, or the components' maxima added up
	TopPoints  *float64 // the top grade's points
	Letters    []Letter // the grade mapping, to name an average
}

// Letter is a grade and its points (grade_mapping).
type Letter struct {
	Letter string
	Points float64
}

// SubjectScore is a child's result in one subject: present in any of its
// components, the marks added up over them (MARKS) or the average points of
// the grades (GRADE), and whether it passed by the listing's rule
// (assessment_passes, in the database's numeric arithmetic).
type SubjectScore struct {
	Present bool
	Marks   *float64
	Points  *float64
	Passed  bool
}

// Summary is a child's result, as short as a DLT variable needs, in language
// lang ("hi", or English otherwise), by the listing's pass rule (each
// subject's Passed):
//   - marks: the total over the subjects out of MaxMarks each, the
//     percentage rounded down, and pass (every subject passed) or fail;
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
	var hundredths int64 // marks in hundredths: no binary fractions in what a parent reads
	var points float64
	for _, sub := range subjects {
		passed = passed && sub.Passed
		if !sub.Present {
			continue
		}
		present++
		if sub.Marks != nil {
			hundredths += int64(math.Round(*sub.Marks * 100))
		}
		if sub.Points != nil {
			points += *sub.Points
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
	marks := number(float64(hundredths) / 100)
	maxHundredths := int64(math.Round(value(s.MaxMarks)*100)) * int64(len(subjects))
	if maxHundredths <= 0 {
		return Result{fmt.Sprintf(w.marks, marks) + " " + verdict, fmt.Sprintf(w.marks, marks), marks}.fitted()
	}
	// Rounded down, in whole numbers, as the pass rule compares: 32.9% is
	// not shown as 33%, and 26.4 of 80 is 33%.
	pct := strconv.FormatInt(hundredths*100/maxHundredths, 10) + "%"
	return Result{marks + "/" + number(float64(maxHundredths)/100) + " (" + pct + ") " + verdict, pct + " " + verdict, pct}.fitted()
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

// siblings reports whether children all have one father's or one mother's
// name (recorded, compared without case and surrounding spaces).
func siblings(children []child) bool {
	same := func(name func(child) string) bool {
		first := strings.ToLower(strings.TrimSpace(name(children[0])))
		for _, c := range children[1:] {
			if first == "" || strings.ToLower(strings.TrimSpace(name(c))) != first {
				return false
			}
		}
		return first != ""
	}
	return same(func(c child) string { return c.father }) || same(func(c child) string { return c.mother })
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
	none, absent, pass, fail, marks, grade, gradeShort, withheld string
}{
	"hi": {none: "परिणाम दर्ज नहीं", absent: "अनुपस्थित", pass: "उत्तीर्ण", fail: "अनुत्तीर्ण",
		marks: "%s अंक", grade: "ग्रेड %s (%s/%s)", gradeShort: "ग्रेड %s", withheld: "विद्यालय से जानकारी लें"},
	"en": {none: "no result recorded", absent: "absent", pass: "pass", fail: "fail",
		marks: "%s marks", grade: "grade %s (%s/%s)", gradeShort: "grade %s", withheld: "ask the school"},
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
	// Per subject as assessment_progress_recount counts "passed".
	rows, err := tx.Query(ctx, `SELECT res.student_id, bool_or(res.present), sum(res.marks)::float8, avg(g.value)::float8,
			bool_or(res.present) AND coalesce(assessment_passes(p.evaluation, p.pass_percent, p.max_marks, p.top_points, sum(res.marks), avg(g.value)), false)
		FROM assessment_result res
		JOIN assessment_class c ON c.assessment_id = res.assessment_id AND c.school_id = res.school_id
		 AND c.grade = res.class_grade AND c.section = res.class_section AND c.final
		JOIN assessment_pass_rule p ON p.assessment_id = res.assessment_id
		LEFT JOIN grade_mapping g ON g.letter = res.grade
		WHERE res.assessment_id = $1 AND res.school_id = $2 AND res.student_id = ANY ($3)
		  AND ($4::int[] IS NULL OR res.class_grade = ANY ($4))
		  AND ($5::text[] IS NULL OR res.class_section = ANY ($5))
		GROUP BY res.student_id, res.subject, p.evaluation, p.pass_percent, p.max_marks, p.top_points`,
		r.AssessmentID, r.SchoolID, students, grades, sections)
	if err != nil {
		return nil, err
	}
	byStudent := map[uuid.UUID][]SubjectScore{}
	var id uuid.UUID
	var present, passed bool
	var marks, points pgtype.Float8
	if _, err := pgx.ForEachRow(rows, []any{&id, &present, &marks, &points, &passed}, func() error {
		byStudent[id] = append(byStudent[id], SubjectScore{Present: present, Marks: ptr(marks), Points: ptr(points), Passed: passed})
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

// child is one child's result and whose child they are.
type child struct {
	result         Result
	father, mother string
}

// childResults is the {result} of one message: the child's result, or for
// siblings sharing the phone each child's, in the order {student_name}
// names them — the longest forms that fit MaxVariable together. Children
// are siblings when they all have the same father's or the same mother's
// name, and are at most MaxListed; otherwise the phone is someone else's
// (records carry a teacher's or a shop's number) and no child's result is
// given, only where to ask for it.
func childResults(children []child, lang string) string {
	if len(children) == 1 {
		return children[0].result.Long
	}
	if len(children) > MaxListed || !siblings(children) {
		if lang == "hi" {
			return resultWords["hi"].withheld
		}
		return resultWords["en"].withheld
	}
	results := make([]Result, len(children))
	for i, c := range children {
		results[i] = c.result
	}
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
