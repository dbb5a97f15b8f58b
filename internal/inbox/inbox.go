// Package inbox makes Hasura's at-least-once deliveries act exactly once.
// Every event and cron delivery is recorded by its Hasura id in the same
// transaction as the work it causes (domain rows, River jobs); a redelivery —
// a retry, a restarted Hasura re-sending a locked event, three copies racing —
// finds the id and does nothing. The record is what lets the webhook answer
// 2xx only after its work is durable.
//
// Under load, concurrent deliveries share transactions (group commit): while
// a batch is being built, new deliveries queue and the next transaction
// takes up to MaxBatch of them, with one multi-row inbox insert, one
// multi-row job insert and one commit (one fsync) for all. One batch is
// built at a time: the next starts when the last has committed — or
// sooner, in another transaction (at most MaxInFlight open), when the last
// is slow: it starts to commit while commits have been taking longer than
// builds (a disk slow to sync), it has taken longer than PassAfter (it
// waits for a connection, on a lock or on the disk), or it failed and runs
// again in parts. BEGIN and the inbox insert travel in one round trip when
// every delivery of the batch is new, as almost all are; a batch holding a
// redelivery rolls that back and is recorded the slower way that tells new
// from old. A delivery whose work fails makes the rest of its batch run
// again together, and then it alone, so one bad delivery never fails the
// others. At low load a delivery runs alone, as soon as no other batch is
// being built.
package inbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
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
	DefaultPassAfter   = 50 * time.Millisecond
	// txTimeout bounds one batch transaction; it does not depend on any one
	// caller's context, so a caller giving up does not abort the others.
	txTimeout = 30 * time.Second
)

// Inbox records deliveries.
type Inbox struct {
	pool  *pgxpool.Pool
	queue queue.Inserter

	// MaxInFlight caps the transactions open at once; MaxBatch caps
	// deliveries per transaction.
	MaxInFlight, MaxBatch int

	// PassAfter is how long a batch may take, from before it takes a
	// connection until its commit's answer, before the next may start in
	// another transaction: longer than a healthy batch takes on a slow
	// machine, so only a batch waiting on something (a connection, a lock,
	// a stalled disk) lets it. 0 lets every batch's next start at once, so
	// batches are built side by side.
	PassAfter time.Duration

	mu       sync.Mutex
	pending  []*request
	running  int  // leaders: transactions open, or about to be
	building bool // a leader is building a batch: taking it, recording it, running its work
	// buildTime and commitTime are moving averages of how long batches
	// took to build and to commit: the next batch starts during a commit
	// only when commits take longer (see handOff).
	buildTime, commitTime time.Duration

	// slowFor counts down the batches that skip recordAllNew after a
	// duplicate; fastBatches and slowBatches count the batches recorded by
	// recordAllNew and by recordNew.
	slowFor                  atomic.Int32
	fastBatches, slowBatches atomic.Int64
	// passes counts the turns passed, by why (Passes).
	passes [passReasons]atomic.Int64
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
	return &Inbox{pool: pool, queue: q, MaxInFlight: DefaultMaxInFlight, MaxBatch: DefaultMaxBatch, PassAfter: DefaultPassAfter}
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
	lead := in.claim()
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

// claim makes the caller the builder of the next batch when no batch is
// being built and a transaction slot is free; the caller holds mu and
// starts a leader when it says yes.
//
// One batch is built at a time because, with Postgres on the same few
// cores (measured on two), two would only share the CPU: each would be
// smaller, so the work per delivery greater (three round trips and a
// commit a batch), and neither done sooner. What a second transaction can
// overlap is waiting: a commit on the disk, work on a lock (pass).
func (in *Inbox) claim() bool {
	if in.building || in.running >= in.MaxInFlight {
		return false
	}
	in.running++
	in.building = true
	return true
}

// lead builds batches until nothing is pending, then gives up its slot. It
// starts as the builder; a batch that passed its turn (pass) leaves this
// leader to build again only if no one else does by then.
func (in *Inbox) lead() {
	building := true
	for {
		in.mu.Lock()
		if !building && in.building {
			// Another leader builds: this one's slot is free.
			in.running--
			in.mu.Unlock()
			return
		}
		if len(in.pending) == 0 {
			in.running--
			in.building = false
			in.mu.Unlock()
			return
		}
		in.building, building = true, true
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
			t := &turn{}
			slow := time.AfterFunc(in.PassAfter, func() { in.pass(t, passSlow) })
			in.safeExecute(batch, t)
			slow.Stop()
			in.mu.Lock()
			t.over = true // a timer that fired meanwhile passes nothing now
			building = !t.passed
			in.mu.Unlock()
		}
	}
}

// turn is one leader's turn at building, through the transactions of one
// batch (a failed batch runs again in parts). Its fields are guarded by
// mu: passed once the next batch may start, over once the batch is done.
type turn struct{ passed, over bool }

