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
	PassMark   bool     // the assessment has a pass percentage above 0 (else every scored subject "passes")
	Letters    []Letter // the grade mapping, highest first, to name an average
}

// Letter is a grade and its points (grade_mapping).
type Letter struct {
	Letter string
	Points float64
}

// SubjectScore is a child's result in one subject: present in any of its
// components, the marks added up over them (MARKS, to the hundredth) or the
// average points of the grades (GRADE), and whether it passed by the
// listing's rule (assessment_passes, in the database's numeric arithmetic).
type SubjectScore struct {
	Present bool
	Marks   *float64
	Points  *float64
	Passed  bool
	Final   bool // every row of it was written in a class now final
}

// Summary is a child's result, as short as a DLT variable needs, in language
// lang ("hi", or English otherwise), over the subjects of their class
// (expected of them, one SubjectScore each), by the listing's pass rule:
//   - marks: the total out of MaxMarks a subject, the percentage rounded
//     down, and — when the assessment has a pass mark — pass (every subject
//     passed) or fail; an absent subject counts its maximum and fails;
//   - grades: the letter at or below the average points, the average
//     (rounded down to a tenth) out of the top, and the verdict;
//   - absent in every subject: absent; nothing recorded: no result;
//   - a subject not final yet (written in a class that is not), a subject
//     not recorded while others are, or more marks in a subject than it
//     has (rows with and without component): not said — "ask the school",
//     rather than a figure that may be wrong.
//
// The forms go from whole to bare; Long is the first that fits MaxVariable.
func Summary(s Scores, subjects []SubjectScore, expected int, lang string) Result {
	w := words(lang)
	if len(subjects) == 0 {
		return Result{w.none, w.none, w.noneBare}
	}
	withheld := Result{w.withheld, w.withheld, w.withheld}
	if len(subjects) < expected {
		return withheld
	}
	passed, present := true, 0
	var hundredths int64 // marks in hundredths: no binary fractions in what a parent reads
	var points float64
	for _, sub := range subjects {
		if !sub.Final {
			return withheld
		}
		passed = passed && sub.Passed
		if !sub.Present {
			continue
		}
		present++
		if sub.Marks != nil {
			h := int64(math.Round(*sub.Marks * 100))
			if s.MaxMarks != nil && h > int64(math.Round(*s.MaxMarks*100)) {
				return withheld
			}
			hundredths += h
		}
		if sub.Points != nil {
			points += *sub.Points
		}
	}
	if present == 0 {
		return Result{w.absent, w.absent, w.absent}
	}
	verdict := ""
	if s.PassMark {
		verdict = " " + w.fail
		if passed {
			verdict = " " + w.pass
		}
	}
	if s.Evaluation == "GRADE" {
		avg := points / float64(present)
		letter := s.letter(avg)
		shown := math.Floor(avg*10+1e-9) / 10
		long := fmt.Sprintf(w.grade, letter, number(shown), number(value(s.TopPoints))) + verdict
		return Result{long, fmt.Sprintf(w.gradeShort, letter) + verdict, letter}.fitted()
	}
	marks := number(float64(hundredths) / 100)
	maxHundredths := int64(math.Round(value(s.MaxMarks)*100)) * int64(len(subjects))
	if maxHundredths <= 0 {
		return Result{fmt.Sprintf(w.marks, marks) + verdict, fmt.Sprintf(w.marks, marks), marks}.fitted()
	}
	// Rounded down, in whole numbers: 32.9% is not shown as 33%, and 26.4
	// of 80 is 33%.
	pct := strconv.FormatInt(hundredths*100/maxHundredths, 10) + "%"
	return Result{marks + "/" + number(float64(maxHundredths)/100) + " (" + pct + ")" + verdict, pct + verdict, pct}.fitted()
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

// letter is the grade whose points are the highest at or below avg (the
// lowest grade when avg is below them all). Letters are highest first.
func (s Scores) letter(avg float64) string {
	for _, l := range s.Letters {
		if l.Points <= avg+1e-9 {
			return l.Letter
		}
	}
	if len(s.Letters) == 0 {
		return "?"
	}
	return s.Letters[len(s.Letters)-1].Letter
}

type resultText struct {
	none, noneBare, absent, pass, fail, marks, grade, gradeShort, withheld string
}

var resultWords = map[string]resultText{
	"hi": {none: "परिणाम दर्ज नहीं", noneBare: "दर्ज नहीं", absent: "अनुपस्थित", pass: "उत्तीर्ण", fail: "अनुत्तीर्ण",
		marks: "%s अंक", grade: "ग्रेड %s (%s/%s)", gradeShort: "ग्रेड %s", withheld: "विद्यालय से जानकारी लें"},
	"en": {none: "no result recorded", noneBare: "none", absent: "absent", pass: "pass", fail: "fail",
		marks: "%s marks", grade: "grade %s (%s/%s)", gradeShort: "grade %s", withheld: "ask the school"},
}

// words are the result's words in lang: Hindi, or English for any other.
func words(lang string) resultText {
	if lang == "hi" {
		return resultWords["hi"]
	}
	return resultWords["en"]
}

// number writes marks as people write them: 72, 72.5.
func number(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// results reads the results of students in r's assessment and says each
// one's Summary. A result is said only once it cannot change and reads as
// the school's listing counts it:
//   - every row of it was written in one class, final now (whichever class:
//     a child who moved between two final classes gets theirs; one whose
//     rows span classes is told to ask the school, as the listing counts
//     each class's part apart);
//   - it has every subject its classmates of the same stream have (else
//     ask the school): a subject the class does not take is not missing;
//   - a child with no row, in a class where no one has one (only class
//     counts, TSP), is told to ask the school, not "nothing recorded".
//
// The pass rule is read in the same statement as the results.
func results(ctx context.Context, tx pgx.Tx, r *Request, students []uuid.UUID) (map[uuid.UUID]Result, error) {
	rows, err := tx.Query(ctx, `SELECT letter, value::float8 FROM grade_mapping ORDER BY value DESC, letter`)
	if err != nil {
		return nil, err
	}
	letters, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Letter])
	if err != nil {
		return nil, err
	}
	// The subjects each class has rows for, by stream.
	type class struct {
		grade         int
		section, strm string
	}
	taken := map[class]int{}
	classes := map[class]bool{} // grade and section only (strm empty): a class with any row
	rows, err = tx.Query(ctx, `SELECT o.class_grade, o.class_section, coalesce(st.stream, ''), count(DISTINCT o.subject)
		FROM assessment_result o JOIN student st ON st.id = o.student_id
		WHERE o.assessment_id = $1 AND o.school_id = $2
		GROUP BY 1, 2, 3`, r.AssessmentID, r.SchoolID)
	if err != nil {
		return nil, err
	}
	var c class
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&c.grade, &c.section, &c.strm, &n}, func() error {
		taken[c] = n
		classes[class{grade: c.grade, section: c.section}] = true
		return nil
	}); err != nil {
		return nil, err
	}
	// Per subject as assessment_progress_recount counts "passed".
	rows, err = tx.Query(ctx, `SELECT res.student_id, bool_or(res.present), trunc(sum(res.marks), 2)::float8, avg(g.value)::float8,
			bool_or(res.present) AND coalesce(assessment_passes(p.evaluation, p.pass_percent, p.max_marks, p.top_points, sum(res.marks), avg(g.value)), false),
			bool_and(coalesce(c.final, false)), min(res.class_grade), min(res.class_section), max(res.class_grade), max(res.class_section),
			coalesce(st.stream, ''), p.evaluation, p.max_marks::float8, p.top_points::float8, p.pass_percent > 0
		FROM assessment_result res
		JOIN student st ON st.id = res.student_id
		LEFT JOIN assessment_class c ON c.assessment_id = res.assessment_id AND c.school_id = res.school_id
		 AND c.grade = res.class_grade AND c.section = res.class_section
		JOIN assessment_pass_rule p ON p.assessment_id = res.assessment_id
		LEFT JOIN grade_mapping g ON g.letter = res.grade
		WHERE res.assessment_id = $1 AND res.school_id = $2 AND res.student_id = ANY ($3)
		GROUP BY res.student_id, res.subject, st.stream, p.evaluation, p.pass_percent, p.max_marks, p.top_points`,
		r.AssessmentID, r.SchoolID, students)
	if err != nil {
		return nil, err
	}
	type pupil struct {
		subjects    []SubjectScore
		class       class
		manyClasses bool
	}
	byStudent := map[uuid.UUID]*pupil{}
	s := Scores{Letters: letters}
	var id uuid.UUID
	var sub SubjectScore
	var marks, points pgtype.Float8
	var lo, hi class
	if _, err := pgx.ForEachRow(rows, []any{&id, &sub.Present, &marks, &points, &sub.Passed, &sub.Final,
		&lo.grade, &lo.section, &hi.grade, &hi.section, &lo.strm, &s.Evaluation, &s.MaxMarks, &s.TopPoints, &s.PassMark}, func() error {
		sub.Marks, sub.Points = ptr(marks), ptr(points)
		ch := byStudent[id]
		if ch == nil {
			ch = &pupil{class: lo}
			byStudent[id] = ch
		}
		ch.subjects = append(ch.subjects, sub)
		ch.manyClasses = ch.manyClasses || lo.grade != hi.grade || lo.section != hi.section || lo != ch.class
		return nil
	}); err != nil {
		return nil, err
	}
	// The request's one class, if it names one (an announcement does).
	var own *class
	if len(r.Grades) == 1 && len(r.Sections) == 1 {
		own = &class{grade: int(r.Grades[0]), section: r.Sections[0]}
	}
	withheld := words(r.Language).withheld
	out := make(map[uuid.UUID]Result, len(students))
	for _, id := range students {
		ch := byStudent[id]
		switch {
		case ch == nil && own != nil && !classes[*own]:
			out[id] = Result{withheld, withheld, withheld}
		case ch == nil:
			out[id] = Summary(s, nil, 0, r.Language)
		case ch.manyClasses:
			out[id] = Result{withheld, withheld, withheld}
		default:
			out[id] = Summary(s, ch.subjects, taken[ch.class], r.Language)
		}
	}
	return out, nil
}

