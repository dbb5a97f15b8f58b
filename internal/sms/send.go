package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"golang.org/x/time/rate"
)

// Queue is the River queue SMS sends run on, so that sends waiting for the
// rate limiter never hold workers other jobs need.
const Queue = "sms"

// SendAttempts is how often a message is tried before it is failed. River
// backs off attempt⁴ seconds with jitter: the last try is ~78 minutes after
// the first.
const SendAttempts = 8

// BatchSize is how many messages one batch job sends, and BatchConcurrency
// how many of them are with the provider at once. One job per 50 messages
// instead of one each removes most queue writes from a 100k fan-out (a job
// is inserted, fetched and completed: three writes of river_job, against
// one of sms_message).
const (
	BatchSize        = 50
	BatchConcurrency = 5
)

// SendBatchArgs asks for a batch of a request's first attempts.
type SendBatchArgs struct {
	// RequestID lets the progress sweep tell a message waiting for its
	// batch from one whose batch was lost.
	RequestID  uuid.UUID   `json:"request_id,omitzero"`
	MessageIDs []uuid.UUID `json:"message_ids"`
}

// Kind is the River job kind.
func (SendBatchArgs) Kind() string { return "sms.send_batch" }

// InsertOpts puts batches on the sms queue.
func (SendBatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 25}
}

// SendArgs asks for one message to be sent: the retries of a message whose
// first attempt failed transiently.
type SendArgs struct {
	MessageID uuid.UUID `json:"message_id"`
}

// Kind is the River job kind.
func (SendArgs) Kind() string { return "sms.send" }

// InsertOpts puts sends on their own queue; the batch used one attempt.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: SendAttempts - 1}
}

// Limiter spaces sends to a provider's rate. The limit is per shala
// process: with N replicas working the sms queue, set SHALA_SMS_RATE to the
// provider's limit divided by N.
func Limiter(perSecond float64) *rate.Limiter {
	if perSecond <= 0 {
		return rate.NewLimiter(rate.Inf, 0)
	}
	return rate.NewLimiter(rate.Limit(perSecond), 1)
}

// Sender sends messages and records their outcomes; the batch and retry
// workers share it.
//
// A message is read, sent, and its outcome and attempt count recorded
// durably in one write. If the process dies between the provider accepting
// a message and that write, the message is sent again when its job re-runs:
// at most the messages in flight at a crash (sms workers × BatchConcurrency
// per process) can reach a phone twice. No message is lost: its job stays
// until every outcome is recorded, and a re-run skips recorded messages.
type Sender struct {
	Pool     *pgxpool.Pool
	Provider Provider
	Limiter  *rate.Limiter
	Metrics  *Metrics
	Log      *slog.Logger
}

type outgoing struct {
	id               uuid.UUID
	to, body, dlt    string
	attempts         int
	notSent          bool  // stopping before the provider was called
	transient        error // set when the provider failed transiently
	providerID, fail string
}

// selectOutgoing reads messages by id. The messages are read in a
// materialized step by primary key alone: joined directly, a planner with
// statistics from before the fan-out (sms_message grows by 100k rows within
// one) intersects the id lookup with a scan of every message of the request
// (72 ms instead of 1 ms per batch on the benchmark).
const selectOutgoing = `WITH m AS MATERIALIZED (
		SELECT id, request_id, phone, body, attempts FROM sms_message
		WHERE id = ANY ($1) AND status IN ('queued', 'sending') %s)
	SELECT m.id, m.phone, m.body, t.dlt_template_id, m.attempts
	FROM m JOIN sms_request r ON r.id = m.request_id
	JOIN sms_template t ON t.type = r.type AND t.language = r.language AND t.enabled`

// send hands m to the provider and fills in the outcome.
func (s *Sender) send(ctx context.Context, m *outgoing) {
	if err := s.Limiter.Wait(ctx); err != nil {
		m.notSent = true
		return
	}
	start := time.Now()
	id, err := s.Provider.Send(ctx, Message{To: m.to, Body: m.body, DLTTemplateID: m.dlt})
	s.Metrics.sendDuration(s.Provider.Name(), time.Since(start))
	switch {
	case err == nil:
		m.providerID = id
	case Permanent(err):
		s.Metrics.providerError(s.Provider.Name(), ErrorCode(err))
		s.Log.InfoContext(ctx, "sms refused", "message_id", m.id, "to", Mask(m.to), "err", MaskText(err.Error()))
		m.fail = err.Error()
	default:
		s.Metrics.providerError(s.Provider.Name(), ErrorCode(err))
		m.transient = err
	}
}

