package forms

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/xform"
)

// writeResponse stores a data-collection submission as a response with its
// answers, evaluates the form's rules and records their flags (queuing a
// RULE_FLAG SMS to the collector). An edit (meta/deprecatedID naming an
// accepted submission) replaces the earlier response's answers and flags in
// place, keeping its id, and marks the earlier submission superseded.
func (p *Pipeline) writeResponse(ctx context.Context, tx pgx.Tx, id uuid.UUID, sub *xform.Submission, def *Definition,
	answers []xform.Answer, collectorID *uuid.UUID) (*Result, error) {
	meta := map[string]any{}
	if sub.InstanceName != "" {
		meta["instanceName"] = sub.InstanceName
	}
	var responseID uuid.UUID
	replaced := false
	if sub.DeprecatedID != "" {
		var old uuid.UUID
		err := tx.QueryRow(ctx, `SELECT r.id FROM form_submission s JOIN response r ON r.submission_id = s.id
			WHERE s.instance_id = $1 AND s.status = 'accepted' FOR UPDATE OF s, r`, sub.DeprecatedID).Scan(&old)
		switch {
		case err == nil:
			meta["replaces"] = sub.DeprecatedID
			if _, err := tx.Exec(ctx, `UPDATE form_submission SET status = 'superseded' WHERE instance_id = $1 AND status = 'accepted'`,
				sub.DeprecatedID); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM answer WHERE response_id = $1`, old); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM response_flag WHERE response_id = $1`, old); err != nil {
				return nil, err
			}
			if _, err := tx.Exec(ctx, `UPDATE response SET submission_id = $2, instance_id = $3, form_version = $4,
				collector_id = coalesce($5, collector_id), meta = meta || $6, flagged = false WHERE id = $1`,
				old, id, sub.InstanceID, sub.Version, collectorID, meta); err != nil {
				return nil, err
			}
			responseID, replaced = old, true
		case errors.Is(err, pgx.ErrNoRows):
			// The original never arrived or was not accepted: this is the
			// response.
		default:
			return nil, err
		}
	}
	if !replaced {
		if err := tx.QueryRow(ctx, `INSERT INTO response (form_id, form_version, submission_id, instance_id, collector_id, meta)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, sub.FormID, sub.Version, id, sub.InstanceID, collectorID, meta).
			Scan(&responseID); err != nil {
			return nil, err
		}
	}
	if err := insertAnswers(ctx, tx, responseID, def, answers); err != nil {
		return nil, err
	}

	res := &Result{SubmissionID: id, Status: StatusAccepted, InstanceID: sub.InstanceID, ResponseID: &responseID, Flags: []string{}}
	rules, err := loadRules(ctx, tx, sub.FormID)
	if err != nil {
		return nil, err
	}
	broken := p.Rules.Evaluate(def.Form, answers, rules)
	if len(broken) == 0 {
		return res, nil
	}
	var ids []uuid.UUID
	var names, messages []string
	for _, r := range broken {
		ids, names, messages = append(ids, r.ID), append(names, r.Name), append(messages, r.Message)
		res.Flags = append(res.Flags, r.Message)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO response_flag (response_id, rule_id, rule_name, message)
		SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[])`, responseID, ids, names, messages); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, `UPDATE response SET flagged = true WHERE id = $1`, responseID); err != nil {
		return nil, err
	}
	if collectorID != nil {
		var phone string
		if err := tx.QueryRow(ctx, `SELECT phone FROM collector WHERE id = $1`, *collectorID).Scan(&phone); err != nil {
			return nil, err
		}
		reference := sub.InstanceName
		if reference == "" {
			reference = strings.TrimPrefix(sub.InstanceID, "uuid:")[:min(8, len(strings.TrimPrefix(sub.InstanceID, "uuid:")))]
		}
		if _, err := sms.Enqueue(ctx, tx, sms.Direct{Type: "RULE_FLAG", Phones: []string{phone}, Source: "forms",
			Variables: map[string]string{"reference": reference, "form_title": def.Form.Title, "message": strings.Join(messages, "; ")}}); err != nil {
			return nil, fmt.Errorf("queue rule-flag SMS: %w", err)
		}
	}
	return res, nil
}

// insertAnswers writes answers in one statement: one row per value, one per
// selected choice of a multiple choice.
func insertAnswers(ctx context.Context, tx pgx.Tx, responseID uuid.UUID, def *Definition, answers []xform.Answer) error {
	n := len(answers)
	var (
		questions = make([]uuid.UUID, 0, n)
		indexes   = make([]string, 0, n)
		texts     = make([]string, 0, n)
		numbers   = make([]*string, 0, n)
		times     = make([]*time.Time, 0, n)
		bools     = make([]*bool, 0, n)
		choices   = make([]*uuid.UUID, 0, n)
	)
	add := func(qid uuid.UUID, index []int, text string, number *string, t *time.Time, b *bool, choice *uuid.UUID) {
		questions = append(questions, qid)
		indexes = append(indexes, intArray(index))
		texts = append(texts, text)
		numbers, times, bools, choices = append(numbers, number), append(times, t), append(bools, b), append(choices, choice)
	}
	for _, a := range answers {
		qid, ok := def.questions[a.Field.Path]
		if !ok {
			return fmt.Errorf("form %s version %s has no question %s", def.Form.ID, def.Form.Version, a.Field.Path)
		}
		switch {
		case a.Field.Type == xform.Select:
			for _, v := range a.Choices {
				add(qid, a.Index, v, nil, nil, nil, choiceID(def, qid, v))
			}
		case a.Field.Type == xform.Select1:
			add(qid, a.Index, a.Raw, nil, nil, nil, choiceID(def, qid, a.Raw))
		case a.Number != nil:
			raw := a.Raw
			add(qid, a.Index, a.Raw, &raw, nil, nil, nil)
		default:
			add(qid, a.Index, a.Raw, nil, a.Time, a.Bool, nil)
		}
	}
	if len(questions) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO answer (response_id, question_id, repeat_index, value_text, value_number, value_time, value_bool, choice_id)
		SELECT $1, q, i::int[], t, n::numeric, tm, b, c
		FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::bool[], $8::uuid[]) AS u(q, i, t, n, tm, b, c)`,
		responseID, questions, indexes, texts, numbers, times, bools, choices)
	return err
}

func choiceID(def *Definition, qid uuid.UUID, value string) *uuid.UUID {
	if id, ok := def.choices[qid][value]; ok {
		return &id
	}
	return nil
}

func intArray(index []int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range index {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(n))
	}
	b.WriteByte('}')
	return b.String()
}
