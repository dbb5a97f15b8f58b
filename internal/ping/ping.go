// Package ping is the smallest complete capability: a ping row inserted
// through Hasura (or the ping action) fires the ping_created event trigger,
// whose webhook enqueues a job in the same transaction, and the job answers
// with exactly one pong. It exists to prove, and keep proving, the path every
// real capability takes: action/trigger → inbox → River → worker → row.
package ping

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
)

// Ping is a stored ping.
type Ping struct {
	ID        uuid.UUID
	Message   string
	CreatedAt time.Time
}

// Store reads and writes pings.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Create inserts a ping sent by sentBy (a user id, or "" when unknown).
func (s *Store) Create(ctx context.Context, message, sentBy string) (Ping, error) {
	var p Ping
	err := s.pool.QueryRow(ctx, `INSERT INTO ping (message, sent_by) VALUES ($1, nullif($2, ''))
		RETURNING id, message, created_at`, message, sentBy).Scan(&p.ID, &p.Message, &p.CreatedAt)
	return p, postgres.Translate(err, "ping")
}

// PongArgs asks for the pong of one ping. Unique by ping: however many times
// it is enqueued (redelivered events, the reconciler) one job exists at a
// time, and the pong's primary key makes the effect happen once regardless.
type PongArgs struct {
	PingID  uuid.UUID  `json:"ping_id" river:"unique"`
	EventID *uuid.UUID `json:"event_id,omitempty"`
}

// Kind is the River job kind.
func (PongArgs) Kind() string { return "ping.pong" }

// InsertOpts makes the job unique by ping id.
func (PongArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// PongWorker writes the pong and completes its job in one transaction, so the
// effect and the job's completion commit together.
type PongWorker struct {
	river.WorkerDefaults[PongArgs]
	Pool *pgxpool.Pool
}

// Timeout bounds writing one pong.
func (w *PongWorker) Timeout(*river.Job[PongArgs]) time.Duration { return queue.MaxTimeout }

// Work writes the pong for job.Args.PingID unless it exists.
func (w *PongWorker) Work(ctx context.Context, job *river.Job[PongArgs]) error {
	return pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ping WHERE id = $1)`, job.Args.PingID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			// Deleted before its pong: nothing to answer, and retrying will
			// not bring it back.
			return river.JobCancel(fmt.Errorf("ping %s no longer exists", job.Args.PingID))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pong (ping_id, event_id, job_id) VALUES ($1, $2, $3)
			ON CONFLICT (ping_id) DO NOTHING`, job.Args.PingID, job.Args.EventID, job.ID); err != nil {
			return err
		}
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	})
}

// ReconcileArgs asks for a sweep of pings that never got a pong because
// their event was never delivered (Hasura down or absent, retries exhausted,
// rows written by plain SQL).
type ReconcileArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (ReconcileArgs) Kind() string { return "ping.reconcile" }

// ReconcileAfter is how old a ping without a pong must be before the sweep
// takes it: younger ones are still within Hasura's normal delivery time.
const ReconcileAfter = time.Minute

// Reconcile enqueues pong jobs (up to 1,000 per run) for pings older than
// minAge that have none, and returns how many it enqueued. It is the
// queue.Sweep of ReconcileArgs. It takes the pings it swept least recently
// (swept_at: never first, then the oldest) and marks them swept, so pings
// whose pong jobs are still queued or failing and retried go to the back
// instead of filling every run and holding back one whose event never
// came. A ping whose job was discarded is queued again when its turn
// comes, with no bound: a pong fails only while the database does.
func Reconcile(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, minAge time.Duration) (n int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		n, err = queue.EnqueueEach(ctx, tx, q, func(id uuid.UUID) river.JobArgs { return PongArgs{PingID: id} },
			queue.LeastRecentlySwept("ping", `s.created_at < now() - make_interval(secs => $1)
				AND NOT EXISTS (SELECT 1 FROM pong WHERE pong.ping_id = s.id)`, "created_at", 1000), minAge.Seconds())
		return err
	})
	return n, err
}
