// Package inbox makes Hasura's at-least-once deliveries act exactly once.
// Every event and cron delivery is recorded by its Hasura id in the same
// transaction as the work it causes (domain rows, River jobs); a redelivery —
// a retry, a restarted Hasura re-sending a locked event, three copies racing —
// finds the id and does nothing. The record is what lets the webhook answer
// 2xx only after its work is durable.
//
// Under load, concurrent deliveries share transactions (group commit): while
// MaxInFlight transactions are open, new deliveries queue and the next
// transaction takes up to MaxBatch of them, with one multi-row inbox insert,
// one multi-row job insert and one commit (one fsync) for all. A delivery
// whose work fails makes its batch retry each delivery in its own
// transaction, so one bad delivery never fails the others. At low load a
// delivery runs alone, immediately.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
)

// Delivery identifies one Hasura delivery.
type Delivery struct {
	ID      uuid.UUID
	Kind    string // "event" or "cron"
	Name    string // trigger or cron name
	Op      string // event op; empty for cron
	TraceID string
}

// Work is the transaction a delivery's work runs in. Domain writes use Tx;
// jobs are enqueued with Enqueue and inserted together, in Tx, before the
// commit.
type Work struct {
	Tx   pgx.Tx
	jobs []river.InsertManyParams
}

// Enqueue adds a job to insert in this transaction.
func (w *Work) Enqueue(args river.JobArgs, opts *river.InsertOpts) {
	w.jobs = append(w.jobs, river.InsertManyParams{Args: args, InsertOpts: opts})
}

// Defaults for group commit.
const (
	DefaultMaxInFlight = 2
	DefaultMaxBatch    = 128
	// txTimeout bounds one batch transaction; it does not depend on any one
	// caller's context, so a caller giving up does not abort the others.
	txTimeout = 30 * time.Second
)

// Inbox records deliveries.
type Inbox struct {
	pool  *pgxpool.Pool
	queue queue.Inserter

	// MaxInFlight is how many transactions run at once before deliveries
	// start to queue; MaxBatch caps deliveries per transaction.
	MaxInFlight, MaxBatch int

	mu      sync.Mutex
	pending []*request
	running int
}

type request struct {
	ctx    context.Context // the caller's, without its cancellation: its values (log ids) go to the work
	caller context.Context // the caller's: done when it has answered
	d      Delivery
	fn     func(ctx context.Context, w *Work) error
	done   chan struct{}
	dup    bool
	err    error
}

// New returns an inbox writing to pool and enqueuing with q.
func New(pool *pgxpool.Pool, q queue.Inserter) *Inbox {
	return &Inbox{pool: pool, queue: q, MaxInFlight: DefaultMaxInFlight, MaxBatch: DefaultMaxBatch}
}

// Receive records d and runs fn in the same transaction. If d was recorded
// before, fn is not run and duplicate is true. It returns once the
// transaction has committed (or failed), or when ctx is done, whichever
// comes first. Concurrent copies of d wait on the first one's row: if it
// commits they are duplicates, if it rolls back one of them does the work.
// fn gets a context with ctx's values (request, event and trace ids for the
// logs) and the batch's deadline. Errors are translated
// (postgres.Translate), so an unreachable database surfaces as
// fault.Unavailable.
func (in *Inbox) Receive(ctx context.Context, d Delivery, fn func(ctx context.Context, w *Work) error) (duplicate bool, err error) {
	r := &request{ctx: context.WithoutCancel(ctx), caller: ctx, d: d, fn: fn, done: make(chan struct{})}
	in.mu.Lock()
	in.pending = append(in.pending, r)
	lead := in.running < in.MaxInFlight
	if lead {
		in.running++
	}
	in.mu.Unlock()
	if lead {
		// The leader runs batches on its own goroutine: the caller waits
		// only for its own delivery (which another leader may take) and
		// for its own deadline, never for others' work.
		go in.lead()
	}
	select {
	case <-r.done:
		return r.dup, r.err
	case <-ctx.Done():
		// The work may still commit; Hasura's retry will then be a
		// duplicate. Answering now keeps the caller's deadline.
		return false, postgres.Translate(fmt.Errorf("record %s %s delivery %s: %w", d.Kind, d.Name, d.ID, ctx.Err()), "delivery")
	}
}

// lead runs batches until nothing is pending, then gives up its slot.
func (in *Inbox) lead() {
	for {
		in.mu.Lock()
		if len(in.pending) == 0 {
			in.running--
			in.mu.Unlock()
			return
		}
		n := min(len(in.pending), in.MaxBatch)
		batch := make([]*request, 0, n)
		for _, r := range in.pending[:n] {
			if r.caller.Err() != nil {
				// Its caller has answered (non-2xx) and Hasura will
				// deliver it again: not worth a transaction now.
				r.err = postgres.Translate(fmt.Errorf("record %s %s delivery %s: %w", r.d.Kind, r.d.Name, r.d.ID, r.caller.Err()), "delivery")
				close(r.done)
				continue
			}
			batch = append(batch, r)
		}
		in.pending = in.pending[n:]
		in.mu.Unlock()
		if len(batch) > 0 {
			in.safeExecute(batch)
		}
	}
}

// safeExecute runs execute and, should anything in it panic outside a
// delivery's work (which execute recovers itself), fails the batch's
// undecided deliveries instead of leaving their callers waiting and this
// leader's slot taken.
func (in *Inbox) safeExecute(batch []*request) {
	defer func() {
		if p := recover(); p != nil {
			for _, r := range batch {
				if !isDone(r) {
					r.dup, r.err = false, fmt.Errorf("record %s %s delivery %s: panic: %v", r.d.Kind, r.d.Name, r.d.ID, p)
					close(r.done)
				}
			}
		}
	}()
	in.execute(batch)
}

