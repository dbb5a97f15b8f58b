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
}

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
	// Built once, without blocking Hasura's writes; IF NOT EXISTS makes
	// every later run a catalog lookup.
	// A database user that does not own Hasura's tables cannot index
	// them: the cleanup then reads the table, slower but as right.
	// A build that was interrupted (this job's timeout on a table grown
	// for months, a killed process) leaves an invalid index under the
	// name, which IF NOT EXISTS would keep for good, never used: it is
	// dropped and built again.
	var invalid bool
	if err := c.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index
		WHERE indexrelid = to_regclass('hdb_catalog.`+index+`') AND NOT indisvalid)`).Scan(&invalid); err != nil {
		return res, err
	}
	if invalid {
		if _, err := c.Pool.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS hdb_catalog.`+index); err != nil && !denied(err) {
			return res, fmt.Errorf("drop the invalid index hdb_catalog.%s: %w", index, err)
		}
	}
	if _, err := c.Pool.Exec(ctx, `CREATE INDEX CONCURRENTLY IF NOT EXISTS `+index+`
		ON hdb_catalog.event_log (created_at) WHERE delivered OR error`); err != nil && !denied(err) {
		return res, fmt.Errorf("index hdb_catalog.event_log: %w", err)
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
