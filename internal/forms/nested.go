package forms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/xform"
)

// SourceGraphQL marks the submission row of a response inserted through
// Hasura with its answers (a nested insert): it has no XML, and the
// database typed its answers as they were inserted (migration
// 1795318100000_response_nested_insert). Its rules and receipt are dealt
// with after the insert commits, by Check.
const SourceGraphQL = "graphql"

// Check runs the rules of a response inserted through Hasura and queues
// its receipt, once: the flags, rule_errors and the RECEIPT SMS the
// pipeline writes with an XForm submission's response, then processed_at
// on its submission row. The rules and receipt are those saved when it
// runs (seconds after the insert, or one to two minutes later when the
// sweep finds it). A
// submission already checked, or not such a response's, is left alone;
// one whose response an ODK edit took over first is only marked checked
// (the edit ran the rules on what it holds; edits queue no receipt).
func (p *Pipeline) Check(ctx context.Context, submissionID uuid.UUID) error {
	// The definition is read before the transaction: on a cache miss it
	// takes a connection of its own, never while this one holds another.
	var formID, version string
	err := p.Pool.QueryRow(ctx, `SELECT form_id, form_version FROM form_submission WHERE id = $1 AND source = $2`,
		submissionID, SourceGraphQL).Scan(&formID, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return postgres.Translate(err, "response")
	}
	def, err := p.Catalog.Get(ctx, formID, version)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, p.Pool, func(tx pgx.Tx) error {
		var checked bool
		if err := tx.QueryRow(ctx, `SELECT processed_at IS NOT NULL FROM form_submission WHERE id = $1 FOR UPDATE`, submissionID).
			Scan(&checked); err != nil || checked {
			return err
		}
		done := `UPDATE form_submission SET processed_at = now() WHERE id = $1`
		var (
			responseID uuid.UUID
			instanceID string
		)
		err := tx.QueryRow(ctx, `SELECT id, instance_id FROM response WHERE submission_id = $1`, submissionID).Scan(&responseID, &instanceID)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, done, submissionID)
			return err
		}
		if err != nil {
			return err
		}
		answers, err := readAnswers(ctx, tx, responseID, def)
		if err != nil {
			return err
		}
		set, err := readSettings(ctx, tx, formID)
		if err != nil {
			return err
		}
		sub := &xform.Submission{FormID: formID, Version: version, InstanceID: instanceID}
		broken, ruleErrors := p.judge(ctx, sub, def, answers, set)
		b := &pgx.Batch{}
		b.Queue(`UPDATE response SET flagged = $2, rule_errors = $3 WHERE id = $1`, responseID, len(broken) > 0, ruleErrors)
		if err := queueReceipt(b, set.receipt, sub, def, answers); err != nil {
			return err
		}
		if _, err := p.queueFlags(ctx, tx, b, responseID, sub, def, broken, nil); err != nil {
			return err
		}
		b.Queue(done, submissionID)
		return runBatch(ctx, tx.SendBatch(ctx, b), b.Len(), false)
	})
	return postgres.Translate(err, "response")
}

// readAnswers reads a stored response's answers as rules and receipts take
// them: with the values the database typed (a multiple choice's rows as
// one answer, its choices in order), by question position and repeat
// position.
func readAnswers(ctx context.Context, tx pgx.Tx, responseID uuid.UUID, def *Definition) ([]xform.Answer, error) {
	fields := make(map[uuid.UUID]*xform.Field, len(def.questions))
	for _, fl := range def.Form.Fields {
		if id, ok := def.questions[fl.Path]; ok {
			fields[id] = fl
		}
	}
	rows, err := tx.Query(ctx, `SELECT a.question_id, a.repeat_index, array_agg(a.value_text ORDER BY a.n),
			(array_agg(a.value_number::float8))[1], (array_agg(a.value_time))[1], (array_agg(a.value_bool))[1]
		FROM answer a JOIN form_question q ON q.id = a.question_id
		WHERE a.response_id = $1
		GROUP BY a.question_id, a.repeat_index, q.position ORDER BY q.position, a.repeat_index`, responseID)
	if err != nil {
		return nil, err
	}
	var out []xform.Answer
	var (
		qid    pgtype.UUID
		index  []int32
		values []string
		number *float64
		at     *time.Time
		truth  *bool
	)
	_, err = pgx.ForEachRow(rows, []any{&qid, &index, &values, &number, &at, &truth}, func() error {
		fl := fields[qid.Bytes]
		if fl == nil {
			return fmt.Errorf("form %s version %s has no question %s", def.Form.ID, def.Form.Version, uuid.UUID(qid.Bytes))
		}
		a := xform.Answer{Field: fl, Raw: strings.Join(values, " "), Number: number, Time: at, Bool: truth}
		if fl.Type == xform.Select || fl.Type == xform.Select1 {
			a.Choices = values
		}
		a.Index = make([]int, len(index))
		for i, n := range index {
			a.Index[i] = int(n)
		}
		out = append(out, a)
		return nil
	})
	return out, err
}

// CheckArgs asks for the check of a response inserted through Hasura
// (Check), by its submission row. Unique per submission while queued or
// running; Check itself runs once.
type CheckArgs struct {
	SubmissionID uuid.UUID `json:"submission_id" river:"unique"`
}

// Kind is the River job kind.
func (CheckArgs) Kind() string { return "forms.check_response" }

// InsertOpts makes the check unique per submission.
func (CheckArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: queue.UniqueUntilFinished()}
}

// CheckWorker works CheckArgs.
type CheckWorker struct {
	river.WorkerDefaults[CheckArgs]
	Pipeline *Pipeline
}

// Timeout bounds one check.
func (w *CheckWorker) Timeout(*river.Job[CheckArgs]) time.Duration { return queue.MaxTimeout }

// checkAttempts is how many times a check is tried before its failure is
// taken as permanent.
const checkAttempts = 3

// Work checks the response. A failure is retried; from the third attempt
// on, one that is not an unreachable or busy database (which is retried
// as long as River retries) is taken as permanent — it would fail every
// retry and every sweep after them — and recorded instead: a generic
// reason in the submission row's errors (the roles that submitted read
// it), the row counted as checked, the details logged and counted
// (shala_form_response_check_failures_total). A panic counts as a failure.
func (w *CheckWorker) Work(ctx context.Context, job *river.Job[CheckArgs]) error {
	err := w.check(ctx, job.Args.SubmissionID)
	if err == nil || job.Attempt < checkAttempts || fault.KindOf(err) == fault.Unavailable || postgres.Unavailable(err) {
		return err
	}
	w.Pipeline.Log.ErrorContext(ctx, "response check failed for good", "submission_id", job.Args.SubmissionID, "attempt", job.Attempt, "error", err)
	w.Pipeline.Metrics.checkFailed()
	reason, _ := json.Marshal([]xform.FieldError{{Path: "", Reason: "the form's rules and receipt could not be run on this response"}})
	_, rerr := w.Pipeline.Pool.Exec(ctx, `UPDATE form_submission SET processed_at = now(), errors = $2 WHERE id = $1 AND processed_at IS NULL`,
		job.Args.SubmissionID, reason)
	return postgres.Translate(rerr, "response")
}

func (w *CheckWorker) check(ctx context.Context, submissionID uuid.UUID) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic checking response of submission %s: %v\n%s", submissionID, p, debug.Stack())
		}
	}()
	return w.Pipeline.Check(ctx, submissionID)
}
