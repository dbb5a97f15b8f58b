// Package apptest builds shala for tests through the same composition root
// as `shala serve` (internal/app), on a throwaway database, with every file
// it writes under the test's temp dir.
package apptest

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/pgtest"
)

// WebhookSecret is the X-Shala-Webhook-Secret of a Config's App.
const WebhookSecret = "apptest-webhook-secret"

// Discard is a logger that writes nothing.
var Discard = slog.New(slog.DiscardHandler)

// Config is the configuration tests build an App with: the defaults, the
// webhook secret WebhookSecret, the blob bucket, the SMS outbox and the
// development keys (certificate signing, Aadhaar) under t.TempDir(), 10 workers with a 1 ms fetch cooldown, and no per-IP limit
// worth mentioning. Tests change what they need before calling New.
func Config(t testing.TB) *config.Config {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{
		"SHALA_WEBHOOK_SECRET":       WebhookSecret,
		"SHALA_BLOB_URL":             "file://" + filepath.Join(dir, "blobs") + "?create_dir=true",
		"SHALA_SMS_OUTBOX":           filepath.Join(dir, "sms-outbox.log"),
		"SHALA_TUS_DIR":              filepath.Join(dir, "tus"),
		"SHALA_PUBLIC_URL":           "https://shala.example",
		"SHALA_QUEUE_WORKERS":        "10",
		"SHALA_QUEUE_FETCH_COOLDOWN": "1ms",
		"SHALA_SMS_WORKERS":          "8",
		"SHALA_DATA_DIR":             filepath.Join(dir, "data"),
	}
	cfg, err := config.Load(context.Background(), func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// New builds an App from cfg on opts.Pool, or on a fresh test database when
// it is nil, logging to Discard unless opts say otherwise. When the test
// ends its workers are stopped (if started) and it is closed.
func New(t testing.TB, cfg *config.Config, opts app.Options) *app.App {
	t.Helper()
	return NewWithLog(t, cfg, Discard, opts)
}

// NewWithLog is New with a logger.
func NewWithLog(t testing.TB, cfg *config.Config, log *slog.Logger, opts app.Options) *app.App {
	t.Helper()
	if opts.Pool == nil {
		opts.Pool = pgtest.New(t)
	}
	a, err := app.New(context.Background(), cfg, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Stop(10 * time.Second); err != nil {
			t.Errorf("stop workers: %v", err)
		}
		if err := a.Close(); err != nil {
			t.Errorf("close app: %v", err)
		}
	})
	return a
}

// Start starts a's workers; New's cleanup stops them.
func Start(t testing.TB, a *app.App) {
	t.Helper()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// OnJobFinished calls f for every job a's workers finish from now on
// (completed, failed, cancelled, snoozed, interrupted), until the test
// ends. Take it before the work starts.
func OnJobFinished(t testing.TB, a *app.App, f func(*river.Event)) {
	t.Helper()
	events, cancel := a.Queue.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed,
		river.EventKindJobCancelled, river.EventKindJobSnoozed, river.EventKindJobInterrupted)
	t.Cleanup(cancel)
	go func() {
		for e := range events { // closed by cancel or when the client stops
			f(e)
		}
	}()
}

// Signal wakes a test waiting for something that happens elsewhere (a job,
// a callback) when it may have happened: no polling, no sleeps.
type Signal chan struct{}

// NewSignal returns a signal.
func NewSignal() Signal { return make(Signal, 1) }

// Notify wakes the waiter, if any; it never blocks.
func (s Signal) Notify() {
	select {
	case s <- struct{}{}:
	default:
	}
}

// Await returns once cond holds, checking it at once and again at every
// Notify. The guard only keeps a broken test from hanging: what is waited
// for is that cond comes to hold, not how fast.
func (s Signal) Await(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if s == nil {
		t.Fatalf("%s: awaited on a nil Signal", what)
	}
	guard := time.NewTimer(time.Minute)
	defer guard.Stop()
	for !cond() {
		select {
		case <-s:
		case <-guard.C:
			t.Fatalf("%s: never happened", what)
		}
	}
}

// JobsFinished is a signal notified whenever one of a's jobs finishes.
func JobsFinished(t testing.TB, a *app.App) Signal {
	t.Helper()
	s := NewSignal()
	OnJobFinished(t, a, func(*river.Event) { s.Notify() })
	return s
}

// Clock is a clock a test moves (app.Options.Now = c.Now): time-bound
// rules are tested by moving it, never by sleeping.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
