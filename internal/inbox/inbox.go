// Package inbox makes Hasura's at-least-once deliveries act exactly once.
// Every event and cron delivery is recorded by its Hasura id in the same
// transaction as the work it causes (domain rows, River jobs); a redelivery —
// a retry, a restarted Hasura re-sending a locked event, three copies racing —
// finds the id and does nothing. The record is what lets the webhook answer
// 2xx only after its work is durable.
package inbox

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/postgres"
)

// Delivery identifies one Hasura delivery.
type Delivery struct {
	ID      uuid.UUID
	Kind    string // "event" or "cron"
	Name    string // trigger or cron name
	Op      string // event op; empty for cron
	TraceID string
}

// ForEvent describes an event-trigger delivery.
func ForEvent[Row any](e *hasura.Event[Row]) Delivery {
	return Delivery{ID: e.ID, Kind: "event", Name: e.Trigger, Op: string(e.Op), TraceID: e.TraceID()}
}

// ForCron describes a cron or scheduled-event delivery.
func ForCron(c *hasura.CronEvent, name string) Delivery {
	return Delivery{ID: c.ID, Kind: "cron", Name: name}
}

// Inbox records deliveries.
type Inbox struct{ pool *pgxpool.Pool }

// New returns an inbox on pool.
func New(pool *pgxpool.Pool) *Inbox { return &Inbox{pool: pool} }

// Receive records d and runs fn in the same transaction. If d was recorded
// before, fn is not run and duplicate is true. Concurrent copies of d wait on
// the first one's row lock: if it commits they are duplicates, if it rolls
// back one of them does the work. Errors are translated (postgres.Translate),
// so an unreachable database surfaces as fault.Unavailable.
func (in *Inbox) Receive(ctx context.Context, d Delivery, fn func(ctx context.Context, tx pgx.Tx) error) (duplicate bool, err error) {
	err = pgx.BeginFunc(ctx, in.pool, func(tx pgx.Tx) error {
		var op, trace *string
		if d.Op != "" {
			op = &d.Op
		}
		if d.TraceID != "" {
			trace = &d.TraceID
		}
		tag, err := tx.Exec(ctx, `INSERT INTO webhook_inbox (event_id, kind, name, op, trace_id)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING`, d.ID, d.Kind, d.Name, op, trace)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			duplicate = true
			return nil
		}
		return fn(ctx, tx)
	})
	if err != nil {
		return false, postgres.Translate(fmt.Errorf("record %s %s delivery %s: %w", d.Kind, d.Name, d.ID, err), "delivery")
	}
	return duplicate, nil
}

// Retention is how long deliveries are remembered. Hasura redelivers within
// its retry window and re-sends events locked for more than 30 minutes; a
// month covers both with a wide margin.
const Retention = 30 * 24 * time.Hour

// Prune deletes deliveries received before now-olderThan and returns how
// many it deleted.
func (in *Inbox) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	tag, err := in.pool.Exec(ctx, `DELETE FROM webhook_inbox WHERE received_at < now() - make_interval(secs => $1)`, olderThan.Seconds())
	if err != nil {
		return 0, postgres.Translate(err, "delivery")
	}
	return tag.RowsAffected(), nil
}

// PruneArgs is the periodic job that prunes the inbox.
type PruneArgs struct{}

// Kind is the River job kind.
func (PruneArgs) Kind() string { return "inbox.prune" }

// PruneWorker works PruneArgs.
type PruneWorker struct {
	river.WorkerDefaults[PruneArgs]
	Inbox *Inbox
}

// Work deletes deliveries older than Retention.
func (w *PruneWorker) Work(ctx context.Context, job *river.Job[PruneArgs]) error {
	_, err := w.Inbox.Prune(ctx, Retention)
	return err
}
