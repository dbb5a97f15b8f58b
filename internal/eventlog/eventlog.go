// Package eventlog keeps Hasura's event-trigger log from growing forever.
// Hasura records every event in hdb_catalog.event_log and every webhook call
// in hdb_catalog.event_invocation_logs (in the source database, the one
// shala uses). Hasura deletes them only with cleanup_config, which runs on
// Cloud and Enterprise alone: on the community image the tables grow by
// every event (an sms_request event carries up to 10,000 student ids). So
// shala deletes, in batches, events delivered or failed for good that are
// older than a retention, with their invocation logs.
package eventlog

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/queue"
)

// DefaultBatch is how many events one statement deletes (Hasura's own
// cleanup uses batches of 10,000 too).
const DefaultBatch = 10_000

// index is shala's index on Hasura's event_log: the finished events by age,
// which Hasura's own indexes (by trigger; unfinished events) cannot find
// without reading the whole table.
const index = "shala_event_log_finished"

// Cleaner deletes old finished events and their invocation logs.
type Cleaner struct {
	Pool *pgxpool.Pool
	// Retention is how long finished events are kept; 0 keeps them.
	Retention time.Duration
	// Batch is the events deleted per statement (DefaultBatch if 0).
	Batch int
	// Now is the clock (time.Now if nil).
	Now     func() time.Time
	Metrics *Metrics
	// IndexBudget is how long building the index may take within a run
	// (DefaultIndexBudget if 0); see ensureIndex.
	IndexBudget time.Duration
}

// DefaultIndexBudget is how long a run waits for its index to be built
// before it cleans without it (half of a run's time).
const DefaultIndexBudget = queue.MaxTimeout / 2

// Result is what one cleanup deleted.
type Result struct {
	Events, Invocations int64
}

// Clean deletes, batch by batch until none is left or ctx ends, the events
// delivered or failed before now - Retention, and their invocation logs.
// Without Hasura's tables (no Hasura in front) it does nothing.
func (c *Cleaner) Clean(ctx context.Context) (Result, error) {
	var res Result
	if c.Retention <= 0 {
		return res, nil
	}
	var exists bool
	if err := c.Pool.QueryRow(ctx, `SELECT to_regclass('hdb_catalog.event_log') IS NOT NULL
		AND to_regclass('hdb_catalog.event_invocation_logs') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return res, err
	}
	if err := c.ensureIndex(ctx); err != nil {
		return res, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	// event_log.created_at is a timestamp without time zone that Hasura
	// writes in UTC.
	cutoff := now().UTC().Add(-c.Retention).Format("2006-01-02 15:04:05.999999")
	batch := c.Batch
	if batch <= 0 {
		batch = DefaultBatch
	}
	for {
		var events, invocations int64
		err := c.Pool.QueryRow(ctx, `WITH old AS (
				SELECT id FROM hdb_catalog.event_log
				WHERE (delivered OR error) AND created_at < $1::timestamp
				ORDER BY created_at LIMIT $2
				FOR UPDATE SKIP LOCKED
			), invocations AS (
				DELETE FROM hdb_catalog.event_invocation_logs l USING old WHERE l.event_id = old.id RETURNING 1
			), events AS (
				DELETE FROM hdb_catalog.event_log e USING old WHERE e.id = old.id RETURNING 1
			)
			SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM invocations)`, cutoff, batch).Scan(&events, &invocations)
		if err != nil {
			return res, fmt.Errorf("delete finished events before %s: %w", cutoff, err)
		}
		res.Events += events
		res.Invocations += invocations
		c.Metrics.deleted(events, invocations)
		if events < int64(batch) {
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return res, err // the next run goes on
		}
	}
}

// ensureIndex builds the index once, without blocking Hasura's writes;
// later runs find it valid with one catalog lookup. A database user that
// does not own Hasura's tables cannot index them: the cleanup then reads
// the table, slower but as right.
//
// CREATE INDEX CONCURRENTLY waits for every transaction older than it (a
// backup, a long report) and reads the table twice. Cut short — by its
// budget here, or by anything else — it leaves the index INVALID: never
// used, yet maintained on every insert Hasura makes, and IF NOT EXISTS
// alone would keep it so for good. So an invalid index is dropped and
// built again, and a build that does not finish within IndexBudget is
// dropped again at once: the run cleans without it, the next one builds it.
func (c *Cleaner) ensureIndex(ctx context.Context) error {
	var valid bool
	err := c.Pool.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, "hdb_catalog."+index).Scan(&valid)
	switch {
	case err == nil && valid:
		return nil
	case err == nil:
		if err := c.dropIndex(ctx); err != nil {
			return err
		}
	case !errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("index hdb_catalog.event_log: %w", err)
	}
	budget := c.IndexBudget
	if budget <= 0 {
		budget = DefaultIndexBudget
	}
	bctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	_, err = c.Pool.Exec(bctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS `+index+`
		ON hdb_catalog.event_log (created_at) WHERE delivered OR error`)
	switch {
	case err == nil, denied(err):
		return nil
	case bctx.Err() != nil && ctx.Err() == nil:
		return c.dropIndex(ctx) // not in time: clean without it
	}
	return fmt.Errorf("index hdb_catalog.event_log: %w", err)
}

// dropIndex drops the index (left invalid by a build cut short) without
// blocking Hasura's writes.
func (c *Cleaner) dropIndex(ctx context.Context) error {
	if _, err := c.Pool.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS hdb_catalog.`+index); err != nil && !denied(err) {
		return fmt.Errorf("drop invalid index hdb_catalog.%s: %w", index, err)
	}
	return nil
}

// denied reports whether err is Postgres refusing the privilege (a database
// user that does not own Hasura's tables).
func denied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// Metrics count what the cleanup deleted.
type Metrics struct{ rows *prometheus.CounterVec }

// NewMetrics registers shala_hasura_event_log_deleted_total{table}.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{rows: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shala_hasura_event_log_deleted_total",
		Help: "Rows of Hasura's event log deleted by shala's retention, by table (event_log, event_invocation_logs).",
	}, []string{"table"})}
	reg.MustRegister(m.rows)
	return m
}

func (m *Metrics) deleted(events, invocations int64) {
	if m == nil {
		return
	}
	m.rows.WithLabelValues("event_log").Add(float64(events))
	m.rows.WithLabelValues("event_invocation_logs").Add(float64(invocations))
}

// CleanArgs is the periodic job that cleans the event log.
type CleanArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (CleanArgs) Kind() string { return "eventlog.clean" }

// CleanWorker works CleanArgs.
type CleanWorker struct {
	river.WorkerDefaults[CleanArgs]
	Cleaner *Cleaner
}

// Timeout bounds one cleanup; what is left waits for the next run.
func (w *CleanWorker) Timeout(*river.Job[CleanArgs]) time.Duration { return queue.MaxTimeout }

// Work runs one cleanup. Running out of time is not a failure: the next
// run goes on where this one stopped.
func (w *CleanWorker) Work(ctx context.Context, job *river.Job[CleanArgs]) error {
	_, err := w.Cleaner.Clean(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}