// runWork runs r's work, turning a panic into an error that names it (with
// the stack), so one bad delivery fails alone.
func runWork(ctx context.Context, r *request, w *Work) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in %s %s work: %v\n%s", r.d.Kind, r.d.Name, p, debug.Stack())
		}
	}()
	return r.fn(ctx, w)
}

func isDone(r *request) bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// errItem marks which delivery's work failed a batch.
type errItem struct {
	r   *request
	err error
}

func (e *errItem) Error() string { return e.err.Error() }
func (e *errItem) Unwrap() error { return e.err }

func (in *Inbox) execute(batch []*request) {
	// The batch belongs to no one caller: its statements carry none's
	// values, and no caller giving up cancels it.
	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, in.pool, func(tx pgx.Tx) error {
		// [16]byte, not uuid.UUID: pgx encodes it as a uuid directly,
		// where uuid.UUID's driver.Valuer (a string) fails the binary
		// plan first, and formats an error, for every element.
		ids := make([][16]byte, len(batch))
		kinds := make([]string, len(batch))
		names := make([]string, len(batch))
		ops := make([]*string, len(batch))
		traces := make([]*string, len(batch))
		for i, r := range batch {
			ids[i], kinds[i], names[i] = r.d.ID, r.d.Kind, r.d.Name
			if r.d.Op != "" {
				ops[i] = &r.d.Op
			}
			if r.d.TraceID != "" {
				traces[i] = &r.d.TraceID
			}
		}
		rows, err := tx.Query(ctx, `INSERT INTO webhook_inbox (event_id, kind, name, op, trace_id)
			SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
			ON CONFLICT (event_id) DO NOTHING RETURNING event_id`, ids, kinds, names, ops, traces)
		if err != nil {
			return err
		}
		inserted, err := pgx.CollectRows(rows, pgx.RowTo[[16]byte])
		if err != nil {
			return err
		}
		fresh := make(map[[16]byte]bool, len(inserted))
		for _, id := range inserted {
			fresh[id] = true
		}
		w := &Work{Tx: tx}
		for _, r := range batch {
			if !fresh[r.d.ID] { // recorded before, or an earlier copy in this batch
				r.dup = true
				continue
			}
			delete(fresh, r.d.ID)
			// The delivery's own values (its log ids) with the batch's
			// deadline, which bounds the work too.
			if err := runWork(withValues(ctx, r.ctx), r, w); err != nil {
				return &errItem{r: r, err: err}
			}
		}
		if len(w.jobs) > 0 {
			if _, err := in.queue.InsertManyTx(ctx, tx, w.jobs); err != nil {
				return fmt.Errorf("enqueue %d jobs: %w", len(w.jobs), err)
			}
		}
		return nil
	})
	var item *errItem
	switch {
	case err == nil || len(batch) == 1:
	case errors.As(err, &item):
		// One delivery's work failed (or panicked, or ran out of time): the
		// rest run again together first, so their answers do not wait for
		// it, then it runs alone, so the failure stays with it.
		rest := make([]*request, 0, len(batch)-1)
		for _, r := range batch {
			r.dup = false
			if r != item.r {
				rest = append(rest, r)
			}
		}
		in.execute(rest)
		in.execute([]*request{item.r})
		return
	case !postgres.Unavailable(err):
		// Something else in the batch failed: every delivery its own
		// transaction. (An unreachable database fails them all: one 503
		// each and Hasura's retry, not a transaction each.)
		for _, r := range batch {
			r.dup = false
			in.execute([]*request{r})
		}
		return
	}
	for _, r := range batch {
		if err != nil {
			r.dup = false
			r.err = postgres.Translate(fmt.Errorf("record %s %s delivery %s: %w", r.d.Kind, r.d.Name, r.d.ID, err), "delivery")
		}
		close(r.done)
	}
}

// withValues is ctx (its deadline and cancellation) with the values of
// values: a delivery's work runs in its batch's time but logs under its own
// request, event and trace ids.
func withValues(ctx, values context.Context) context.Context {
	return valuesFrom{Context: ctx, values: values}
}

type valuesFrom struct {
	context.Context
	values context.Context
}

func (c valuesFrom) Value(key any) any { return c.values.Value(key) }

// Retention is how long deliveries are remembered. Hasura redelivers within
// its retry window and re-sends events locked for more than 30 minutes; a
// month covers both with a wide margin.
const Retention = 30 * 24 * time.Hour

// PruneBatch is how many deliveries one prune statement deletes, so a
// backlog of millions is deleted in short statements.
const PruneBatch = 10_000

// Prune deletes up to PruneBatch deliveries received before now-olderThan,
// oldest first, and returns how many it deleted.
func Prune(ctx context.Context, pool *pgxpool.Pool, olderThan time.Duration) (int64, error) {
	tag, err := pool.Exec(ctx, `DELETE FROM webhook_inbox WHERE event_id IN (
			SELECT event_id FROM webhook_inbox WHERE received_at < now() - make_interval(secs => $1)
			ORDER BY received_at LIMIT $2)`, olderThan.Seconds(), PruneBatch)
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
	Pool *pgxpool.Pool
}

// Timeout bounds one run; a run deletes batches for half of it and
// snoozes to go on.
func (w *PruneWorker) Timeout(*river.Job[PruneArgs]) time.Duration { return queue.MaxTimeout }

// Work deletes deliveries older than Retention.
func (w *PruneWorker) Work(ctx context.Context, job *river.Job[PruneArgs]) error {
	start := time.Now()
	for {
		n, err := Prune(ctx, w.Pool, Retention)
		if err != nil || n < PruneBatch {
			return err
		}
		if time.Since(start) > queue.MaxTimeout/2 {
			return river.JobSnooze(0)
		}
	}
}
