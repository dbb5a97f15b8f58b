package forms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/xform"
)

// The assessment kinds shala supports: of unit type {LO, Unit, Question,
// None} × evaluation {Grade, Marks, Percentage, None} × outcome {TSP,
// Boolean, Marks} (32 combinations), Grade or Marks evaluation with a TSP
// outcome, for any unit type.
var (
	unitTypes       = []string{"LO", "UNIT", "QUESTION", "NONE"}
	assessmentTypes = []string{"FA1", "FA2", "FA3", "FA4", "SA1", "SA2", "TERM1", "TERM2", "BASELINE", "ENDLINE"}
)

// Supported reports whether an assessment kind is supported.
func Supported(unitType, evaluation, outcome string) bool {
	return slices.Contains(unitTypes, unitType) && (evaluation == "GRADE" || evaluation == "MARKS") && outcome == "TSP"
}

// ist is India Standard Time, for builder deadlines given without a zone.
var ist = time.FixedZone("IST", 5*3600+1800)

type component struct {
	kind     string
	max      float64
	passPct  *float64
	position int
}

type builder struct {
	name, kind, year, session, sms string
	districts                      []string
	dueAt                          time.Time
	grades                         map[int][]string
	evaluation, unitType, outcome  string
	components                     []component
	total, passPct                 *float64
	enabled                        bool
}

// readBuilder reads and checks an assessment-builder submission; refusals
// are Unprocessable faults naming the field.
func readBuilder(root string, answers []xform.Answer) (*builder, error) {
	b := &builder{grades: map[int][]string{}, enabled: true}
	var date time.Time
	var clock string
	gradeOf := map[int]int{}
	subjectsOf := map[int][]string{}
	comps := map[int]*component{}
	for _, a := range answers {
		switch a.Field.Name {
		case "name":
			b.name = a.Raw
		case "type":
			b.kind = a.Raw
		case "academic_year":
			b.year = a.Raw
		case "districts":
			b.districts = strings.Fields(a.Raw)
		case "session":
			b.session = a.Raw
		case "date":
			date = *a.Time
		case "time":
			clock = a.Raw
		case "grade":
			gradeOf[a.Index[0]] = int(*a.Number)
		case "subjects":
			subjectsOf[a.Index[0]] = strings.Fields(a.Raw)
		case "evaluation":
			b.evaluation = a.Raw
		case "unit_type":
			b.unitType = a.Raw
		case "outcome":
			b.outcome = a.Raw
		case "component_type", "max_marks":
			i := a.Index[0]
			if comps[i] == nil {
				comps[i] = &component{position: i}
			}
			if a.Field.Name == "component_type" {
				comps[i].kind = a.Raw
			} else {
				comps[i].max = *a.Number
			}
		case "total_marks":
			b.total = a.Number
		case "pass_percent":
			if a.Field.Repeat != "" {
				i := a.Index[0]
				if comps[i] == nil {
					comps[i] = &component{position: i}
				}
				comps[i].passPct = a.Number
			} else {
				b.passPct = a.Number
			}
		case "sms_template":
			b.sms = a.Raw
		case "enabled":
			b.enabled = a.Raw != "no" && a.Raw != "false" && a.Raw != "0"
		}
	}
	refuse := func(field string, code fault.Code, format string, args ...any) error {
		return &fault.Error{Kind: fault.Unprocessable, Code: code, Field: "/" + root + "/" + field, Message: fmt.Sprintf(format, args...)}
	}
	for field, v := range map[string]string{"name": b.name, "type": b.kind, "deadline/academic_year": b.year,
		"deadline/session": b.session, "evaluation": b.evaluation, "unit_type": b.unitType, "outcome": b.outcome, "deadline/time": clock} {
		if v == "" {
			return nil, refuse(field, "INVALID_ASSESSMENT", "%s is required", field)
		}
	}
	if len(b.districts) == 0 {
		return nil, refuse("deadline/districts", "INVALID_ASSESSMENT", "at least one district is required")
	}
	if date.IsZero() {
		return nil, refuse("deadline/date", "INVALID_ASSESSMENT", "deadline/date is required")
	}
	if !Supported(b.unitType, b.evaluation, b.outcome) {
		return nil, refuse("evaluation", "UNSUPPORTED_ASSESSMENT",
			"unsupported assessment kind: unit type %s × evaluation %s × outcome %s (supported: Grade or Marks evaluation with a TSP outcome, for unit type LO, Unit, Question or None)",
			b.unitType, b.evaluation, b.outcome)
	}
	if !slices.Contains(assessmentTypes, b.kind) {
		return nil, refuse("type", "INVALID_ASSESSMENT", "type %q is not one of %s", b.kind, strings.Join(assessmentTypes, ", "))
	}
	if b.session != "W" && b.session != "S" {
		return nil, refuse("deadline/session", "INVALID_ASSESSMENT", "session must be W or S, got %q", b.session)
	}
	if b.sms != "" && !slices.Contains(sms.Types, b.sms) {
		return nil, refuse("sms_template", "INVALID_ASSESSMENT", "sms_template %q is not an SMS template type", b.sms)
	}
	for i, g := range gradeOf {
		if g < 1 || g > 12 {
			return nil, refuse(fmt.Sprintf("grade_subjects[%d]/grade", i), "INVALID_ASSESSMENT", "class %d is not 1–12", g)
		}
		if len(subjectsOf[i]) == 0 {
			return nil, refuse(fmt.Sprintf("grade_subjects[%d]/subjects", i), "INVALID_ASSESSMENT", "class %d has no subjects", g)
		}
		b.grades[g] = append(b.grades[g], subjectsOf[i]...)
	}
	if len(b.grades) == 0 {
		return nil, refuse("grade_subjects", "INVALID_ASSESSMENT", "at least one class with subjects is required")
	}
	sum := 0.0
	for i := 1; i <= len(comps)+10 && len(b.components) < len(comps); i++ {
		c := comps[i]
		if c == nil {
			continue
		}
		if c.kind == "" || c.max <= 0 {
			return nil, refuse(fmt.Sprintf("component[%d]", i), "INVALID_ASSESSMENT", "a component needs a type and maximum marks above 0")
		}
		sum += c.max
		b.components = append(b.components, *c)
	}
	if b.total != nil && len(b.components) > 0 && sum != *b.total {
		return nil, refuse("total_marks", "INVALID_ASSESSMENT", "components add up to %g marks but total_marks is %g", sum, *b.total)
	}
	if b.total == nil && len(b.components) > 0 {
		b.total = &sum
	}
	tod, err := parseClock(clock)
	if err != nil {
		return nil, refuse("deadline/time", "INVALID_ASSESSMENT", "%v", err)
	}
	b.dueAt = time.Date(date.Year(), date.Month(), date.Day(), tod.Hour(), tod.Minute(), tod.Second(), 0, tod.Location())
	return b, nil
}

