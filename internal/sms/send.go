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
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"golang.org/x/time/rate"

	"github.com/shala-edu/shala/internal/queue"
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

// sendJobAttempts is how many times a send job tries its message: the
// batch used one of SendAttempts.
const sendJobAttempts = SendAttempts - 1

// InsertOpts puts sends on their own queue, with a spare attempt for a
// rescue (queue.WithSpare): a send killed in its last try is tried once
// more, then gives up, instead of staying sending until the stuck sweep.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: queue.WithSpare(sendJobAttempts)}
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
// Before each provider call the message is claimed in the database
// ('sending', attempts + 1): attempts counts the calls that were started,
// whatever happens next. The call's outcome is then recorded in one write.
// If the process dies between the claim and that write, the message is
// found 'sending' when its job runs again (on another replica, or after a
// restart) and is sent again with that attempt counted in
// unconfirmed_attempts: the earlier call may have reached the phone. A call
// that times out or is cut off counts there too. So at most the messages in
// flight at a crash (sms workers × BatchConcurrency per process) can reach
// a phone twice, and every such message says so. No message is lost: its
// job stays until every outcome is recorded, and a re-run skips recorded
// messages.
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
	transient        error // set when the provider failed transiently
	providerID, fail string
}

// unknown reports whether a transient failure left the outcome unknown:
// no answer from the gateway (a timeout, a dropped connection, a call cut
// off) rather than a refusal it answered with.
func (m *outgoing) unknown() bool {
	var e *Error
	return m.transient != nil && !errors.As(m.transient, &e)
}

// ProviderCallTimeout bounds one call to the provider. A send job starts a
// call only while this much of its own time is left, so its deadline never
// cuts off a call that may already have gone out.
const ProviderCallTimeout = 8 * time.Second

// claimSQL marks messages as handed to the provider before the call: one
// attempt more, and one more unconfirmed if an earlier claim never got its
// outcome recorded (its process died). A message claimed 25 times is left
// alone (the stuck sweep fails it).
const claimSQL = `WITH c AS (
		SELECT id, status = 'sending' AS again FROM sms_message
		WHERE id = ANY ($1) AND status IN ('queued', 'sending') AND attempts < 25 FOR UPDATE)
	UPDATE sms_message m SET status = 'sending', attempts = m.attempts + 1,
		unconfirmed_attempts = m.unconfirmed_attempts + CASE WHEN c.again THEN 1 ELSE 0 END, updated_at = now()
	FROM c WHERE m.id = c.id
	RETURNING m.id, c.again`

