package student

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
)

// Promotion outcomes for exceptions (GraphQL enum PromotionOutcome).
const (
	OutcomeRetain     = "RETAIN"
	OutcomePassedOut  = "PASSED_OUT"
	OutcomeDroppedOut = "DROPPED_OUT"
)

// Promotion moves a class to the next academic year (GraphQL arguments of
// promoteStudents).
type Promotion struct {
	FromGrade      int         `json:"fromGrade"`
	Section        *string     `json:"section"`
	AcademicYear   string      `json:"academicYear"`
	ToAcademicYear string      `json:"toAcademicYear"`
	Exceptions     []Exception `json:"exceptions"`
}

// Exception is a student who does not simply move up.
type Exception struct {
	StudentID uuid.UUID `json:"studentId"`
	Outcome   string    `json:"outcome"`
}

// PromotionResult counts what happened.
type PromotionResult struct {
	Promoted   int `json:"promoted"`
	Retained   int `json:"retained"`
	PassedOut  int `json:"passedOut"`
	DroppedOut int `json:"droppedOut"`
}

// Promote moves every ACTIVE student of the class (fromGrade, section — all
// sections when nil — in academicYear) of school to toAcademicYear in one
// transaction: one grade up, or PASSED_OUT from grade 12, or what the
// student's exception says; one trail row per student. A class already
// promoted has no students left in academicYear and is refused, so running
// it twice does not move anyone two grades.
func (s *Store) Promote(ctx context.Context, schoolID uuid.UUID, actor string, p Promotion) (PromotionResult, error) {
	var res PromotionResult
	if p.FromGrade < 1 || p.FromGrade > 12 {
		return res, fault.Invalidf("fromGrade", "a class from 1 to 12, got %d", p.FromGrade)
	}
	section, err := CheckSection("section", opt(p.Section))
	if err != nil {
		return res, err
	}
	outcomes := map[uuid.UUID]string{}
	for i, e := range p.Exceptions {
		if !slices.Contains([]string{OutcomeRetain, OutcomePassedOut, OutcomeDroppedOut}, e.Outcome) {
			return res, fault.Invalidf(fmt.Sprintf("exceptions[%d].outcome", i), "one of RETAIN, PASSED_OUT, DROPPED_OUT")
		}
		if _, dup := outcomes[e.StudentID]; dup {
			return res, fault.Invalidf(fmt.Sprintf("exceptions[%d].studentId", i), "student %s is listed twice", e.StudentID)
		}
		outcomes[e.StudentID] = e.Outcome
	}
	today := Today(s.Now())
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := MarkShala(ctx, tx); err != nil {
			return err
		}
		var fromStart, toStart time.Time
		if err := tx.QueryRow(ctx, `SELECT starts_on FROM academic_year WHERE id = $1`, p.AcademicYear).Scan(&fromStart); err != nil {
			return yearError(err, "academicYear", p.AcademicYear)
		}
		if err := tx.QueryRow(ctx, `SELECT starts_on FROM academic_year WHERE id = $1`, p.ToAcademicYear).Scan(&toStart); err != nil {
			return yearError(err, "toAcademicYear", p.ToAcademicYear)
		}
		if !toStart.After(fromStart) {
			return fault.Invalidf("toAcademicYear", "%s does not come after %s", p.ToAcademicYear, p.AcademicYear)
		}
		rows, err := tx.Query(ctx, `SELECT id, coalesce(section, '') FROM student
			WHERE school_id = $1 AND grade = $2 AND ($3 = '' OR section = $3) AND academic_year = $4 AND status = 'ACTIVE'
			ORDER BY id FOR UPDATE`, schoolID, p.FromGrade, section, p.AcademicYear)
		if err != nil {
			return err
		}
		type member struct {
			id      uuid.UUID
			section string
		}
		var class []member
		for rows.Next() {
			var m member
			if err := rows.Scan(&m.id, &m.section); err != nil {
				return err
			}
			class = append(class, m)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(class) == 0 {
			return fault.New(fault.NotFound, "", "no active students in class %d%s for %s (already promoted?)", p.FromGrade, sectionSuffix(section), p.AcademicYear)
		}
		inClass := map[uuid.UUID]bool{}
		for _, m := range class {
			inClass[m.id] = true
		}
		for i, e := range p.Exceptions {
			if !inClass[e.StudentID] {
				return fault.Invalidf(fmt.Sprintf("exceptions[%d].studentId", i), "student %s is not an active student of this class in %s", e.StudentID, p.AcademicYear)
			}
		}
		for _, m := range class {
			outcome := outcomes[m.id]
			if outcome == "" && p.FromGrade == 12 {
				outcome = OutcomePassedOut
			}
			ev := Event{StudentID: m.id, SchoolID: schoolID, AcademicYear: p.ToAcademicYear, Grade: p.FromGrade, Section: m.section,
				Actor: actor, Details: map[string]any{"from": map[string]any{"grade": p.FromGrade, "academicYear": p.AcademicYear}}}
			var q string
			args := []any{m.id, p.ToAcademicYear}
			switch outcome {
			case "":
				q = `UPDATE student SET grade = grade + 1, academic_year = $2 WHERE id = $1`
				ev.Kind, ev.Grade = EventPromoted, p.FromGrade+1
				res.Promoted++
			case OutcomeRetain:
				q = `UPDATE student SET academic_year = $2 WHERE id = $1`
				ev.Kind = EventRetained
				res.Retained++
			case OutcomePassedOut:
				q = `UPDATE student SET status = 'PASSED_OUT', left_on = $2, left_reason = 'PASSED_OUT' WHERE id = $1`
				args = []any{m.id, today}
				ev.Kind, ev.AcademicYear = EventPassedOut, p.AcademicYear
				res.PassedOut++
			case OutcomeDroppedOut:
				q = `UPDATE student SET status = 'DROPPED_OUT', left_on = $2, left_reason = 'DROPPED_OUT' WHERE id = $1`
				args = []any{m.id, today}
				ev.Kind, ev.AcademicYear = EventDroppedOut, p.AcademicYear
				res.DroppedOut++
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return postgres.Translate(err, "student "+m.id.String())
			}
			if err := AddEvent(ctx, tx, ev); err != nil {
				return err
			}
		}
		return nil
	})
	return res, err
}

func sectionSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "-" + s
}

func yearError(err error, field, id string) error {
	if err == pgx.ErrNoRows {
		return fault.Invalidf(field, "no academic year %q", id)
	}
	return err
}
