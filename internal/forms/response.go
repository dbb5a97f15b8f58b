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
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/xform"
)

// writeResponse stores a data-collection submission as a response with its
// answers, evaluates the form's rules and records their flags (queuing a
// RULE_FLAG SMS to the collector). An edit (meta/deprecatedID naming an
// accepted submission) replaces the earlier response's answers and flags in
// place, keeping its id, and marks the earlier submission superseded.
func (p *Pipeline) writeResponse(ctx context.Context, tx pgx.Tx, id uuid.UUID, sub *xform.Submission, replaces string, def *Definition,
	answers []xform.Answer, collectorID *uuid.UUID) (*Result, error) {
	b := &pgx.Batch{}
	var responseID uuid.UUID
	var kept []byte // the replaced answers' free metadata
	replaced := false
	if replaces != "" {
		var old uuid.UUID
		err := tx.QueryRow(ctx, `SELECT r.id FROM form_submission s JOIN response r ON r.submission_id = s.id
			WHERE s.instance_id = $1 AND s.status = 'accepted' FOR UPDATE OF s, r`, replaces).Scan(&old)
		switch {
		case err == nil:
			if kept, err = keptAnswerMeta(ctx, tx, old); err != nil {
				return nil, err
			}
			b.Queue(`DELETE FROM answer WHERE response_id = $1`, old)
			b.Queue(`DELETE FROM response_flag WHERE response_id = $1`, old)
			responseID, replaced = old, true
		case errors.Is(err, pgx.ErrNoRows):
			// The version it replaces has no response (an assessment builder
			// under a data-collection form id cannot be: checkEdit compared
			// forms): this is the response.
		default:
			return nil, err
		}
	}
	if !replaced {
		responseID = uuid.New()
	}
	set, err := readSettings(ctx, tx, sub.FormID)
	if err != nil {
		return nil, err
	}
	flags, err := p.queueResponse(ctx, tx, set, b, responseID, id, sub, replaces, def, answers, collectorID, replaced)
	if err != nil {
		return nil, err
	}
	if err := runBatch(ctx, tx.SendBatch(ctx, b), b.Len(), false); err != nil {
		return nil, err
	}
	if kept != nil {
		// An edit keeps the free metadata of the answers it replaces: the
		// same question (by name) and repeat position and, for a multiple
		// choice, the same selected choice (a single answer keeps its note
		// when its value changes).
		if _, err := tx.Exec(ctx, `UPDATE answer a SET meta = k.meta
			FROM jsonb_to_recordset($2::jsonb) AS k(name text, repeat_index int[], n smallint, value text, meta jsonb), form_question q
			WHERE a.response_id = $1 AND q.id = a.question_id AND q.name = k.name AND a.repeat_index = k.repeat_index
			  AND CASE WHEN q.type = 'select' THEN a.value_text = k.value ELSE a.n = k.n END`,
			responseID, kept); err != nil {
			return nil, err
		}
	}
	return &Result{SubmissionID: id, Status: StatusAccepted, InstanceID: sub.InstanceID, ResponseID: &responseID, Flags: flags}, nil
}

