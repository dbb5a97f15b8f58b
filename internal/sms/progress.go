package sms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/queue"
)

// ProgressArgs asks for a request's counts and status to be brought up to
// date with its messages. Unique by request while one is waiting or running
// (queue.UniqueUntilFinished). The expansion enqueues it once; Reconcile
// enqueues it again for a request still open whose job is gone (deleted by an
// operator, discarded). A delivery report arriving after the request finished
// starts no new one: RecordStatuses adjusts the finished request's counts
// itself, and its status stays.
type ProgressArgs struct {
	RequestID uuid.UUID `json:"request_id" river:"unique"`
}

// Kind is the River job kind.
func (ProgressArgs) Kind() string { return "sms.progress" }

// InsertOpts makes progress unique per request while it is pending.
func (ProgressArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: queue.UniqueUntilFinished()}
}

// ProgressEvery is how often a sending request's counts are refreshed.
const ProgressEvery = 2 * time.Second

// StuckAfter fails messages that made no progress for this long and have no
// send job left (lost to an operator or a bug), so the request still
// finishes. A message tried at least once has its own retry job, at most
// ~78 minutes apart; one never tried waits for its request's batches, which
// at a low provider rate can take many hours: it counts as stuck only when
// no batch of its request is left.
const StuckAfter = 6 * time.Hour

// ProgressWorker recounts a request's messages (one aggregate per run
// instead of a hot counter row updated by every send) and finishes the
// request when no message is pending: DONE if anything was sent, FAILED with
// the reasons otherwise. Until then it snoozes and runs again.
type ProgressWorker struct {
	river.WorkerDefaults[ProgressArgs]
	Pool *pgxpool.Pool
}

// Timeout bounds one recount (one transaction).
func (w *ProgressWorker) Timeout(*river.Job[ProgressArgs]) time.Duration { return queue.MaxTimeout }

// Work refreshes job.Args.RequestID.
func (w *ProgressWorker) Work(ctx context.Context, job *river.Job[ProgressArgs]) error {
	var (
		finished                                         bool
		status                                           string
		schoolID                                         *uuid.UUID
		typ                                              string
		total, sent, delivered, failed, skipped, pending int
	)
	err := pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sms_message SET status = 'failed', updated_at = now(),
				unconfirmed_attempts = unconfirmed_attempts + CASE WHEN status = 'sending' THEN 1 ELSE 0 END,
				last_error = 'no progress for ' || $2 || ': its send job was lost'
			WHERE request_id = $1 AND status IN ('queued', 'sending') AND updated_at < now() - make_interval(secs => $3)
			  AND (attempts > 0 OR NOT EXISTS (SELECT 1 FROM river_job
			         WHERE kind = 'sms.send_batch' AND args ->> 'request_id' = $1::text
			           AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled')))`,
			job.Args.RequestID, StuckAfter.String(), StuckAfter.Seconds()); err != nil {
			return err
		}
		var expanded, cutShort bool
		// Lock the request before counting (reports lock messages, then
		// the request): the count then includes every report committed
		// before it, and later reports adjust what it writes.
		err := tx.QueryRow(ctx, `SELECT status, school_id, type, recipients_total, skipped, expanded_at IS NOT NULL, expansion_cut_short
			FROM sms_request WHERE id = $1 FOR UPDATE`, job.Args.RequestID).
			Scan(&status, &schoolID, &typ, &total, &skipped, &expanded, &cutShort)
		if errors.Is(err, pgx.ErrNoRows) {
			finished = true // deleted
			return nil
		}
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status IN ('sent', 'delivered')),
				count(*) FILTER (WHERE status = 'delivered'), count(*) FILTER (WHERE status = 'failed'),
				count(*) FILTER (WHERE status IN ('queued', 'sending'))
			FROM sms_message WHERE request_id = $1`, job.Args.RequestID).Scan(&sent, &delivered, &failed, &pending); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sms_request SET sent = $2, delivered = $3, failed = $4 WHERE id = $1`,
			job.Args.RequestID, sent, delivered, failed); err != nil {
			return err
		}
		if status != "PROCESSING" || !expanded || pending > 0 {
			finished = status == "DONE" || status == "FAILED"
			return nil
		}
		finished = true
		next, remarks := "DONE", fmt.Sprintf("%d of %d sent", sent, total)
		if failed > 0 {
			remarks += fmt.Sprintf(", %d failed", failed)
		}
		if skipped > 0 {
			remarks += fmt.Sprintf(", %d skipped", skipped)
		}
		if sent == 0 {
			next = "FAILED"
			var last string
			err := tx.QueryRow(ctx, `SELECT coalesce(last_error, '') FROM sms_message WHERE request_id = $1 AND status = 'failed'
				ORDER BY updated_at DESC LIMIT 1`, job.Args.RequestID).Scan(&last)
			if err != nil && !errors.Is(err, pgx.ErrNoRows) { // none failed: everything was skipped
				return fmt.Errorf("last error of request %s: %w", job.Args.RequestID, err)
			}
			remarks = fmt.Sprintf("nothing could be sent: %d failed", failed)
			if last != "" {
				remarks += " (last error: " + last + ")"
			}
		}
		if cutShort {
			remarks += "; " + CutShortRemark
		}
		if _, err := tx.Exec(ctx, `UPDATE sms_request SET status = $2, remarks = $3, finished_at = now() WHERE id = $1`,
			job.Args.RequestID, next, remarks); err != nil {
			return err
		}
		distinct := analytics.System
		if schoolID != nil {
			distinct = schoolID.String()
		}
		// Counts and internal ids only: never phones or names.
		return analytics.Record(ctx, tx, distinct, "sms_request_finished", map[string]any{
			"request_id": job.Args.RequestID, "type": typ, "status": next,
			"recipients": total, "sent": sent, "failed": failed, "skipped": skipped,
		})
	})
	if err != nil {
		return err
	}
	if !finished {
		return river.JobSnooze(ProgressEvery)
	}
	return nil
}

// CutShortRemark ends the remarks of a request whose expansion was given up
// after it had queued some messages: those were sent, the students after
// them were not messaged.
const CutShortRemark = "stopped before every recipient was reached: the recipient list could not be completed, and students after those counted were not messaged"
