package sms

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"golang.org/x/text/unicode/norm"
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
// lang ("hi", or English otherwise), over their subjects (one SubjectScore
// each; missing: a subject of theirs has no row), by the listing's pass rule:
//   - marks: the total out of MaxMarks a subject, the percentage rounded
//     down, and — when the assessment has a pass mark — pass (every subject
//     passed) or fail; an absent subject counts its maximum and fails;
//   - grades: the letter at or below the average points, the average
//     (rounded down to a tenth) out of the top, and the verdict;
//   - absent in every subject: absent; nothing recorded: no result;
//   - a subject not final yet (written in a class that is not), a subject
//     missing, or more marks in a subject than it has (rows with and
//     without component): not said — "ask the school", rather than a
//     figure that may be wrong; Why says which.
//
// The forms go from whole to bare; Long is the first that fits MaxVariable.
func Summary(s Scores, subjects []SubjectScore, missing bool, lang string) Result {
	w := words(lang)
	if len(subjects) == 0 {
		return Result{w.none, w.none, w.none, ""}
	}
	if missing {
		return withheld(lang, WhyMissingSubject)
	}
	passed, present := true, 0
	var hundredths int64 // marks in hundredths: no binary fractions in what a parent reads
	var points float64
	for _, sub := range subjects {
		if !sub.Final {
			return withheld(lang, WhyNotFinal)
		}
		passed = passed && sub.Passed
		if !sub.Present {
			continue
		}
		present++
		if sub.Marks != nil {
			h := int64(math.Round(*sub.Marks * 100))
			if s.MaxMarks != nil && h > int64(math.Round(*s.MaxMarks*100)) {
				return withheld(lang, WhyOverMaximum)
			}
			hundredths += h
		}
		if sub.Points != nil {
			points += *sub.Points
		}
	}
	if present == 0 {
		return Result{w.absent, w.absent, w.absent, ""}
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
		return Result{long, fmt.Sprintf(w.gradeShort, letter) + verdict, letter, ""}.fitted()
	}
	marks := number(float64(hundredths) / 100)
	maxHundredths := int64(math.Round(value(s.MaxMarks)*100)) * int64(len(subjects))
	if maxHundredths <= 0 {
		return Result{fmt.Sprintf(w.marks, marks) + verdict, fmt.Sprintf(w.marks, marks), marks, ""}.fitted()
	}
	// Rounded down, in whole numbers: 32.9% is not shown as 33%, and 26.4
	// of 80 is 33%.
	pct := strconv.FormatInt(hundredths*100/maxHundredths, 10) + "%"
	return Result{marks + "/" + number(float64(maxHundredths)/100) + " (" + pct + ")" + verdict, pct + verdict, pct, ""}.fitted()
}

// Result is a child's result in three lengths, or "ask the school" and why.
type Result struct {
	Long, Short, Bare string
	Why               string // empty, or the Why* a result is not given
}

// Why a child's result is not given (the reason label of
// shala_sms_results_withheld_total).
const (
	WhyNotFinal       = "not_final"       // a row written in a class not final yet
	WhyClasses        = "classes"         // rows written in more than one class
	WhyMissingSubject = "missing_subject" // a subject every classmate of the stream has, or one the class sent counts for
	WhyOverMaximum    = "over_maximum"    // more marks in a subject than it has
	WhyCountsOnly     = "counts_only"     // the class sent class counts (TSP) only
	WhyHousehold      = "household"       // the school's children on the phone are not known to be one family's
	WhyMessage        = "message"         // siblings' results cannot be read in one message
)

func withheld(lang, why string) Result {
	w := words(lang).withheld
	return Result{w, w, w, why}
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
	none, absent, pass, fail, marks, grade, gradeShort, withheld string
}

