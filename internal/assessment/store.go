package assessment

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Origin is the builder submission an assessment is written from.
type Origin struct {
	SubmissionID uuid.UUID
	Root         string // the instance's root element, for field paths
	InstanceID   string
	// DeprecatedID, when set, names the builder submission this one edits.
	DeprecatedID string
	// CreatedBy is the submitter's user id ("" when unknown).
	CreatedBy string
}

// Save writes, in tx, the assessment b describes: a new one, or — when o
// edits the builder submission an assessment is in force for — that
// assessment replaced in place (same id; its deadlines, subjects and
// components rewritten, components that already have marks kept). It returns
// the assessment's id and whether it replaced one. Refusals (an unknown
// academic year or subject, removing a component that has marks) are
// Unprocessable faults naming the field, returned before anything is
// written.
func Save(ctx context.Context, tx pgx.Tx, o Origin, b *Builder) (id uuid.UUID, replaced bool, err error) {
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM academic_year WHERE id = $1)`, b.Year).Scan(&ok); err != nil {
		return uuid.Nil, false, err
	}
	if !ok {
		return uuid.Nil, false, refuse(o.Root, "deadline/academic_year", CodeInvalid, "academic year %q does not exist", b.Year)
	}
	var subjects []string
	for _, ss := range b.Grades {
		subjects = append(subjects, ss...)
	}
	rows, err := tx.Query(ctx, `SELECT s FROM unnest($1::text[]) s WHERE NOT EXISTS (SELECT 1 FROM subject WHERE id = s)`, subjects)
	if err != nil {
		return uuid.Nil, false, err
	}
	unknown, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return uuid.Nil, false, err
	}
	if len(unknown) > 0 {
		return uuid.Nil, false, refuse(o.Root, "grade_subjects", CodeInvalid, "unknown subjects %v", unknown)
	}

	kinds := make([]string, len(b.Components))
	for i, c := range b.Components {
		kinds[i] = c.Kind
	}
	if o.DeprecatedID != "" {
		err := tx.QueryRow(ctx, `SELECT id FROM assessment WHERE builder_instance_id = $1 FOR UPDATE`, o.DeprecatedID).Scan(&id)
		switch {
		case err == nil:
			replaced = true
		case !errors.Is(err, pgx.ErrNoRows):
			return uuid.Nil, false, err
		}
	}
	if replaced {
		// Refuse before writing anything: a refusal is recorded in this
		// transaction, so it must leave nothing half-written.
		rows, err := tx.Query(ctx, `SELECT c.component_type FROM assessment_component c
			WHERE c.assessment_id = $1 AND NOT (c.component_type = ANY ($2))
			  AND EXISTS (SELECT 1 FROM assessment_result r WHERE r.component_id = c.id)`, id, kinds)
		if err != nil {
			return uuid.Nil, false, err
		}
		used, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return uuid.Nil, false, err
		}
		if len(used) > 0 {
			return uuid.Nil, false, refuse(o.Root, "component", CodeInvalid, "components %v already have marks and cannot be removed", used)
		}
		if _, err := tx.Exec(ctx, `UPDATE assessment SET submission_id = $2, builder_instance_id = $3, name = $4, type = $5,
				academic_year = $6, unit_type = $7, evaluation = $8, outcome = $9, total_marks = $10, pass_percent = $11,
				sms_template = nullif($12, ''), enabled = $13
			WHERE id = $1`, id, o.SubmissionID, o.InstanceID, b.Name, b.Kind, b.Year,
			b.UnitType, b.Evaluation, b.Outcome, b.Total, b.PassPct, b.SMS, b.Enabled); err != nil {
			return uuid.Nil, false, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM assessment_deadline WHERE assessment_id = $1`, id); err != nil {
			return uuid.Nil, false, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM assessment_subject WHERE assessment_id = $1`, id); err != nil {
			return uuid.Nil, false, err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM assessment_component WHERE assessment_id = $1 AND NOT (component_type = ANY ($2))`, id, kinds); err != nil {
			return uuid.Nil, false, err
		}
	} else {
		if err := tx.QueryRow(ctx, `INSERT INTO assessment (submission_id, builder_instance_id, name, type, academic_year, unit_type,
				evaluation, outcome, total_marks, pass_percent, sms_template, enabled, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, nullif($11, ''), $12, nullif($13, ''))
			RETURNING id`, o.SubmissionID, o.InstanceID, b.Name, b.Kind, b.Year, b.UnitType, b.Evaluation, b.Outcome, b.Total, b.PassPct,
			b.SMS, b.Enabled, o.CreatedBy).Scan(&id); err != nil {
			return uuid.Nil, false, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO assessment_deadline (assessment_id, district, session, due_at)
		SELECT $1, d, $3, $4 FROM unnest($2::text[]) d`, id, b.Districts, b.Session, b.DueAt); err != nil {
		return uuid.Nil, false, err
	}
	for g, ss := range b.Grades {
		if _, err := tx.Exec(ctx, `INSERT INTO assessment_subject (assessment_id, grade, subject)
			SELECT $1, $2, s FROM unnest($3::text[]) s ON CONFLICT DO NOTHING`, id, g, ss); err != nil {
			return uuid.Nil, false, err
		}
	}
	for i, c := range b.Components {
		if _, err := tx.Exec(ctx, `INSERT INTO assessment_component (assessment_id, component_type, max_marks, pass_percent, position)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (assessment_id, component_type)
			DO UPDATE SET max_marks = EXCLUDED.max_marks, pass_percent = EXCLUDED.pass_percent, position = EXCLUDED.position`,
			id, c.Kind, c.Max, c.PassPct, i); err != nil {
			return uuid.Nil, false, err
		}
	}
	return id, replaced, nil
}