// child is one child's result and whose child they are.
type child struct {
	result         Result
	father, mother string
}

// households reads, for the phones of recipients, every active student of
// the school recorded with that number (compared by its last ten digits, an
// Indian mobile's): the children whose parents the phone may be.
func households(ctx context.Context, tx pgx.Tx, school uuid.UUID, recipients []recipient) (map[string][]child, error) {
	var keys []string
	for _, rc := range recipients {
		if k := household(rc.raw); k != "" {
			keys = append(keys, k)
		}
	}
	rows, err := tx.Query(ctx, `SELECT right(regexp_replace(guardian_phone, '\D', '', 'g'), 10), coalesce(father_name, ''), coalesce(mother_name, '')
		FROM student
		WHERE school_id = $1 AND status = 'ACTIVE' AND enabled
		  AND right(regexp_replace(guardian_phone, '\D', '', 'g'), 10) = ANY ($2)`, school, keys)
	if err != nil {
		return nil, err
	}
	out := map[string][]child{}
	var key string
	var c child
	_, err = pgx.ForEachRow(rows, []any{&key, &c.father, &c.mother}, func() error {
		out[key] = append(out[key], c)
		return nil
	})
	return out, err
}

// household is the key of raw's household: its number's last ten digits,
// when it is a number messages go to ("" otherwise).
func household(raw string) string {
	e164, reason := Normalize(raw)
	if reason != "" || len(e164) < 10 {
		return ""
	}
	return e164[len(e164)-10:]
}