var resultWords = map[string]resultText{
	"hi": {none: "दर्ज नहीं", absent: "अनुपस्थित", pass: "उत्तीर्ण", fail: "अनुत्तीर्ण",
		marks: "%s अंक", grade: "ग्रेड %s (%s/%s)", gradeShort: "ग्रेड %s", withheld: "विद्यालय से जानकारी लें"},
	"en": {none: "not recorded", absent: "absent", pass: "pass", fail: "fail",
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
// one's Summary. A result is said only once it cannot change and as the
// school's listing counts it:
//   - every row of it was written in one class that is final now (whichever
//     class: a child who moved between two final classes gets theirs; one
//     whose rows span classes is told to ask the school, as the listing
//     counts each class's part apart);
//   - no subject of theirs is missing: they have rows for fewer subjects
//     than most classmates of the same stream (the median), or none for a
//     subject the class sent counts (TSP) for. Electives are not missing:
//     a child with Sanskrit where a classmate has Science has as many;
//   - a child with no row, in a class where no child has one (the class
//     sent counts only), is told to ask the school, not "not recorded".
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
	// Who has a row for which subject, class by class and stream by stream,
	// and the subjects classes sent counts for.
	type class struct {
		grade         int
		section, strm string
	}
	subjectsOf := map[class][]int{} // the number of subjects of each pupil with rows
	counted := map[class][]string{} // by grade and section (strm empty): TSP subjects
	// A pupil whose rows span classes counts in none (their counts are parts).
	rows, err = tx.Query(ctx, `SELECT grade, section, strm, '', subjects FROM (
			SELECT o.class_grade AS grade, o.class_section AS section, coalesce(st.stream, '') AS strm,
			       count(DISTINCT o.subject) AS subjects, count(*) OVER (PARTITION BY o.student_id) AS classes
			FROM assessment_result o JOIN student st ON st.id = o.student_id
			WHERE o.assessment_id = $1 AND o.school_id = $2
			GROUP BY 1, 2, 3, o.student_id) per
		WHERE classes = 1
		UNION ALL
		SELECT DISTINCT t.grade, t.section, NULL, t.subject, 0 FROM assessment_tsp t WHERE t.assessment_id = $1 AND t.school_id = $2`,
		r.AssessmentID, r.SchoolID)
	if err != nil {
		return nil, err
	}
	var c class
	var strm *string
	var subject string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&c.grade, &c.section, &strm, &subject, &n}, func() error {
		if strm == nil {
			k := class{grade: c.grade, section: c.section}
			counted[k] = append(counted[k], subject)
			return nil
		}
		k := class{grade: c.grade, section: c.section, strm: *strm}
		subjectsOf[k] = append(subjectsOf[k], n)
		grade := class{grade: c.grade, strm: *strm} // the grade's sections together
		subjectsOf[grade] = append(subjectsOf[grade], n)
		return nil
	}); err != nil {
		return nil, err
	}
	// The median of a class and stream, or of the grade and stream when the
	// class has fewer than three such pupils; the lower middle of an even
	// count, so half a class with an optional subject does not make the
	// other half short.
	median := func(c class) int {
		ns := subjectsOf[c]
		if len(ns) < 3 {
			ns = subjectsOf[class{grade: c.grade, strm: c.strm}]
		}
		if len(ns) == 0 {
			return 0
		}
		ns = slices.Clone(ns)
		slices.Sort(ns)
		return ns[(len(ns)-1)/2]
	}
	// Per subject as assessment_progress_recount counts "passed".
	rows, err = tx.Query(ctx, `SELECT res.student_id, res.subject, bool_or(res.present), trunc(sum(res.marks), 2)::float8, avg(g.value)::float8,
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
		names       map[string]bool
		class       class
		manyClasses bool
	}
	byStudent := map[uuid.UUID]*pupil{}
	s := Scores{Letters: letters}
	var id uuid.UUID
	var sub SubjectScore
	var marks, points pgtype.Float8
	var lo, hi class
	if _, err := pgx.ForEachRow(rows, []any{&id, &subject, &sub.Present, &marks, &points, &sub.Passed, &sub.Final,
		&lo.grade, &lo.section, &hi.grade, &hi.section, &lo.strm, &s.Evaluation, &s.MaxMarks, &s.TopPoints, &s.PassMark}, func() error {
		sub.Marks, sub.Points = ptr(marks), ptr(points)
		ch := byStudent[id]
		if ch == nil {
			ch = &pupil{class: lo, names: map[string]bool{}}
			byStudent[id] = ch
		}
		ch.subjects = append(ch.subjects, sub)
		ch.names[subject] = true
		ch.manyClasses = ch.manyClasses || lo.grade != hi.grade || lo.section != hi.section || lo != ch.class
		return nil
	}); err != nil {
		return nil, err
	}
	missing := func(ch *pupil) bool {
		if len(ch.names) < median(ch.class) {
			return true
		}
		if ch.class.strm != "" {
			return false // counts have no stream: a subject counted may be another stream's
		}
		for _, subject := range counted[class{grade: ch.class.grade, section: ch.class.section}] {
			if !ch.names[subject] {
				return true
			}
		}
		return false
	}
	// The request's one class, if it names one (an announcement does).
	var own *class
	if len(r.Grades) == 1 && len(r.Sections) == 1 {
		own = &class{grade: int(r.Grades[0]), section: r.Sections[0]}
	}
	anyRow := func(c class) bool {
		for b := range subjectsOf {
			if b.grade == c.grade && b.section == c.section && b.section != "" {
				return true
			}
		}
		return false
	}
	out := make(map[uuid.UUID]Result, len(students))
	for _, id := range students {
		ch := byStudent[id]
		switch {
		case ch == nil && own != nil && !anyRow(*own):
			out[id] = withheld(r.Language, WhyCountsOnly)
		case ch == nil:
			out[id] = Summary(s, nil, false, r.Language)
		case ch.manyClasses:
			out[id] = withheld(r.Language, WhyClasses)
		default:
			out[id] = Summary(s, ch.subjects, missing(ch), r.Language)
		}
	}
	return out, nil
}

// child is one child's result and whose child they are.
type child struct {
	result         Result
	father, mother string
}

// households reads, for each recipient's phone, every active, enabled
// student of the school recorded with that number (compared by its last ten
// digits, an Indian mobile's): the children whose parents the phone may be.
// It returns them recipient by recipient.
func households(ctx context.Context, tx pgx.Tx, school uuid.UUID, recipients []recipient) ([][]child, error) {
	keys := make([]string, len(recipients))
	for i, rc := range recipients {
		keys[i] = household(rc.raw)
	}
	rows, err := tx.Query(ctx, `SELECT right(regexp_replace(guardian_phone, '\D', '', 'g'), 10), coalesce(father_name, ''), coalesce(mother_name, '')
		FROM student
		WHERE school_id = $1 AND status = 'ACTIVE' AND enabled
		  AND right(regexp_replace(guardian_phone, '\D', '', 'g'), 10) = ANY ($2)`, school, keys)
	if err != nil {
		return nil, err
	}
	byKey := map[string][]child{}
	var key string
	var c child
	if _, err := pgx.ForEachRow(rows, []any{&key, &c.father, &c.mother}, func() error {
		byKey[key] = append(byKey[key], c)
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([][]child, len(recipients))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out, nil
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
// MaxVariable together. Otherwise "ask the school", no one's result, and
// why:
//   - a child's own result is not given (its Why);
//   - the school's students on the phone (household, which holds the
//     message's children and any in other classes) are not known to be
//     siblings (see siblings): the phone is someone else's (records carry
//     a teacher's or a shop's number), even for one child's message;
//   - more children than MaxListed in the message, two of the same name
//     (names has them once: which result is whose could not be read), or
//     results that do not fit MaxVariable even bare.
func childResults(children, household []child, names int, lang string) (text, why string) {
	if len(household) > 1 && !siblings(household) {
		return words(lang).withheld, WhyHousehold
	}
	for _, c := range children {
		if c.result.Why != "" {
			return c.result.Long, c.result.Why
		}
	}
	if len(children) == 1 {
		return children[0].result.Long, ""
	}
	if len(children) > MaxListed || len(children) != names || !siblings(children) {
		return words(lang).withheld, WhyMessage
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
			return join, ""
		}
	}
	return words(lang).withheld, WhyMessage
}

// siblings reports whether children are one family's by their records:
// every two of them have the same father's or the same mother's name
// recorded (sameName), and neither parent's recorded names differ.
func siblings(children []child) bool {
	for i, a := range children {
		for _, b := range children[i+1:] {
			fathers, fatherOK := parent(a.father, b.father)
			mothers, motherOK := parent(a.mother, b.mother)
			if !fatherOK || !motherOK || !fathers && !mothers {
				return false
			}
		}
	}
	return true
}

// parent compares two children's records of one parent: same says both are
// recorded and name one person, ok that they do not contradict (one or both
// not recorded, or the same).
func parent(a, b string) (same, ok bool) {
	ta, tb := nameTokens(a), nameTokens(b)
	if len(ta) == 0 || len(tb) == 0 {
		return false, true
	}
	aligned, whole := sameName(ta, tb)
	// Initials alone ("R. K." twice) say neither same nor different.
	return aligned && whole, aligned
}

// sameName reports whether two names, as tokens, can be one person's as
// school records write it: the shorter's tokens found in the longer's in
// order, an initial standing for a word it begins ("R Kumar", "Rajesh
// Kumar"; "रा. कु. शर्मा", "राजेश कुमार शर्मा"; "Sunita", "Sunita Devi"), and
// whole when at least one whole word is the same in both (initials alone,
// "R" or "R. K.", name no one). A word is matched whole before it is taken
// for an initial's ("Ramesh" in "R. Ramesh"). Names in different scripts
// never match.
func sameName(a, b []string) (aligned, whole bool) {
	if len(a) > len(b) {
		a, b = b, a
	}
	j := 0
	for _, t := range a {
		k := j
		for k < len(b) && b[k] != t {
			k++
		}
		if k == len(b) { // no whole word: an initial's, the first that fits
			for k = j; k < len(b) && !tokenMatch(t, b[k]); k++ {
			}
			if k == len(b) {
				return false, false
			}
		}
		whole = whole || t == b[k] && !isInitial(t)
		j = k + 1
	}
	return true, whole
}

func tokenMatch(a, b string) bool {
	if a == b {
		return true
	}
	return isInitial(a) && strings.HasPrefix(b, a) || isInitial(b) && strings.HasPrefix(a, b)
}

// isInitial reports whether a token is one letter, with its vowel signs
// and other marks, or one Devanagari conjunct (records write "रा", "कु" or
// "क्ष" for an initial).
func isInitial(t string) bool {
	const virama = '\u094d'
	prev := rune(0)
	for i, r := range t {
		if i > 0 && !unicode.In(r, unicode.Mn, unicode.Mc) && prev != virama {
			return false
		}
		prev = r
	}
	return t != ""
}

// honorifics are left out of names compared: records add them or not.
var honorifics = map[string]bool{"shri": true, "sh": true, "sri": true, "smt": true, "shrimati": true,
	"srimati": true, "mr": true, "mrs": true, "ms": true, "dr": true, "late": true, "श्री": true, "श्रीमती": true,
	"श्रीमति": true, "श्रीमान": true, "सुश्री": true, "डॉ": true, "स्व": true, "स्वर्गीय": true}

// standIns are what records write for a parent not known: not a name.
var standIns = map[string]bool{"na": true, "n a": true, "nil": true, "nill": true, "none": true, "null": true,
	"unknown": true, "not known": true, "not available": true, "not applicable": true, "nk": true, "x": true, "xx": true,
	"xxx": true, "0": true, "अज्ञात": true, "ज्ञात नहीं": true, "पता नहीं": true, "नहीं": true, "उपलब्ध नहीं": true}

// nameTokens is a recorded name's words: NFC, lower-cased, without
// punctuation, symbols, invisible joiners or honorifics; none for a
// stand-in ("NA", "N/A", "unknown").
func nameTokens(name string) []string {
	name = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cf, r) {
			return -1 // zero-width joiners and the like
		}
		return r
	}, norm.NFC.String(strings.ToLower(name)))
	var out []string
	for _, t := range strings.FieldsFunc(name, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
	}) {
		if !honorifics[t] {
			out = append(out, t)
		}
	}
	if standIns[strings.Join(out, " ")] {
		return nil
	}
	return out
}
