package benchdb

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/server"
)

// Serve serves h on a loopback port as `shala serve` does and returns its
// base URL ("http://127.0.0.1:port") and a function that stops it.
func Serve(ctx context.Context, h http.Handler, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = server.Serve(ctx, ln, h, log, 5*time.Second) }()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done }, nil
}

// Profile starts a CPU profile written to path and returns the function
// that stops it; with path empty it does nothing.
func Profile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// NewApp builds shala through its composition root (internal/app) on pool,
// with the defaults overridden by env and its files (blobs, SMS outbox) in
// a temp dir. closeApp stops its workers, releases it and removes the dir.
func NewApp(ctx context.Context, pool *pgxpool.Pool, env map[string]string, log *slog.Logger) (a *app.App, closeApp func() error, err error) {
	dir, err := os.MkdirTemp("", "shala-bench-")
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]string{
		"SHALA_WEBHOOK_SECRET": "bench-webhook-secret-0123456789",
		"SHALA_BLOB_URL":       "file://" + filepath.Join(dir, "blobs") + "?create_dir=true",
		"SHALA_SMS_OUTBOX":     filepath.Join(dir, "sms-outbox.log"),
		"SHALA_DATA_DIR":       filepath.Join(dir, "data"),
		"SHALA_TUS_DIR":        filepath.Join(dir, "tus"),
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(ctx, func(k string) string { return vars[k] }, nil)
	if err == nil {
		a, err = app.New(ctx, cfg, log, app.Options{Pool: pool})
	}
	if err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	return a, func() error { return errors.Join(a.Stop(5*time.Second), a.Close(), os.RemoveAll(dir)) }, nil
}