// record writes a terminal outcome. For a provider that calls back, a
// delivery report that arrived before this write is applied with it.
func (s *Sender) record(ctx context.Context, m *outgoing) error {
	status, pid, le := "sent", &m.providerID, (*string)(nil)
	if m.fail != "" {
		t := truncate(m.fail)
		status, pid, le = "failed", nil, &t
	}
	const update = `UPDATE sms_message SET status = $2, provider = $5, attempts = attempts + 1,
			provider_message_id = coalesce($3, provider_message_id), last_error = coalesce($4, last_error),
			sent_at = CASE WHEN $2 IN ('sent', 'delivered') THEN now() ELSE sent_at END,
			delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END, updated_at = now()
		WHERE id = $1 AND status IN ('queued', 'sending')`
	if _, callsBack := s.Provider.(CallbackProvider); !callsBack || status != "sent" {
		if _, err := s.Pool.Exec(ctx, update, m.id, status, pid, le, s.Provider.Name()); err != nil {
			return err
		}
		s.Metrics.message(s.Provider.Name(), status, 1)
		return nil
	}
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if err := lockReports(ctx, tx, s.Provider.Name(), []string{m.providerID}); err != nil {
			return err
		}
		var outcome string
		var reason *string
		err := tx.QueryRow(ctx, `DELETE FROM sms_report_early WHERE provider = $1 AND provider_message_id = $2 RETURNING outcome, reason`,
			s.Provider.Name(), m.providerID).Scan(&outcome, &reason)
		switch {
		case err == nil:
			status, le = outcome, reason
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		_, err = tx.Exec(ctx, update, m.id, status, pid, le, s.Provider.Name())
		return err
	})
	if err != nil {
		return err
	}
	s.Metrics.message(s.Provider.Name(), "sent", 1)
	return nil
}

// lockReports serialises recording sends with applying their delivery
// reports, per provider message id (sorted: no deadlocks).
func lockReports(ctx context.Context, tx pgx.Tx, provider string, ids []string) error {
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('sms_report:' || $1 || ':' || pid, 0))
		FROM unnest($2::text[]) WITH ORDINALITY AS u(pid, i) ORDER BY i`, provider, ids)
	return err
}

// SendBatchWorker makes the first attempt of a batch of messages. A message
// that fails transiently gets its own SendArgs job for the retries, in the
// same transaction that records the attempt; a permanent failure fails only
// that message.
type SendBatchWorker struct {
	river.WorkerDefaults[SendBatchArgs]
	*Sender
}

// Timeout bounds a batch: BatchSize messages, BatchConcurrency at a time,
// each bounded by the provider's own timeout, plus rate-limit waits.
func (w *SendBatchWorker) Timeout(*river.Job[SendBatchArgs]) time.Duration { return 10 * time.Minute }

// Work sends the batch.
func (w *SendBatchWorker) Work(ctx context.Context, job *river.Job[SendBatchArgs]) error {
	// attempts = 0: messages already tried belong to their own retry job.
	rows, err := w.Pool.Query(ctx, fmt.Sprintf(selectOutgoing, "AND attempts = 0"), job.Args.MessageIDs)
	if err != nil {
		return err
	}
	var todo []*outgoing
	for rows.Next() {
		m := &outgoing{}
		if err := rows.Scan(&m.id, &m.to, &m.body, &m.dlt, &m.attempts); err != nil {
			return err
		}
		todo = append(todo, m)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := w.failUnsendable(ctx, job.Args.MessageIDs); err != nil {
		return err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		sem      = make(chan struct{}, BatchConcurrency)
	)
	for _, m := range todo {
		if ctx.Err() != nil {
			m.notSent = true // stopping: the re-run sends the rest
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			w.send(ctx, m)
			if m.notSent {
				return // stopping: the re-run sends it
			}
			// The provider has answered: record it even if we are being
			// stopped.
			rctx := context.WithoutCancel(ctx)
			var err error
			if m.transient != nil {
				err = w.scheduleRetry(rctx, m)
			} else {
				err = w.record(rctx, m)
			}
			if err != nil {
				mu.Lock()
				firstErr = errors.Join(firstErr, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr // River retries the batch; recorded messages are skipped
	}
	for _, m := range todo {
		if m.notSent {
			// Stopping, or the rate limiter's queue is longer than this
			// job's time: run again soon for the rest, without using up an
			// attempt (a snooze is not a failure).
			return river.JobSnooze(SnoozeUnsent)
		}
	}
	return nil
}

// SnoozeUnsent is how soon a send job whose messages did not all get a turn
// at the rate limiter runs again.
const SnoozeUnsent = time.Second

// scheduleRetry records a transient first attempt and hands the message to
// its own retry job, in one transaction.
func (w *SendBatchWorker) scheduleRetry(ctx context.Context, m *outgoing) error {
	w.Metrics.message(w.Provider.Name(), "retry", 1)
	return pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE sms_message SET attempts = attempts + 1, last_error = $2, provider = $3, updated_at = now()
			WHERE id = $1 AND status IN ('queued', 'sending')`, m.id, truncate(m.transient.Error()), w.Provider.Name()); err != nil {
			return err
		}
		_, err := river.ClientFromContext[pgx.Tx](ctx).InsertTx(ctx, tx, SendArgs{MessageID: m.id},
			&river.InsertOpts{ScheduledAt: time.Now().Add(time.Second)})
		return err
	})
}