func parseClock(s string) (time.Time, error) {
	for _, layout := range []string{"15:04:05.999-07:00", "15:04:05.999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	for _, layout := range []string{"15:04:05.999", "15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, ist); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time of day", s)
}

// writeAssessment creates the assessment a builder submission describes, or
// updates the one its deprecatedID names, in tx.
func (p *Pipeline) writeAssessment(ctx context.Context, tx pgx.Tx, id uuid.UUID, sub *xform.Submission, def *Definition,
	answers []xform.Answer) (*Result, error) {
	b, err := readBuilder(sub.Root, answers)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM academic_year WHERE id = $1)`, b.year).Scan(&ok); err != nil {
		return nil, err
	}
	if !ok {
		return nil, &fault.Error{Kind: fault.Unprocessable, Code: "INVALID_ASSESSMENT", Field: "/" + sub.Root + "/deadline/academic_year",
			Message: fmt.Sprintf("academic year %q does not exist", b.year)}
	}
	var subjects []string
	for _, ss := range b.grades {
		subjects = append(subjects, ss...)
	}
	var unknown []string
	rows, err := tx.Query(ctx, `SELECT s FROM unnest($1::text[]) s WHERE NOT EXISTS (SELECT 1 FROM subject WHERE id = s)`, subjects)
	if err != nil {
		return nil, err
	}
	if unknown, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, err
	}
	if len(unknown) > 0 {
		return nil, &fault.Error{Kind: fault.Unprocessable, Code: "INVALID_ASSESSMENT", Field: "/" + sub.Root + "/grade_subjects",
			Message: fmt.Sprintf("unknown subjects %v", unknown)}
	}

	var assessmentID uuid.UUID
	edited := false
	kinds := make([]string, len(b.components))
	for i, c := range b.components {
		kinds[i] = c.kind
	}
	if sub.DeprecatedID != "" {
		err := tx.QueryRow(ctx, `SELECT id FROM assessment WHERE builder_instance_id = $1 FOR UPDATE`, sub.DeprecatedID).Scan(&assessmentID)
		switch {
		case err == nil:
			edited = true
		case !errors.Is(err, pgx.ErrNoRows):
			return nil, err
		}
	}
	if edited {
		// Refuse before writing anything: a refusal is recorded in this
		// transaction, so it must leave nothing half-written.
		rows, err := tx.Query(ctx, `SELECT c.component_type FROM assessment_component c
			WHERE c.assessment_id = $1 AND NOT (c.component_type = ANY ($2))
			  AND EXISTS (SELECT 1 FROM assessment_result r WHERE r.component_id = c.id)`, assessmentID, kinds)
		if err != nil {
			return nil, err
		}
		used, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, err
		}
		if len(used) > 0 {
			return nil, &fault.Error{Kind: fault.Unprocessable, Code: "INVALID_ASSESSMENT", Field: "/" + sub.Root + "/component",
				Message: fmt.Sprintf("components %v already have marks and cannot be removed", used)}
		}
		if _, err := tx.Exec(ctx, `UPDATE assessment SET submission_id = $2, builder_instance_id = $3, name = $4, type = $5,
				academic_year = $6, unit_type = $7, evaluation = $8, outcome = $9, total_marks = $10, pass_percent = $11,
				sms_template = nullif($12, ''), enabled = $13
			WHERE id = $1`, assessmentID, id, sub.InstanceID, b.name, b.kind, b.year,
			b.unitType, b.evaluation, b.outcome, b.total, b.passPct, b.sms, b.enabled); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `UPDATE form_submission SET status = 'superseded' WHERE instance_id = $1 AND status = 'accepted'`,
			sub.DeprecatedID); err != nil {
			return nil, err
		}
		for _, q := range []string{`DELETE FROM assessment_deadline WHERE assessment_id = $1`, `DELETE FROM assessment_subject WHERE assessment_id = $1`,
			`DELETE FROM assessment_component WHERE assessment_id = $1 AND NOT (component_type = ANY ($2))`} {
			args := []any{assessmentID}
			if strings.Contains(q, "$2") {
				args = append(args, kinds)
			}
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return nil, err
			}
		}
	}
	if !edited {
		if err := tx.QueryRow(ctx, `INSERT INTO assessment (submission_id, builder_instance_id, name, type, academic_year, unit_type,
				evaluation, outcome, total_marks, pass_percent, sms_template, enabled, created_by)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, nullif($11, ''), $12, submitted_by FROM form_submission WHERE id = $1
			RETURNING id`, id, sub.InstanceID, b.name, b.kind, b.year, b.unitType, b.evaluation, b.outcome, b.total, b.passPct,
			b.sms, b.enabled).Scan(&assessmentID); err != nil {
			return nil, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO assessment_deadline (assessment_id, district, session, due_at)
		SELECT $1, d, $3, $4 FROM unnest($2::text[]) d`, assessmentID, b.districts, b.session, b.dueAt); err != nil {
		return nil, err
	}
	for g, ss := range b.grades {
		if _, err := tx.Exec(ctx, `INSERT INTO assessment_subject (assessment_id, grade, subject)
			SELECT $1, $2, s FROM unnest($3::text[]) s ON CONFLICT DO NOTHING`, assessmentID, g, ss); err != nil {
			return nil, err
		}
	}
	for i, c := range b.components {
		if _, err := tx.Exec(ctx, `INSERT INTO assessment_component (assessment_id, component_type, max_marks, pass_percent, position)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (assessment_id, component_type)
			DO UPDATE SET max_marks = EXCLUDED.max_marks, pass_percent = EXCLUDED.pass_percent, position = EXCLUDED.position`,
			assessmentID, c.kind, c.max, c.passPct, i); err != nil {
			return nil, err
		}
	}
	return &Result{SubmissionID: id, Status: StatusAccepted, InstanceID: sub.InstanceID, AssessmentID: &assessmentID, Flags: []string{}}, nil
}

// AnnounceResults queues, in tx, the result SMS of an assessment to the
// parents of a class that was just finalised: an sms_request for the class
// with the assessment's SMS template, variables assessment and results_date
// (today in India). An assessment without an SMS template sends nothing.
func AnnounceResults(ctx context.Context, tx pgx.Tx, assessmentID, schoolID uuid.UUID, grade int, section, by string) (bool, error) {
	var name string
	var template *string
	err := tx.QueryRow(ctx, `SELECT name, sms_template FROM assessment WHERE id = $1`, assessmentID).Scan(&name, &template)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && template == nil) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	vars := map[string]string{"assessment": name, "results_date": time.Now().In(ist).Format("02-01-2006")}
	_, err = tx.Exec(ctx, `INSERT INTO sms_request (school_id, type, grades, sections, variables, source, requested_by)
		VALUES ($1, $2, $3, $4, $5, 'assessment', nullif($6, ''))`, schoolID, *template, []int32{int32(grade)}, []string{section}, vars, by)
	return err == nil, err
}
