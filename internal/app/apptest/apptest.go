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