// Why a batch passed its turn.
const (
	passCommit  = iota // it started to commit, and commits have been slower than builds
	passSlow           // it took longer than PassAfter
	passFailed         // it failed and runs again in parts
	passReasons        // how many reasons
)

// Passes is how many batches let the next start before they were done:
// as they started to commit, because commits have been slower than
// builds; because they took longer than PassAfter; because they failed.
func (in *Inbox) Passes() (commit, slow, failed int64) {
	return in.passes[passCommit].Load(), in.passes[passSlow].Load(), in.passes[passFailed].Load()
}

// pass lets the next batch start now, in another leader if deliveries wait
// and a slot is free, instead of after t's batch: once per turn, and not
// after the batch is over. It is the only way a turn ends early: a second
// pass, or a late one, would end the turn of whoever builds by then.
func (in *Inbox) pass(t *turn, why int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.passLocked(t, why)
}

func (in *Inbox) passLocked(t *turn, why int) {
	if t.passed || t.over {
		return
	}
	t.passed = true
	in.passes[why].Add(1)
	in.building = false
	if len(in.pending) > 0 && in.claim() {
		go in.lead()
	}
}

// handOff is called as a transaction of t's batch, built in build (from
// before it took a connection until its commit), starts its commit. When
// commits have been taking longer than builds (a disk slow to sync), the
// next batch starts now instead of after the commit (pass). A batch that
// has passed already — slow, or failed — is not a usual build and is left
// out of the average.
func (in *Inbox) handOff(t *turn, build time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if t.passed {
		return
	}
	in.buildTime = average(in.buildTime, build)
	if in.commitTime > in.buildTime {
		in.passLocked(t, passCommit)
	}
}

// committed records how long a commit took, failed or not, for handOff.
func (in *Inbox) committed(took time.Duration) {
	in.mu.Lock()
	in.commitTime = average(in.commitTime, took)
	in.mu.Unlock()
}

// average moves a moving average an eighth of the way to x. One commit
// much slower than the usual build (a stall) turns handOff on for the next
// few dozen batches; builds and commits that then come back to their usual
// times turn it off again. (Builds are shorter while it is on, batches
// being smaller, so near the line it keeps whichever mode it is in.)
func average(avg, x time.Duration) time.Duration { return avg + (x-avg)/8 }