// queueResponse adds to b the response row (new, or the replaced one
// updated), its answers and the flags of the rules (of set) it breaks, with
// the RULE_FLAG SMS to the collector; it returns the flag messages. It reads
// the collector's phone through q: the transaction b will run in, if any
// (never a second connection while one is held).
func (p *Pipeline) queueResponse(ctx context.Context, q querier, set settings, b *pgx.Batch, responseID, submissionID uuid.UUID, sub *xform.Submission,
	replaces string, def *Definition, answers []xform.Answer, collectorID *uuid.UUID, replace bool) ([]string, error) {
	broken, ruleErrors := p.judge(ctx, sub, def, answers, set)
	meta := map[string]any{}
	if sub.InstanceName != "" {
		meta["instanceName"] = sub.InstanceName
	}
	if replace {
		meta["replaces"] = replaces
		b.Queue(`UPDATE response SET submission_id = $2, instance_id = $3, form_version = $4,
			collector_id = coalesce($5, collector_id), meta = meta || $6, flagged = $7, rule_errors = $8, edited_at = now() WHERE id = $1`,
			responseID, submissionID, sub.InstanceID, sub.Version, collectorID, meta, len(broken) > 0, ruleErrors)
	} else {
		b.Queue(`INSERT INTO response (id, form_id, form_version, submission_id, instance_id, collector_id, meta, flagged, rule_errors)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, responseID, sub.FormID, sub.Version, submissionID, sub.InstanceID,
			collectorID, meta, len(broken) > 0, ruleErrors)
	}
	if err := queueAnswers(b, responseID, def, answers); err != nil {
		return nil, err
	}
	if !replace {
		if err := queueReceipt(b, set.receipt, sub, def, answers); err != nil {
			return nil, err
		}
	}
	return p.queueFlags(ctx, q, b, responseID, sub, def, broken, collectorID)
}

// judge runs the form's rules (of set) on a response's answers: the rules
// it breaks, and those that failed to run (for response.rule_errors; nil
// when every rule ran), logged without the values.
func (p *Pipeline) judge(ctx context.Context, sub *xform.Submission, def *Definition, answers []xform.Answer, set settings) ([]Rule, any) {
	broken, failed := p.Rules.Evaluate(def.Form, answers, set.rules)
	if len(failed) == 0 {
		return broken, nil
	}
	p.Metrics.ruleErrors(len(failed))
	for _, e := range failed {
		// The error text can quote an answer: it stays on the response,
		// out of the log.
		p.Log.WarnContext(ctx, "form rule failed to evaluate", "form_id", sub.FormID, "version", sub.Version,
			"rule", e.Rule, "rule_id", e.RuleID, "instance_id", sub.InstanceID)
	}
	return broken, failed
}

// queueFlags adds to b the flags of the broken rules of a response, with
// the RULE_FLAG SMS to its collector (if it has one); it returns the flag
// messages. It reads the collector's phone through q.
func (p *Pipeline) queueFlags(ctx context.Context, q querier, b *pgx.Batch, responseID uuid.UUID, sub *xform.Submission, def *Definition,
	broken []Rule, collectorID *uuid.UUID) ([]string, error) {
	flags := []string{}
	if len(broken) == 0 {
		return flags, nil
	}
	var ids []uuid.UUID
	var names []string
	for _, r := range broken {
		ids, names, flags = append(ids, r.ID), append(names, r.Name), append(flags, r.Message)
	}
	b.Queue(`INSERT INTO response_flag (response_id, rule_id, rule_name, message)
		SELECT $1, * FROM unnest($2::uuid[], $3::text[], $4::text[])`, responseID, ids, names, flags)
	if collectorID != nil {
		phone, err := collector.Phone(ctx, q, *collectorID)
		if err != nil {
			return nil, err
		}
		if _, err := sms.EnqueueBatch(b, sms.Direct{Type: "RULE_FLAG", Phones: []string{phone}, Source: "forms",
			Variables: map[string]string{"reference": reference(sub), "form_title": def.Form.Title,
				"message": truncateRunes(strings.Join(flags, "; "), maxFlagMessage)}}); err != nil {
			return nil, fmt.Errorf("queue rule-flag SMS: %w", err)
		}
	}
	return flags, nil
}

// reference names a submission in SMS: its instanceName, or the start of
// its instanceID.
func reference(sub *xform.Submission) string {
	if sub.InstanceName != "" {
		return truncateRunes(sub.InstanceName, maxReference)
	}
	id := strings.TrimPrefix(sub.InstanceID, "uuid:")
	return id[:min(8, len(id))]
}

// queueReceipt adds the RECEIPT SMS of a new response to b when its form has
// an enabled receipt: to the respondent's number (an answer), naming them
// and summarising answers with their labels in the receipt's language. A
// response without a usable Indian mobile number gets no receipt.
func queueReceipt(b *pgx.Batch, rec *receipt, sub *xform.Submission, def *Definition, answers []xform.Answer) error {
	if rec == nil {
		return nil
	}
	phoneField, nameField, summary, lang := rec.PhoneField, rec.NameField, rec.SummaryFields, rec.Language
	byName := map[string]xform.Answer{}
	for _, a := range answers {
		if _, seen := byName[a.Field.Name]; !seen && a.Field.Repeat == "" {
			byName[a.Field.Name] = a
		}
	}
	e164, reason := sms.Normalize(byName[phoneField].Raw)
	if reason != "" {
		return nil
	}
	name := ""
	if nameField != nil {
		name = truncateRunes(byName[*nameField].Raw, maxReceiptName)
	}
	var parts []string
	for _, field := range summary {
		a, ok := byName[field]
		if !ok {
			continue
		}
		parts = append(parts, label(a.Field.Labels, lang, a.Field.Name)+": "+displayValue(a, lang))
	}
	_, err := sms.EnqueueBatch(b, sms.Direct{Type: "RECEIPT", Phones: []string{e164}, Source: "forms",
		Variables: map[string]string{"name": name, "form_title": def.Form.Title, "summary": truncateRunes(strings.Join(parts, ", "), maxReceiptSummary),
			"reference": reference(sub)}})
	return err
}

// The SMS variables made of answers or of many rules' messages are cut to
// these many characters (then "…"): an SMS shows far less, and a request's
// variables are bounded (8 KiB) — an answer of thousands of characters
// would otherwise make its response fail to store. (A form's title is at
// most 300 characters.)
const (
	maxReceiptName    = 100
	maxReceiptSummary = 1000
	maxReference      = 100
	maxFlagMessage    = 1000
)

func label(labels map[string]string, lang, fallback string) string {
	if l := labels[lang]; l != "" {
		return l
	}
	if l := labels["default"]; l != "" {
		return l
	}
	return fallback
}

// displayValue shows choices by their labels.
func displayValue(a xform.Answer, lang string) string {
	if len(a.Choices) == 0 {
		return a.Raw
	}
	var out []string
	for _, v := range a.Choices {
		shown := v
		for _, c := range a.Field.Choices {
			if c.Value == v {
				shown = label(c.Labels, lang, v)
			}
		}
		out = append(out, shown)
	}
	return strings.Join(out, ", ")
}

// errNotWritten: the fast path's submission row was not written (an
// accepted edit already replaced its instanceID).
var errNotWritten = errors.New("submission row not written")

// runBatch executes every statement of a sent batch and closes it;
// firstWrites requires the first statement to have written a row.
func runBatch(ctx context.Context, br pgx.BatchResults, n int, firstWrites bool) error {
	for i := range n {
		tag, err := br.Exec()
		if err == nil && i == 0 && firstWrites && tag.RowsAffected() != 1 {
			err = errNotWritten
		}
		if err != nil {
			return errors.Join(err, br.Close())
		}
	}
	return br.Close()
}

// queueAnswers adds the insert of answers to b, one statement: a row per
// value, a row per selected choice of a multiple choice.
func queueAnswers(b *pgx.Batch, responseID uuid.UUID, def *Definition, answers []xform.Answer) error {
	// pgtype values, not pointers: pgx encodes arrays of these directly,
	// where []*uuid.UUID and friends go through reflection and an error per
	// element (a quarter of the ingestion's CPU on the benchmark).
	n := len(answers)
	var (
		questions = make([]pgtype.UUID, 0, n)
		indexes   = make([]string, 0, n)
		ordinals  = make([]int16, 0, n)
		texts     = make([]string, 0, n)
		numbers   = make([]pgtype.Text, 0, n)
		times     = make([]pgtype.Timestamptz, 0, n)
		bools     = make([]pgtype.Bool, 0, n)
		choices   = make([]pgtype.UUID, 0, n)
	)
	add := func(qid uuid.UUID, index []int, ord int, text string, number *string, t *time.Time, b *bool, choice *uuid.UUID) {
		questions = append(questions, pgtype.UUID{Bytes: qid, Valid: true})
		indexes = append(indexes, intArray(index))
		ordinals = append(ordinals, int16(ord))
		texts = append(texts, text)
		var num pgtype.Text
		if number != nil {
			num = pgtype.Text{String: *number, Valid: true}
		}
		var ts pgtype.Timestamptz
		if t != nil {
			ts = pgtype.Timestamptz{Time: *t, Valid: true}
		}
		var bl pgtype.Bool
		if b != nil {
			bl = pgtype.Bool{Bool: *b, Valid: true}
		}
		var ch pgtype.UUID
		if choice != nil {
			ch = pgtype.UUID{Bytes: *choice, Valid: true}
		}
		numbers, times, bools, choices = append(numbers, num), append(times, ts), append(bools, bl), append(choices, ch)
	}
	for _, a := range answers {
		qid, ok := def.questions[a.Field.Path]
		if !ok {
			return fmt.Errorf("form %s version %s has no question %s", def.Form.ID, def.Form.Version, a.Field.Path)
		}
		switch {
		case a.Field.Type == xform.Select:
			for i, v := range a.Choices {
				add(qid, a.Index, i, v, nil, nil, nil, choiceID(def, qid, v))
			}
		case a.Field.Type == xform.Select1:
			add(qid, a.Index, 0, a.Raw, nil, nil, nil, choiceID(def, qid, a.Raw))
		case a.Number != nil:
			raw := a.Raw
			add(qid, a.Index, 0, a.Raw, &raw, nil, nil, nil)
		default:
			add(qid, a.Index, 0, a.Raw, nil, a.Time, a.Bool, nil)
		}
	}
	if len(questions) == 0 {
		return nil
	}
	b.Queue(`INSERT INTO answer (response_id, question_id, repeat_index, n, value_text, value_number, value_time, value_bool, choice_id)
		SELECT $1, q, i::int[], o, t, num::numeric, tm, b, c
		FROM unnest($2::uuid[], $3::text[], $4::int2[], $5::text[], $6::text[], $7::timestamptz[], $8::bool[], $9::uuid[])
		  AS u(q, i, o, t, num, tm, b, c)`,
		responseID, questions, indexes, ordinals, texts, numbers, times, bools, choices)
	return nil
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

// keptAnswerMeta reads the free metadata of response's answers that have
// any, as a JSON array of {name, repeat_index, n, value, meta} (nil when
// none).
func keptAnswerMeta(ctx context.Context, tx pgx.Tx, response uuid.UUID) ([]byte, error) {
	var kept []byte
	err := tx.QueryRow(ctx, `SELECT jsonb_agg(jsonb_build_object('name', q.name, 'repeat_index', a.repeat_index, 'n', a.n,
			'value', a.value_text, 'meta', a.meta))
		FROM answer a JOIN form_question q ON q.id = a.question_id WHERE a.response_id = $1 AND a.meta <> '{}'`, response).Scan(&kept)
	return kept, err
}
