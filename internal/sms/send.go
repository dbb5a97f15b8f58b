package sms

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
	"golang.org/x/time/rate"
)

// Queue is the River queue SMS sends run on, so that sends waiting for the
// rate limiter never hold workers other jobs need.
const Queue = "sms"

// SendAttempts is how often a send is tried before the message is failed.
// River backs off attempt⁴ seconds with jitter: the last try is ~78 minutes
// after the first.
const SendAttempts = 8

// SendArgs asks for one message to be sent.
type SendArgs struct {
	MessageID uuid.UUID `json:"message_id"`
}

// Kind is the River job kind.
func (SendArgs) Kind() string { return "sms.send" }

// InsertOpts puts sends on their own queue.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: SendAttempts}
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

// SendWorker sends one message and records the outcome.
//
// The message is marked "sending" (attempt counted) and committed before the
// provider is called, and the outcome is recorded with the job's completion
// in one transaction after. If the process dies between the provider
// accepting a message and that commit, the retry sends it again: at most the
// messages in flight at a crash (up to the sms queue's worker count) can
// reach a phone twice. No message is ever lost.
type SendWorker struct {
	river.WorkerDefaults[SendArgs]
	Pool     *pgxpool.Pool
	Provider Provider
	Limiter  *rate.Limiter
	Metrics  *Metrics
	Log      *slog.Logger
}

// Timeout bounds one provider call.
func (w *SendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return 45 * time.Second }

// Work sends job.Args.MessageID.
func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	var to, body, dlt string
	err := w.Pool.QueryRow(ctx, `UPDATE sms_message m SET status = 'sending', attempts = m.attempts + 1, provider = $2
		FROM sms_request r JOIN sms_template t ON t.type = r.type AND t.language = r.language AND t.enabled
		WHERE m.id = $1 AND r.id = m.request_id AND m.status IN ('queued', 'sending')
		RETURNING m.phone, m.body, t.dlt_template_id`, job.Args.MessageID, w.Provider.Name()).
		Scan(&to, &body, &dlt)
	if errors.Is(err, pgx.ErrNoRows) {
		// Already sent or failed (a duplicate job), or deleted with its
		// request, or its template disabled since: check which.
		return w.noLongerSendable(ctx, job)
	}
	if err != nil {
		return err
	}
	if err := w.Limiter.Wait(ctx); err != nil {
		return w.retryOrFail(ctx, job, err)
	}
	start := time.Now()
	id, sendErr := w.Provider.Send(ctx, Message{To: to, Body: body, DLTTemplateID: dlt})
	w.Metrics.duration.WithLabelValues(w.Provider.Name()).Observe(time.Since(start).Seconds())
	if sendErr != nil {
		w.Metrics.providerErrors.WithLabelValues(w.Provider.Name(), ErrorCode(sendErr)).Inc()
		if Permanent(sendErr) {
			w.Log.InfoContext(ctx, "sms refused", "message_id", job.Args.MessageID, "to", Mask(to), "err", sendErr)
			return w.finish(ctx, job, "failed", "", sendErr.Error())
		}
		return w.retryOrFail(ctx, job, sendErr)
	}
	return w.finish(ctx, job, "sent", id, "")
}

func (w *SendWorker) noLongerSendable(ctx context.Context, job *river.Job[SendArgs]) error {
	var status string
	err := w.Pool.QueryRow(ctx, `SELECT status FROM sms_message WHERE id = $1`, job.Args.MessageID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // request deleted: nothing to send
	}
	if err != nil {
		return err
	}
	if status == "queued" || status == "sending" {
		return w.finish(ctx, job, "failed", "", "the request's template is no longer enabled")
	}
	return nil
}

// retryOrFail records a transient error; River retries with backoff until
// the last attempt, which fails the message with the error.
func (w *SendWorker) retryOrFail(ctx context.Context, job *river.Job[SendArgs], sendErr error) error {
	if job.Attempt >= job.MaxAttempts {
		return w.finish(ctx, job, "failed", "", fmt.Sprintf("gave up after %d attempts: %v", job.Attempt, sendErr))
	}
	w.Metrics.messages.WithLabelValues(w.Provider.Name(), "retry").Inc()
	if _, err := w.Pool.Exec(context.WithoutCancel(ctx), `UPDATE sms_message SET status = 'queued', last_error = $2
		WHERE id = $1 AND status = 'sending'`, job.Args.MessageID, truncate(sendErr.Error())); err != nil {
		return errors.Join(sendErr, err)
	}
	return sendErr
}

// finish records a terminal outcome and completes the job in the same
// transaction.
func (w *SendWorker) finish(ctx context.Context, job *river.Job[SendArgs], status, providerID, lastErr string) error {
	ctx = context.WithoutCancel(ctx) // the provider has answered: record it even if we are being stopped
	err := pgx.BeginFunc(ctx, w.Pool, func(tx pgx.Tx) error {
		var pid, le *string
		if providerID != "" {
			pid = &providerID
		}
		if lastErr != "" {
			t := truncate(lastErr)
			le = &t
		}
		if _, err := tx.Exec(ctx, `UPDATE sms_message SET status = $2, provider_message_id = coalesce($3, provider_message_id),
				last_error = $4, sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
			WHERE id = $1`, job.Args.MessageID, status, pid, le); err != nil {
			return err
		}
		_, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job)
		return err
	})
	if err == nil {
		w.Metrics.messages.WithLabelValues(w.Provider.Name(), status).Inc()
	}
	return err
}

func truncate(s string) string {
	if len(s) <= 1000 {
		return s
	}
	r := []rune(s)
	if len(r) > 990 {
		r = r[:990]
	}
	return string(r) + "…"
}

// Metrics are the SMS metrics.
type Metrics struct {
	messages       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	providerErrors *prometheus.CounterVec
}

// NewMetrics registers the SMS metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_sms_messages_total",
			Help: "SMS message outcomes by provider and status (sent, failed, retry, undeliverable, delivered).",
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
