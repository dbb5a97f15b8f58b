// Package queue wires River, shala's durable job queue on Postgres, with the
// settings, logging and metrics every job shares. Side effects (SMS, file
// deletion, Sheets rows, BBB calls) are River jobs so that they are retried
// with backoff and end in a visible terminal state; webhooks enqueue them in
// the same transaction as the domain write (InsertTx), so a job exists if and
// only if the write committed.
package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Client is the River client type shala uses.
type Client = river.Client[pgx.Tx]

// Inserter enqueues jobs inside a caller's transaction. *Client implements
// it; domain packages depend on this, not on the client.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// Config tunes the client.
type Config struct {
	// Workers is the number of jobs worked at once by this process; 0 makes
	// an insert-only client (no workers, no periodic jobs).
	Workers int
	// Queues are further queues and their worker counts (a capability with
	// slow or rate-limited jobs gets its own, so it never starves others).
	Queues map[string]int
	// FetchCooldown is the minimum pause between fetches under load. River's
	// default (100 ms) caps a client near 1,000 jobs/s.
	FetchCooldown time.Duration
	// Periodic jobs run on the elected leader only.
	Periodic []*river.PeriodicJob
	// Log receives River's warnings and errors and failed-job reports.
	Log *slog.Logger
	// Metrics, if set, observes every worked job.
	Metrics *Metrics
	// RetryPolicy overrides River's (attempt⁴ seconds with jitter); tests
	// use a fast one.
	RetryPolicy river.ClientRetryPolicy
}

// New returns a River client on pool. Start it to work jobs.
func New(pool *pgxpool.Pool, workers *river.Workers, cfg Config) (*Client, error) {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var retry river.ClientRetryPolicy = &river.DefaultClientRetryPolicy{}
	if cfg.RetryPolicy != nil {
		retry = cfg.RetryPolicy
	}
	rc := &river.Config{
		Logger:       slog.New(levelAtLeast{log.Handler(), slog.LevelWarn}),
		ErrorHandler: &errorLogger{log: log},
		Workers:      workers,
		// The timeout of kinds that set none, and the rescue of a dead
		// process's jobs: see rescue.go.
		JobTimeout:           MaxTimeout,
		RescueStuckJobsAfter: RescueAfter,
		RetryPolicy:          rescuedAtOnce{inner: retry},
	}
	if cfg.Workers > 0 {
		rc.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}}
		for name, n := range cfg.Queues {
			rc.Queues[name] = river.QueueConfig{MaxWorkers: n}
		}
		rc.FetchCooldown = cfg.FetchCooldown
		rc.PeriodicJobs = cfg.Periodic
	}
	if cfg.Metrics != nil {
		rc.Middleware = []rivertype.Middleware{&metricsMiddleware{m: cfg.Metrics}}
	}
	return river.NewClient(riverpgxv5.New(pool), rc)
}

// Stop stops client: running jobs may finish within timeout, then the rest
// are cancelled. River puts cancelled work back for a retry (by this
// process later, or another one), so nothing is lost.
func Stop(client *Client, timeout time.Duration, log *slog.Logger) error {
	log.Info("stopping workers", "timeout", timeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := client.Stop(sctx)
	if err == nil {
		return nil
	}
	log.Warn("workers did not finish in time; cancelling running jobs", "err", err)
	cctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	return client.StopAndCancel(cctx)
}

// errorLogger logs failed and panicking jobs with their kind and attempt;
// River then applies its retry policy (exponential backoff with jitter).
type errorLogger struct{ log *slog.Logger }

func (e *errorLogger) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	e.log.WarnContext(ctx, "job failed", "job_id", job.ID, "kind", job.Kind, "attempt", job.Attempt,
		"max_attempts", job.MaxAttempts, "err", err)
	return nil
}

func (e *errorLogger) HandlePanic(ctx context.Context, job *rivertype.JobRow, panicVal any, trace string) *river.ErrorHandlerResult {
	e.log.ErrorContext(ctx, "job panicked", "job_id", job.ID, "kind", job.Kind, "attempt", job.Attempt,
		"panic", panicVal, "stack", trace)
	return nil
}

// levelAtLeast drops records below min: River is chatty at info.
type levelAtLeast struct {
	slog.Handler
	min slog.Level
}

func (l levelAtLeast) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= l.min && l.Handler.Enabled(ctx, level)
}

// Metrics are the queue's Prometheus metrics.
type Metrics struct {
	jobs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the job metrics and a collector that reports queue
// depth (jobs by kind and state, read from river_job at scrape time).
func NewMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_jobs_total",
			Help: "Jobs worked, by kind and outcome (completed, retryable, discarded, cancelled, snoozed, panicked).",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shala_job_duration_seconds",
			Help:    "Time spent working a job, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"kind"}),
	}
	reg.MustRegister(m.jobs, m.duration, &depthCollector{pool: pool})
	return m
}

type metricsMiddleware struct {
	river.MiddlewareDefaults
	m *Metrics
}