// claim claims ms and returns those it claimed (a message recorded or
// failed meanwhile is dropped).
func (s *Sender) claim(ctx context.Context, ms []*outgoing) ([]*outgoing, error) {
	ids := make([]uuid.UUID, len(ms))
	for i, m := range ms {
		ids[i] = m.id
	}
	rows, err := s.Pool.Query(ctx, claimSQL, ids)
	if err != nil {
		return nil, err
	}
	claimed := map[uuid.UUID]bool{}
	again := 0
	for rows.Next() {
		var id uuid.UUID
		var unconfirmed bool
		if err := rows.Scan(&id, &unconfirmed); err != nil {
			return nil, err
		}
		claimed[id] = true
		if unconfirmed {
			again++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if again > 0 {
		s.Metrics.message(s.Provider.Name(), "unconfirmed", again)
		s.Log.WarnContext(ctx, "sms sent again after an attempt whose outcome was never recorded (its process died)", "messages", again)
	}
	var out []*outgoing
	for _, m := range ms {
		if claimed[m.id] {
			m.attempts++
			out = append(out, m)
		}
	}
	return out, nil
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

// send hands m (claimed) to the provider and fills in the outcome.
func (s *Sender) send(ctx context.Context, m *outgoing) {
	ctx, cancel := context.WithTimeout(ctx, ProviderCallTimeout)
	defer cancel()
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
	const update = `UPDATE sms_message SET status = $2, provider = $5,
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

// Timeout bounds one run of a batch. It is not the batch's whole time:
// calls start only while ProviderCallTimeout is left, so a batch held up by
// the rate limiter or a slow provider snoozes for the rest (see Work).
func (w *SendBatchWorker) Timeout(*river.Job[SendBatchArgs]) time.Duration { return queue.MaxTimeout }

// firstAttempts are the batch's messages still to send: never tried, or
// claimed by earlier runs of this batch whose outcome was never recorded
// (their process died — once, or again and again in a crash loop). A
// message that failed transiently is its retry job's: scheduleRetry records
// its error (last_error) in the transaction that queues that job, and
// nothing else sets it on a message still queued or sending.
const firstAttempts = "AND (attempts = 0 OR (status = 'sending' AND last_error IS NULL))"

// Work sends the batch in waves of BatchConcurrency: wait for the rate
// limiter, claim the wave, call the provider for each at once, record each
// outcome.
func (w *SendBatchWorker) Work(ctx context.Context, job *river.Job[SendBatchArgs]) error {
	rows, err := w.Pool.Query(ctx, fmt.Sprintf(selectOutgoing, firstAttempts), job.Args.MessageIDs)
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
	// Calls start only while one can finish before the job's deadline.
	callsUntil := time.Now().Add(w.Timeout(job) - ProviderCallTimeout)
	if d, ok := ctx.Deadline(); ok {
		callsUntil = d.Add(-ProviderCallTimeout)
	}
	waitCtx, cancel := context.WithDeadline(ctx, callsUntil)
	defer cancel()
	for len(todo) > 0 {
		n := 0
		for n < min(BatchConcurrency, len(todo)) && w.Limiter.Wait(waitCtx) == nil {
			n++
		}
		if n == 0 {
			// Stopping, or the rate limiter's queue is longer than this
			// run's time: run again soon for the rest, without using up an
			// attempt (a snooze is not a failure).
			return river.JobSnooze(SnoozeUnsent)
		}
		wave, err := w.claim(ctx, todo[:n])
		todo = todo[n:]
		if err != nil {
			return err
		}
		w.callAll(ctx, wave)
		// The outcomes are written at once — even when the job is being
		// stopped (within queue.Grace) — so few sent messages are ever
		// unrecorded. If that fails, the batch runs again and finds them
		// claimed ('sending'): sent again, and counted as unconfirmed.
		rctx, cancelRecord := queue.WithGrace(ctx)
		err = w.recordWave(rctx, wave)
		cancelRecord()
		if err != nil {
			return err
		}
	}
	return nil
}

// callAll calls the provider for each claimed message at once.
func (w *SendBatchWorker) callAll(ctx context.Context, wave []*outgoing) {
	var wg sync.WaitGroup
	for _, m := range wave {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.send(ctx, m)
		}()
	}
	wg.Wait()
}

// recordWave records the outcomes of a wave: sent and failed messages of a
// provider that does not call back in one statement; retries to schedule
// and callback reports to apply each on its own.
func (w *SendBatchWorker) recordWave(ctx context.Context, wave []*outgoing) error {
	_, callsBack := w.Provider.(CallbackProvider)
	var final []*outgoing
	for _, m := range wave {
		if m.transient == nil && !callsBack {
			final = append(final, m)
			continue
		}
		var err error
		if m.transient != nil {
			err = w.scheduleRetry(ctx, m)
		} else {
			err = w.record(ctx, m)
		}
		if err != nil {
			return err
		}
	}
	return w.recordFinal(ctx, final)
}

// recordFinal records the final outcomes of done (sent or failed; a
// provider that does not call back) in one statement.
func (s *Sender) recordFinal(ctx context.Context, done []*outgoing) error {
	if len(done) == 0 {
		return nil
	}
	ids, statuses := make([]uuid.UUID, len(done)), make([]string, len(done))
	pids, errs := make([]*string, len(done)), make([]*string, len(done))
	for i, m := range done {
		ids[i], statuses[i] = m.id, "sent"
		if m.fail != "" {
			t := truncate(m.fail)
			statuses[i], errs[i] = "failed", &t
		} else {
			pids[i] = &m.providerID
		}
	}
	if _, err := s.Pool.Exec(ctx, `UPDATE sms_message m SET status = u.status, provider = $1,
			provider_message_id = coalesce(u.pid, m.provider_message_id), last_error = coalesce(u.err, m.last_error),
			sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE m.sent_at END, updated_at = now()
		FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) AS u(id, status, pid, err)
		WHERE m.id = u.id AND m.status IN ('queued', 'sending')`, s.Provider.Name(), ids, statuses, pids, errs); err != nil {
		return err
	}
	for _, st := range statuses {
		s.Metrics.message(s.Provider.Name(), st, 1)
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
	if m.unknown() {
		w.Metrics.message(w.Provider.Name(), "unconfirmed", 1)
	}
	return pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		if err := w.recordTransient(ctx, tx, m); err != nil {
			return err
		}
		_, err := river.ClientFromContext[pgx.Tx](ctx).InsertTx(ctx, tx, SendArgs{MessageID: m.id},
			&river.InsertOpts{ScheduledAt: time.Now().Add(time.Second)})
		return err
	})
}

// recordTransient puts a message whose call failed transiently back to
// queued, counting the attempt as unconfirmed when the gateway never
// answered.
func (s *Sender) recordTransient(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, m *outgoing) error {
	unconfirmed := 0
	if m.unknown() {
		unconfirmed = 1
	}
	_, err := q.Exec(ctx, `UPDATE sms_message SET status = 'queued', last_error = $2, provider = $3,
			unconfirmed_attempts = unconfirmed_attempts + $4, updated_at = now()
		WHERE id = $1 AND status IN ('queued', 'sending')`, m.id, truncate(m.transient.Error()), s.Provider.Name(), unconfirmed)
	return err
}

// failUnsendable fails messages of ids that are still queued but cannot be
// sent because their request's template was disabled since the expansion.
func (w *SendBatchWorker) failUnsendable(ctx context.Context, ids []uuid.UUID) error {
	_, err := w.Pool.Exec(ctx, `UPDATE sms_message m SET status = 'failed', updated_at = now(),
			unconfirmed_attempts = m.unconfirmed_attempts + CASE WHEN m.status = 'sending' THEN 1 ELSE 0 END,
			last_error = 'the request''s template is no longer enabled'
		FROM sms_request r
		WHERE m.id = ANY ($1) AND r.id = m.request_id AND m.status IN ('queued', 'sending')
		  AND (m.attempts = 0 OR (m.status = 'sending' AND m.last_error IS NULL))
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
func (w *SendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return queue.MaxTimeout }

// Work sends job.Args.MessageID.
func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	m := &outgoing{}
	err := w.Pool.QueryRow(ctx, fmt.Sprintf(selectOutgoing, ""), []uuid.UUID{job.Args.MessageID}).Scan(&m.id, &m.to, &m.body, &m.dlt, &m.attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		// Recorded already (a re-run after a crash), deleted with its
		// request, or its template disabled since.
		_, err := w.Pool.Exec(ctx, `UPDATE sms_message SET status = 'failed', updated_at = now(),
				unconfirmed_attempts = unconfirmed_attempts + CASE WHEN status = 'sending' THEN 1 ELSE 0 END,
				last_error = 'the request''s template is no longer enabled'
			WHERE id = $1 AND status IN ('queued', 'sending')`, job.Args.MessageID)
		return err
	}
	if err != nil {
		return err
	}
	waitCtx, cancel := context.WithTimeout(ctx, w.Timeout(job)-ProviderCallTimeout)
	defer cancel()
	if d, ok := ctx.Deadline(); ok {
		waitCtx, cancel = context.WithDeadline(ctx, d.Add(-ProviderCallTimeout))
		defer cancel()
	}
	if err := w.Limiter.Wait(waitCtx); err != nil {
		return river.JobSnooze(SnoozeUnsent)
	}
	claimed, err := w.claim(ctx, []*outgoing{m})
	if err != nil || len(claimed) == 0 {
		return err // recorded meanwhile: nothing to do
	}
	w.send(ctx, m)
	rctx, cancelRecord := queue.WithGrace(ctx)
	defer cancelRecord()
	if m.transient == nil {
		return w.record(rctx, m)
	}
	if m.unknown() {
		w.Metrics.message(w.Provider.Name(), "unconfirmed", 1)
	}
	if queue.LastAttempt(job.JobRow, sendJobAttempts) {
		if m.unknown() {
			if _, err := w.Pool.Exec(rctx, `UPDATE sms_message SET unconfirmed_attempts = unconfirmed_attempts + 1 WHERE id = $1`, m.id); err != nil {
				return err
			}
		}
		m.fail = fmt.Sprintf("gave up after %d attempts: %v", m.attempts, m.transient)
		return w.record(rctx, m)
	}
	w.Metrics.message(w.Provider.Name(), "retry", 1)
	if err := w.recordTransient(rctx, w.Pool, m); err != nil {
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
	withheld       *prometheus.CounterVec
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

func (m *Metrics) resultWithheld(why string) {
	if m != nil {
		m.withheld.WithLabelValues(why).Inc()
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
			Help: "SMS message outcomes by provider and status (sent, failed, retry, undeliverable; unconfirmed: a call whose outcome was never learned, a possible duplicate).",
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
		withheld: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_sms_results_withheld_total",
			Help: "Result messages that said 'ask the school' instead of a child's result, by reason (not_final, classes, missing_subject, over_maximum, counts_only, household, message).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.messages, m.duration, m.providerErrors, m.withheld)
	return m
}