// safeExecute runs execute and, should anything in it panic outside a
// delivery's work (which execute recovers itself), fails the batch's
// undecided deliveries instead of leaving their callers waiting and this
// leader's slot taken.
func (in *Inbox) safeExecute(batch []*request, t *turn) {
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
	in.execute(batch, t)
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

func (in *Inbox) execute(batch []*request, t *turn) {
	// The batch belongs to no one caller: its statements carry none's
	// values, and no caller giving up cancels it.
	ctx, cancel := context.WithTimeout(context.Background(), txTimeout)
	defer cancel()
	err := in.transact(ctx, batch, t, func(tx pgx.Tx, fresh map[[16]byte]bool) error {
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
		// it, then it runs alone, so the failure stays with it. Deliveries
		// received meanwhile need not wait for either.
		in.pass(t, passFailed)
		rest := make([]*request, 0, len(batch)-1)
		for _, r := range batch {
			r.dup = false
			if r != item.r {
				rest = append(rest, r)
			}
		}
		in.execute(rest, t)
		in.execute([]*request{item.r}, t)
		return
	case !postgres.Unavailable(err):
		// Something else in the batch failed: every delivery its own
		// transaction. (An unreachable database fails them all: one 503
		// each and Hasura's retry, not a transaction each.)
		in.pass(t, passFailed)
		for _, r := range batch {
			r.dup = false
			in.execute([]*request{r}, t)
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

// transact records batch in a new transaction and runs fn in it with the
// ids recorded there (the deliveries not recorded before), then commits;
// if fn fails it rolls back. As it commits it may pass t's turn at
// building to the next batch (handOff).
//
// Recording first tries the one round trip of recordAllNew; when that
// cannot tell new from old it records the batch with recordNew.
func (in *Inbox) transact(ctx context.Context, batch []*request, t *turn, fn func(tx pgx.Tx, fresh map[[16]byte]bool) error) error {
	start := time.Now()
	conn, err := in.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	tx, fresh, ok, err := in.recordAllNew(ctx, conn, batch)
	if err == nil && !ok {
		tx, fresh, err = in.recordNew(ctx, conn, batch)
	}
	if err != nil {
		return err
	}
	// A panic out of fn (work's own are recovered in runWork) leaves tx
	// open: the deferred Release then hands back a connection still in a
	// transaction, which the pool closes instead of reusing, and Postgres
	// rolls the transaction back.
	if err := fn(tx, fresh); err != nil {
		return errors.Join(err, ignoreClosed(tx.Rollback(ctx)))
	}
	commit := time.Now()
	in.handOff(t, commit.Sub(start))
	err = tx.Commit(ctx)
	in.committed(time.Since(commit))
	return err
}

func ignoreClosed(err error) error {
	if errors.Is(err, pgx.ErrTxClosed) {
		return nil
	}
	return err
}

// The inbox's columns, and its primary key: a redelivery meets it.
const (
	inboxColumns = "event_id, kind, name, op, trace_id"
	inboxKey     = "webhook_inbox_pkey"
)

// slowAfterDuplicate is how many batches after one that met a delivery
// recorded before skip recordAllNew: redeliveries come in runs (a
// restarted Hasura re-sends every event it held), and each attempt that
// meets one costs two wasted round trips, up to MaxBatch dead rows for
// vacuum, and an error in Postgres's log with the statement, the batch's
// ids, names and trace ids included.
const slowAfterDuplicate = 64

// fastTag dollar-quotes recordAllNew's JSON document in its statement.
// Dollar quoting takes the text verbatim — no escapes, whatever
// standard_conforming_strings says — so only the tag itself could end it
// early. The document starts with '[' and ends with ']' and recordAllNew
// refuses one that holds the tag, so no value can end the literal.
const fastTag = "$inbox$"

// recordAllNew opens a transaction and records every delivery of the
// batch in the same round trip, for a batch whose deliveries are all new:
// BEGIN and a plain INSERT (no ON CONFLICT) go as one simple-protocol
// query, the transaction's begin statement, with the values in one JSON
// document quoted as a literal (fastTag). It returns the transaction and
// every id as new, and ok; or not ok, and no transaction, when it cannot
// tell new from old: a delivery recorded before (the INSERT's unique
// violation, then rolled back), the same id twice in the batch, a value
// holding the tag, a connection not speaking UTF-8, or a recent duplicate.
func (in *Inbox) recordAllNew(ctx context.Context, conn *pgxpool.Conn, batch []*request) (tx pgx.Tx, fresh map[[16]byte]bool, ok bool, err error) {
	for n := in.slowFor.Load(); n > 0; n = in.slowFor.Load() {
		if in.slowFor.CompareAndSwap(n, n-1) {
			return nil, nil, false, nil
		}
	}
	// JSON is UTF-8; the literal must reach the server as such.
	if conn.Conn().PgConn().ParameterStatus("client_encoding") != "UTF8" {
		return nil, nil, false, nil
	}
	type row struct {
		EventID string `json:"event_id"`
		Kind    string `json:"kind"`
		Name    string `json:"name"`
		Op      string `json:"op,omitempty"`
		TraceID string `json:"trace_id,omitempty"`
	}
	rows := make([]row, len(batch))
	fresh = make(map[[16]byte]bool, len(batch))
	for i, r := range batch {
		if fresh[r.d.ID] {
			return nil, nil, false, nil
		}
		fresh[r.d.ID] = true
		rows[i] = row{EventID: r.d.ID.String(), Kind: r.d.Kind, Name: r.d.Name, Op: r.d.Op, TraceID: r.d.TraceID}
	}
	doc, err := json.Marshal(rows)
	if err != nil || bytes.Contains(doc, []byte(fastTag)) {
		return nil, nil, false, nil
	}
	tx, err = conn.BeginTx(ctx, pgx.TxOptions{BeginQuery: "BEGIN; INSERT INTO webhook_inbox (" + inboxColumns + ") SELECT " + inboxColumns +
		" FROM json_to_recordset(" + fastTag + string(doc) + fastTag + ") AS d(event_id uuid, kind text, name text, op text, trace_id text)"})
	if err == nil {
		in.fastBatches.Add(1)
		return tx, fresh, true, nil
	}
	// An error from Postgres leaves the transaction open and aborted
	// (pgx closes the connection on any other, and the pool drops it).
	if conn.Conn().PgConn().TxStatus() != 'I' {
		if _, rerr := conn.Exec(ctx, "ROLLBACK"); rerr != nil {
			return nil, nil, false, errors.Join(err, rerr)
		}
	}
	if postgres.UniqueViolation(err, inboxKey) {
		in.slowFor.Store(slowAfterDuplicate)
		return nil, nil, false, nil
	}
	return nil, nil, false, err
}

// recordNew opens a transaction and records in it the deliveries of the
// batch not recorded before, in one statement, and returns their ids.
func (in *Inbox) recordNew(ctx context.Context, conn *pgxpool.Conn, batch []*request) (pgx.Tx, map[[16]byte]bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, nil, err
	}
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
	rows, err := tx.Query(ctx, "INSERT INTO webhook_inbox ("+inboxColumns+`)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
		ON CONFLICT (event_id) DO NOTHING RETURNING event_id`, ids, kinds, names, ops, traces)
	var inserted [][16]byte
	if err == nil {
		inserted, err = pgx.CollectRows(rows, pgx.RowTo[[16]byte])
	}
	if err != nil {
		return nil, nil, errors.Join(err, ignoreClosed(tx.Rollback(ctx)))
	}
	fresh := make(map[[16]byte]bool, len(inserted))
	for _, id := range inserted {
		fresh[id] = true
	}
	in.slowBatches.Add(1)
	return tx, fresh, nil
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