// childResults is the {result} of one message to a phone, whose
// {student_name} names names children: the child's result, or for siblings
// each child's in the order they are named — the longest forms that fit
// MaxVariable together. Otherwise "ask the school" and no one's result:
//   - the school's students on the phone (household, which holds the
//     message's children and any in other classes) not known to be
//     siblings (see siblings): the phone is someone else's (records carry
//     a teacher's or a shop's number), even for one child's message;
//   - more children than MaxListed in the message;
//   - two children of the same name (names has them once): which result is
//     whose could not be read;
//   - results that do not fit MaxVariable even bare.
func childResults(children, household []child, names int, lang string) string {
	withheld := words(lang).withheld
	if len(household) > 1 && !siblings(household) {
		return withheld
	}
	if len(children) == 1 {
		return children[0].result.Long
	}
	if len(children) > MaxListed || len(children) != names || !siblings(children) {
		return withheld
	}
	for _, form := range []func(Result) string{
		func(r Result) string { return r.Long },
		func(r Result) string { return r.Short },
		func(r Result) string { return r.Bare },
	} {
		parts := make([]string, len(children))
		for i, c := range children {
			parts[i] = form(c.result)
		}
		if join := strings.Join(parts, "; "); fits(join) {
			return join
		}
	}
	return withheld
}

// siblings reports whether children are one family's by their records:
// no two recorded fathers' names differ, nor two mothers', and every child
// has the father's name recorded, or every child the mother's (names
// compared without case and surrounding spaces).
func siblings(children []child) bool {
	agree := func(name func(child) string) (consistent, all bool) {
		first, all := "", true
		for _, c := range children {
			n := strings.ToLower(strings.TrimSpace(name(c)))
			switch {
			case n == "":
				all = false
			case first == "":
				first = n
			case n != first:
				return false, false
			}
		}
		return true, all
	}
	fathersAgree, allFathers := agree(func(c child) string { return c.father })
	mothersAgree, allMothers := agree(func(c child) string { return c.mother })
	return fathersAgree && mothersAgree && (allFathers || allMothers)
}
