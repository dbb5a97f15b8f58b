package sms

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/queue"
)

// Poller is a provider whose delivery reports shala must fetch (C-DAC has
// no callbacks).
type Poller interface {
	Name() string
	Reports(ctx context.Context, providerMessageIDs []string) ([]Status, error)
}

// Reports records delivery reports that providers push (Twilio's status
// callbacks) against the messages they are about.
type Reports struct{ pool *pgxpool.Pool }

// NewReports returns the store of delivery reports on pool.
func NewReports(pool *pgxpool.Pool) *Reports { return &Reports{pool: pool} }

// Record records provider's statuses (RecordStatuses) and returns how many
// requests' counts changed.
func (r *Reports) Record(ctx context.Context, provider string, statuses []Status) (int, error) {
	return RecordStatuses(ctx, r.pool, provider, statuses)
}

// ReportWindow is how long after sending a message's report is polled.
const ReportWindow = 48 * time.Hour

// ReportBatch is how many messages one poll checks; the least recently
// checked go first, so every message gets its turn.
const ReportBatch = 500

// ReportArgs asks for one round of delivery-report polling.
type ReportArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (ReportArgs) Kind() string { return "sms.reports" }

// ReportWorker polls delivery reports of sent messages.
type ReportWorker struct {
	river.WorkerDefaults[ReportArgs]
	Pool   *pgxpool.Pool
	Poller Poller
}

// Timeout bounds one round of polling; a round cut short records what it
// fetched and the next round goes on (see PollReports).
func (w *ReportWorker) Timeout(*river.Job[ReportArgs]) time.Duration { return queue.MaxTimeout }

// Work polls one batch.
func (w *ReportWorker) Work(ctx context.Context, job *river.Job[ReportArgs]) error {
	_, err := PollReports(ctx, w.Pool, w.Poller)
	if err != nil && ctx.Err() != nil {
		return nil // a partial round; the messages not reached get their turn in later rounds
	}
	return err
}

// PollReports checks the reports of up to ReportBatch sent messages and
// records the final ones; it returns how many requests' counts changed.
func PollReports(ctx context.Context, pool *pgxpool.Pool, p Poller) (int, error) {
	rows, err := pool.Query(ctx, `UPDATE sms_message SET report_checked_at = now()
		WHERE id IN (SELECT id FROM sms_message
		             WHERE provider = $1 AND status = 'sent' AND sent_at > now() - make_interval(secs => $2)
		             ORDER BY report_checked_at NULLS FIRST, sent_at LIMIT $3)
		RETURNING provider_message_id`, p.Name(), ReportWindow.Seconds(), ReportBatch)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	statuses, err := p.Reports(ctx, ids)
	// What was fetched is recorded even when the round was cut short.
	rctx, cancel := queue.WithGrace(ctx)
	defer cancel()
	n, rerr := RecordStatuses(rctx, pool, p.Name(), statuses)
	if err != nil {
		return n, fmt.Errorf("poll %s reports: %w", p.Name(), err)
	}
	return n, rerr
}
