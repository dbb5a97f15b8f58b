package assessment

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Origin is the builder submission an assessment is written from.
type Origin struct {
	SubmissionID uuid.UUID
	InstanceID   string
	// Replaces, when set, is the instanceID of the builder submission in
	// force that this one edits.
	Replaces string
	// CreatedBy is the submitter's user id ("" when unknown).
	CreatedBy string
}

// resolved is a builder's master data as shala's codes.
type resolved struct {
	typ, name  string
	category   *string
	districts  []string
	subjects   map[int][]string // class → subject ids
	components []string         // component type ids, in b.Components' order
	sms        string
}

// Save writes, in tx, the assessment b describes: a new one, or — when o
// edits the builder submission an assessment is in force for — that
// assessment replaced in place (same id; its deadlines, subjects and
// components rewritten, components that already have marks kept). It returns
// the assessment's id and whether it replaced one. Master data is looked up
// by code or external id; an unknown one (academic year, assessment type or
// category, district, subject — or a subject id of another class —,
// component type, SMS template), like removing a component that has marks,
// is an Unprocessable fault naming the field, returned before anything is
// written.
func Save(ctx context.Context, tx pgx.Tx, o Origin, b *Builder) (id uuid.UUID, replaced bool, err error) {
	res, err := resolve(ctx, tx, b)
	if err != nil {
		return uuid.Nil, false, err
	}
	if o.Replaces != "" {
		err := tx.QueryRow(ctx, `SELECT id FROM assessment WHERE builder_instance_id = $1 FOR UPDATE`, o.Replaces).Scan(&id)
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
			  AND EXISTS (SELECT 1 FROM assessment_result r WHERE r.component_id = c.id)`, id, res.components)
		if err != nil {
			return uuid.Nil, false, err
		}
		used, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return uuid.Nil, false, err
		}
		if len(used) > 0 {
			return uuid.Nil, false, refuse(componentsAt(b), CodeInvalid, "components %v already have marks and cannot be removed", used)
		}
		if err := keepsResultsValid(ctx, tx, id, b, res); err != nil {
			return uuid.Nil, false, err
		}
		if _, err := tx.Exec(ctx, `UPDATE assessment SET submission_id = $2, builder_instance_id = $3, name = $4, type = $5,
				academic_year = $6, unit_type = $7, evaluation = $8, outcome = $9, total_marks = $10, pass_percent = $11,
				sms_template = nullif($12, ''), enabled = $13, category = $14
			WHERE id = $1`, id, o.SubmissionID, o.InstanceID, res.name, res.typ, b.Year.Value,
			b.UnitType, b.Evaluation, b.Outcome, b.Total, b.PassPct, res.sms, b.Enabled, res.category); err != nil {
			return uuid.Nil, false, err
		}
		for _, q := range []string{`DELETE FROM assessment_deadline WHERE assessment_id = $1`, `DELETE FROM assessment_subject WHERE assessment_id = $1`} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return uuid.Nil, false, err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM assessment_component WHERE assessment_id = $1 AND NOT (component_type = ANY ($2))`, id, res.components); err != nil {
			return uuid.Nil, false, err
		}
	} else {
		if err := tx.QueryRow(ctx, `INSERT INTO assessment (submission_id, builder_instance_id, name, type, academic_year, unit_type,
				evaluation, outcome, total_marks, pass_percent, sms_template, enabled, created_by, category)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, nullif($11, ''), $12, nullif($13, ''), $14)
			RETURNING id`, o.SubmissionID, o.InstanceID, res.name, res.typ, b.Year.Value, b.UnitType, b.Evaluation, b.Outcome, b.Total, b.PassPct,
			res.sms, b.Enabled, o.CreatedBy, res.category).Scan(&id); err != nil {
			return uuid.Nil, false, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO assessment_deadline (assessment_id, district, session, due_at)
		SELECT $1, d, $3, $4 FROM unnest($2::text[]) d ON CONFLICT DO NOTHING`, id, res.districts, b.Session, b.DueAt); err != nil {
		return uuid.Nil, false, err
	}
	for g, ss := range res.subjects {
		if _, err := tx.Exec(ctx, `INSERT INTO assessment_subject (assessment_id, grade, subject)
			SELECT $1, $2, s FROM unnest($3::text[]) s ON CONFLICT DO NOTHING`, id, g, ss); err != nil {
			return uuid.Nil, false, err
		}
	}
	for i, c := range b.Components {
		if _, err := tx.Exec(ctx, `INSERT INTO assessment_component (assessment_id, component_type, max_marks, pass_percent, position)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (assessment_id, component_type)
			DO UPDATE SET max_marks = EXCLUDED.max_marks, pass_percent = EXCLUDED.pass_percent, position = EXCLUDED.position`,
			id, res.components[i], c.Max, c.PassPct, i); err != nil {
			return uuid.Nil, false, err
		}
	}
	return id, replaced, nil
}

// keepsResultsValid refuses an edit of assessment id that would leave
// results or counts schools have written invalid under the rules the
// database holds every write to: a class's subject that has them removed,
// a district or session whose schools have them (or class rows) dropped,
// the evaluation changed once marks or grades are written, the unit type
// changed once class counts are written, a maximum (a component's, or the
// total when marks have no component) below marks given.
func keepsResultsValid(ctx context.Context, tx pgx.Tx, id uuid.UUID, b *Builder, res *resolved) error {
	rows, err := tx.Query(ctx, `SELECT class_grade, subject FROM assessment_result WHERE assessment_id = $1
		UNION SELECT grade, subject FROM assessment_tsp WHERE assessment_id = $1 ORDER BY 1, 2`, id)
	if err != nil {
		return err
	}
	type classSubject struct {
		grade   int
		subject string
	}
	written, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (classSubject, error) {
		var c classSubject
		err := row.Scan(&c.grade, &c.subject)
		return c, err
	})
	if err != nil {
		return err
	}
	for _, w := range written {
		if slices.Contains(res.subjects[w.grade], w.subject) {
			continue
		}
		at := b.Classes[0].At
		for _, c := range b.Classes {
			if c.Grade == w.grade {
				at = c.At
			}
		}
		return refuse(at, CodeInvalid, "subject %s of class %d has results: it cannot be removed", w.subject, w.grade)
	}
	rows, err = tx.Query(ctx, `SELECT DISTINCT s.district, s.session FROM school s
		WHERE s.id IN (SELECT school_id FROM assessment_result WHERE assessment_id = $1
			UNION SELECT school_id FROM assessment_tsp WHERE assessment_id = $1
			UNION SELECT school_id FROM assessment_class WHERE assessment_id = $1)
		ORDER BY 1, 2`, id)
	if err != nil {
		return err
	}
	type place struct{ district, session string }
	places, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (place, error) {
		var p place
		err := row.Scan(&p.district, &p.session)
		return p, err
	})
	if err != nil {
		return err
	}
	for _, p := range places {
		if p.session != b.Session || !slices.Contains(res.districts, p.district) {
			return refuse(b.Districts[0].At, CodeInvalid, "schools of %s (session %s) have results: the assessment cannot close to them", p.district, p.session)
		}
	}
	var evaluation, unitType string
	var scored, counted bool
	if err := tx.QueryRow(ctx, `SELECT evaluation, unit_type,
			EXISTS (SELECT 1 FROM assessment_result WHERE assessment_id = $1 AND (marks IS NOT NULL OR grade IS NOT NULL)),
			EXISTS (SELECT 1 FROM assessment_tsp WHERE assessment_id = $1)
		FROM assessment WHERE id = $1`, id).Scan(&evaluation, &unitType, &scored, &counted); err != nil {
		return err
	}
	if scored && evaluation != b.Evaluation {
		return refuse(b.EvaluationAt, CodeInvalid, "results are written in %s: the evaluation cannot change to %s", evaluation, b.Evaluation)
	}
	if counted && unitType != b.UnitType {
		return refuse(b.UnitTypeAt, CodeInvalid, "class counts are written by unit type %s: the unit type cannot change to %s", unitType, b.UnitType)
	}
	rows, err = tx.Query(ctx, `SELECT c.component_type, max(r.marks)::float8 FROM assessment_result r
		LEFT JOIN assessment_component c ON c.id = r.component_id
		WHERE r.assessment_id = $1 AND r.marks IS NOT NULL GROUP BY 1`, id)
	if err != nil {
		return err
	}
	type highest struct {
		component *string
		marks     float64
	}
	highs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (highest, error) {
		var h highest
		err := row.Scan(&h.component, &h.marks)
		return h, err
	})
	if err != nil {
		return err
	}
	for _, h := range highs {
		if h.component == nil {
			if b.Total != nil && *b.Total < h.marks {
				return refuse(b.TotalAt, CodeInvalid, "marks up to %g are written: the total cannot be %g", h.marks, *b.Total)
			}
			continue
		}
		if i := slices.Index(res.components, *h.component); i >= 0 && b.Components[i].Max < h.marks {
			return refuse(b.Components[i].MaxAt, CodeInvalid, "marks up to %g are written for %s: its maximum cannot be %g", h.marks, *h.component, b.Components[i].Max)
		}
	}
	return nil
}

func componentsAt(b *Builder) string {
	if len(b.Components) > 0 {
		return b.Components[0].Kind.At
	}
	return b.Type.At
}

// resolve looks b's master data up by code or external id.
func resolve(ctx context.Context, tx pgx.Tx, b *Builder) (*resolved, error) {
	res := &resolved{subjects: map[int][]string{}}
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM academic_year WHERE id = $1)`, b.Year.Value).Scan(&ok); err != nil {
		return nil, err
	}
	if !ok {
		return nil, refuse(b.Year.At, CodeInvalid, "academic year %q does not exist", b.Year.Value)
	}
	var category *string
	err := tx.QueryRow(ctx, `SELECT id, category, name FROM assessment_type WHERE id = $1 OR external_id = $1 ORDER BY id = $1 DESC LIMIT 1`,
		b.Type.Value).Scan(&res.typ, &category, &res.name)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, refuse(b.Type.At, CodeInvalid, "assessment type %q is neither the code nor the external id of an assessment type", b.Type.Value)
	}
	if err != nil {
		return nil, err
	}
	if category != nil {
		res.category = category
	}
	if b.Category != nil {
		var c string
		err := tx.QueryRow(ctx, `SELECT id FROM assessment_category WHERE id = $1 OR external_id = $1 ORDER BY id = $1 DESC LIMIT 1`,
			b.Category.Value).Scan(&c)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, refuse(b.Category.At, CodeInvalid, "assessment category %q is neither the code nor the external id of an assessment category", b.Category.Value)
		}
		if err != nil {
			return nil, err
		}
		if category != nil && *category != c {
			return nil, refuse(b.Category.At, CodeInvalid, "assessment type %s is of category %s, not %s", res.typ, *category, c)
		}
		res.category = &c
	}
	if b.Name != "" {
		res.name = b.Name
	} else {
		res.name += " " + b.Year.Value
	}
	if res.districts, err = lookup(ctx, tx, b.Districts, "district",
		`SELECT d.name FROM district d WHERE lower(d.name) = lower($1) OR d.code = lower($1) OR d.external_id = $1 LIMIT 1`); err != nil {
		return nil, err
	}
	for _, c := range b.Classes {
		for _, s := range c.Subjects {
			var subject string
			var grade *int16
			err := tx.QueryRow(ctx, `SELECT id, NULL::smallint FROM subject WHERE id = $1
				UNION ALL SELECT subject, grade FROM subject_code WHERE external_id = $1 LIMIT 1`, s.Value).Scan(&subject, &grade)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, refuse(s.At, CodeInvalid, "subject %q is neither the code nor the external id of a subject", s.Value)
			}
			if err != nil {
				return nil, err
			}
			if grade != nil && int(*grade) != c.Grade {
				return nil, refuse(s.At, CodeInvalid, "subject id %s is %s of class %d, not of class %d", s.Value, subject, *grade, c.Grade)
			}
			res.subjects[c.Grade] = append(res.subjects[c.Grade], subject)
		}
	}
	kinds := make([]Ref, len(b.Components))
	for i, c := range b.Components {
		kinds[i] = c.Kind
	}
	if res.components, err = lookup(ctx, tx, kinds, "component type",
		`SELECT id FROM component_type WHERE id = upper($1) OR external_id = $1 ORDER BY id = upper($1) DESC LIMIT 1`); err != nil {
		return nil, err
	}
	// An assessment has one component per type: a second would replace
	// the first while the total counted both.
	for i, c := range res.components {
		if j := slices.Index(res.components, c); j < i {
			return nil, refuse(kinds[i].At, CodeInvalid, "component type %s is already component %d: each type is one component", c, b.Components[j].Position)
		}
	}
	if b.SMS != nil {
		err := tx.QueryRow(ctx, `SELECT type FROM sms_template WHERE type = $1 OR external_id = $1 ORDER BY enabled DESC LIMIT 1`, b.SMS.Value).Scan(&res.sms)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, refuse(b.SMS.At, CodeInvalid, "sms_template %q is neither an SMS template type nor the external id of an SMS template", b.SMS.Value)
		}
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// lookup resolves each ref with query (one parameter, one text column).
func lookup(ctx context.Context, tx pgx.Tx, refs []Ref, what, query string) ([]string, error) {
	out := make([]string, 0, len(refs))
	var unknown []string
	at := ""
	for _, r := range refs {
		var v string
		err := tx.QueryRow(ctx, query, r.Value).Scan(&v)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			unknown = append(unknown, r.Value)
			if at == "" {
				at = r.At
			}
		case err != nil:
			return nil, err
		default:
			out = append(out, v)
		}
	}
	if len(unknown) > 0 {
		return nil, refuse(at, CodeInvalid, "unknown %s %s (neither a code nor an external id)", what, strings.Join(quote(unknown), ", "))
	}
	return out, nil
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