// failUnsendable fails messages of ids that are still queued but cannot be
// sent because their request's template was disabled since the expansion.
func (w *SendBatchWorker) failUnsendable(ctx context.Context, ids []uuid.UUID) error {
	_, err := w.Pool.Exec(ctx, `UPDATE sms_message m SET status = 'failed', updated_at = now(),
			last_error = 'the request''s template is no longer enabled'
		FROM sms_request r
		WHERE m.id = ANY ($1) AND r.id = m.request_id AND m.status IN ('queued', 'sending') AND m.attempts = 0
		  AND NOT EXISTS (SELECT 1 FROM sms_template t WHERE t.type = r.type AND t.language = r.language AND t.enabled)`, ids)
	return err
}

// SendWorker retries one message; River's backoff spaces the attempts and
// the last one fails the message with the provider's error.
type SendWorker struct {
	river.WorkerDefaults[SendArgs]
	*Sender
}

// Timeout bounds one provider call plus a rate-limit wait.
func (w *SendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return time.Minute }

// Work sends job.Args.MessageID.
func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	m := &outgoing{}
	err := w.Pool.QueryRow(ctx, fmt.Sprintf(selectOutgoing, ""), []uuid.UUID{job.Args.MessageID}).Scan(&m.id, &m.to, &m.body, &m.dlt, &m.attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		// Recorded already (a re-run after a crash), deleted with its
		// request, or its template disabled since.
		_, err := w.Pool.Exec(ctx, `UPDATE sms_message SET status = 'failed', updated_at = now(),
				last_error = 'the request''s template is no longer enabled'
			WHERE id = $1 AND status IN ('queued', 'sending')`, job.Args.MessageID)
		return err
	}
	if err != nil {
		return err
	}
	w.send(ctx, m)
	if m.notSent {
		return river.JobSnooze(SnoozeUnsent)
	}
	rctx := context.WithoutCancel(ctx)
	if m.transient == nil {
		return w.record(rctx, m)
	}
	if job.Attempt >= job.MaxAttempts {
		m.fail = fmt.Sprintf("gave up after %d attempts: %v", m.attempts+1, m.transient)
		return w.record(rctx, m)
	}
	w.Metrics.message(w.Provider.Name(), "retry", 1)
	if _, err := w.Pool.Exec(rctx, `UPDATE sms_message SET attempts = attempts + 1, last_error = $2, provider = $3, updated_at = now()
		WHERE id = $1 AND status IN ('queued', 'sending')`, m.id, truncate(m.transient.Error()), w.Provider.Name()); err != nil {
		return errors.Join(m.transient, err)
	}
	// River logs and stores the error: mask numbers the provider quoted.
	return errors.New(MaskText(m.transient.Error()))
}

func truncate(s string) string {
	r := []rune(s)
	if len(r) <= 990 {
		return s
	}
	return string(r[:990]) + "…"
}

// Metrics are the SMS metrics.
type Metrics struct {
	messages       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	providerErrors *prometheus.CounterVec
}

// A nil *Metrics records nothing (tools and tests that do not scrape).
func (m *Metrics) message(provider, status string, n int) {
	if m != nil {
		m.messages.WithLabelValues(provider, status).Add(float64(n))
	}
}

func (m *Metrics) sendDuration(provider string, d time.Duration) {
	if m != nil {
		m.duration.WithLabelValues(provider).Observe(d.Seconds())
	}
}

func (m *Metrics) providerError(provider, code string) {
	if m != nil {
		m.providerErrors.WithLabelValues(provider, code).Inc()
	}
}

// NewMetrics registers the SMS metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_sms_messages_total",
			Help: "SMS message outcomes by provider and status (sent, failed, retry, undeliverable).",
		}, []string{"provider", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shala_sms_send_duration_seconds",
			Help:    "Time a provider took to accept or refuse a message.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"provider"}),
		providerErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_sms_provider_errors_total",
			Help: "Provider errors by provider and the provider's code (timeout and network for no answer).",
		}, []string{"provider", "code"}),
	}
	reg.MustRegister(m.messages, m.duration, m.providerErrors)
	return m
}