func (mw *metricsMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) (err error) {
	start := time.Now()
	defer func() {
		mw.m.duration.WithLabelValues(job.Kind).Observe(time.Since(start).Seconds())
		if p := recover(); p != nil {
			mw.m.jobs.WithLabelValues(job.Kind, "panicked").Inc()
			panic(p) // River recovers, records and retries it
		}
		mw.m.jobs.WithLabelValues(job.Kind, outcome(job, err)).Inc()
	}()
	return doInner(ctx)
}

func outcome(job *rivertype.JobRow, err error) string {
	var cancel *rivertype.JobCancelError
	var snooze *rivertype.JobSnoozeError
	switch {
	case err == nil:
		return "completed"
	case errors.As(err, &cancel):
		return "cancelled"
	case errors.As(err, &snooze):
		return "snoozed"
	case job.Attempt >= job.MaxAttempts:
		return "discarded"
	default:
		return "retryable"
	}
}

var depthDesc = prometheus.NewDesc("shala_queue_jobs",
	"Jobs in the queue by kind and state (available, scheduled, running, retryable, discarded).",
	[]string{"kind", "state"}, nil)

var oldestDesc = prometheus.NewDesc("shala_queue_oldest_available_seconds",
	"Age of the oldest job waiting to be worked, by kind: the backlog's lag.",
	[]string{"kind"}, nil)

type depthCollector struct{ pool *pgxpool.Pool }

func (c *depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- oldestDesc
}

func (c *depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.pool.Query(ctx, `
		SELECT kind, state::text, count(*), extract(epoch FROM now() - min(scheduled_at))::float8
		FROM river_job
		WHERE state IN ('available', 'scheduled', 'running', 'retryable', 'discarded')
		GROUP BY kind, state`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var kind, state string
		var n int64
		var oldest float64
		if err := rows.Scan(&kind, &state, &n, &oldest); err != nil {
			ch <- prometheus.NewInvalidMetric(depthDesc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(n), kind, state)
		if state == "available" {
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, oldest, kind)
		}
	}
	if err := rows.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(depthDesc, err)
	}
}

// EnqueueEach runs query in tx — any statement returning one uuid column:
// the rows a sweep found — and inserts the job job(id) for each row, in the
// same transaction. It returns how many jobs were new (unique jobs already
// queued are skipped). Every reconciler is one of these.
func EnqueueEach(ctx context.Context, tx pgx.Tx, q Inserter, job func(uuid.UUID) river.JobArgs, query string, args ...any) (int, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: job(id)}
	}
	res, err := q.InsertManyTx(ctx, tx, params)
	n := 0
	for _, r := range res {
		if !r.UniqueSkippedAsDuplicate {
			n++
		}
	}
	return n, err
}

// LeastRecentlySwept is the statement a sweep that rotates gives
// EnqueueEach: of table's rows matching where (written against the alias
// s), the limit it swept least recently — its swept_at column NULL first
// (never swept), then by s.age, oldest first — marked swept now, their ids
// returned. A row whose job is still queued, or failing and retried, so goes
// to the back instead of holding the head of every sweep; a row locked by
// its worker right now is skipped. swept_at belongs in no index (the mark
// then writes no index entry): the sort is over what where finds through
// the table's own partial index.
func LeastRecentlySwept(table, where, age string, limit int) string {
	return fmt.Sprintf(`WITH due AS (
			SELECT s.id FROM %[1]s s WHERE %[2]s
			ORDER BY s.swept_at NULLS FIRST, s.%[3]s LIMIT %[4]d FOR NO KEY UPDATE OF s SKIP LOCKED)
		UPDATE %[1]s s SET swept_at = now() FROM due WHERE s.id = due.id RETURNING s.id`, table, where, age, limit)
}

// PerMinute is embedded in the args of periodic jobs: at most one such job
// per minute, however many callers (the periodic schedule, the reconcile
// cron trigger, other replicas) ask.
type PerMinute struct{}

// InsertOpts makes the job unique per minute.
func (PerMinute) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: time.Minute}}
}

// Sweep is a reconciler: it finds rows older than minAge whose work never
// happened (an event Hasura never delivered, a crash between two steps) and
// enqueues that work through q, returning how many jobs it added.
type Sweep func(ctx context.Context, pool *pgxpool.Pool, q Inserter, minAge time.Duration) (int, error)

// SweepWorker works the periodic job A by running Sweep with the job's own
// client. Each sweep takes a bounded number of rows; the next run takes
// more.
type SweepWorker[A river.JobArgs] struct {
	river.WorkerDefaults[A]
	Pool   *pgxpool.Pool
	MinAge time.Duration
	Sweep  Sweep
}

// Timeout bounds one sweep (a bounded number of rows).
func (w *SweepWorker[A]) Timeout(*river.Job[A]) time.Duration { return MaxTimeout }

// Work runs one sweep.
func (w *SweepWorker[A]) Work(ctx context.Context, job *river.Job[A]) error {
	_, err := w.Sweep(ctx, w.Pool, river.ClientFromContext[pgx.Tx](ctx), w.MinAge)
	return err
}

// UniqueUntilFinished makes a kind unique by its args while a job of it is
// waiting or running: a second insert then is a no-op, and one after the
// first finished (completed, cancelled or discarded) is a new job.
func UniqueUntilFinished() river.UniqueOpts {
	return river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled}}
}
