package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/pgtest"
)

// shala dev keeps the thread its parent-death signal is tied to for the
// life of the process: by design, not a leak.
func TestMain(m *testing.M) {
	pgtest.Main(m, "github.com/shala-edu/shala/cmd/shala.dieWithParent.func1")
}

func TestVersionAndUsage(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"shala", "version"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "shala ") {
		t.Errorf("version: %q", out.String())
	}
	if err := run(context.Background(), []string{"shala", "frobnicate"}, func(string) string { return "" }, &out, &errOut); err == nil {
		t.Error("unknown command: got nil error")
	}
}

func TestServeRefusesBadConfigNamingTheVariable(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"shala", "serve"}, func(k string) string {
		return map[string]string{"SHALA_QUEUE_WORKERS": "lots"}[k]
	}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "SHALA_QUEUE_WORKERS") {
		t.Errorf("got %v, want an error naming SHALA_QUEUE_WORKERS", err)
	}
	err = run(context.Background(), []string{"shala", "serve"}, func(string) string { return "" }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "SHALA_WEBHOOK_SECRET") {
		t.Errorf("got %v, want errors naming DATABASE_URL and SHALA_WEBHOOK_SECRET", err)
	}
}

// watcher is a log sink that closes seen when a line contains want: a
// test waits for what the process says it did, not for time to pass.
type watcher struct {
	want string
	seen chan struct{}
	mu   sync.Mutex
	buf  bytes.Buffer
	once sync.Once
}

func (w *watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(p, []byte(w.want)) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestMigrateSeedServeAndShutDown drives the binary's real entry point:
// migrate (twice: the second is a no-op), seed, serve until ready, then a
// SIGTERM-equivalent cancellation must return cleanly.
func TestMigrateSeedServeAndShutDown(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.URL(t)
	addr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL":           dbURL,
		"SHALA_ADDR":             addr,
		"SHALA_WEBHOOK_SECRET":   "integration-secret-0123",
		"SHALA_SHUTDOWN_TIMEOUT": "5s",
		"SHALA_LOG_LEVEL":        "info",
		// Hermetic: nothing under the source tree.
		"SHALA_SMS_OUTBOX": filepath.Join(t.TempDir(), "sms-outbox.log"),
		"SHALA_BLOB_URL":   "file://" + t.TempDir() + "?create_dir=true",
		"SHALA_DATA_DIR":   t.TempDir(),
		"SHALA_TUS_DIR":    filepath.Join(t.TempDir(), "tus"),
	}
	getenv := func(k string) string { return env[k] }
	var out, errOut bytes.Buffer
	ctx := context.Background()
	for i := range 2 {
		out.Reset()
		if err := run(ctx, []string{"shala", "migrate"}, getenv, &out, &errOut); err != nil {
			t.Fatalf("migrate %d: %v\n%s", i, err, errOut.String())
		}
	}
	if !strings.Contains(out.String(), "shala migrations applied 0") {
		t.Errorf("second migrate: %q, want nothing applied", out.String())
	}
	if err := run(ctx, []string{"shala", "seed", "--demo", "--schools", "5"}, getenv, &out, &errOut); err != nil {
		t.Fatalf("seed: %v", err)
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logs := &watcher{want: `"msg":"listening"`, seen: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- run(sctx, []string{"shala", "serve"}, getenv, io.Discard, logs) }()
	select {
	case <-logs.seen:
	case err := <-done:
		t.Fatalf("serve returned before listening: %v\n%s", err, logs)
	}
	resp, err := http.Get(fmt.Sprintf("http://%s/readyz", addr))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Errorf("GET /readyz once listening: %d, want %d", got, want)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancellation: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop after cancellation")
	}
}

// TestServeFailingToListenOrOpenStartsNoWorkers: when anything serve needs
// fails (the address is taken, the blob store cannot be opened), it returns
// an error naming the variable and no River worker ever started — none left
// running behind a process that is exiting.
func TestServeFailingToListenOrOpenStartsNoWorkers(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"address in use", map[string]string{"SHALA_ADDR": busy.Addr().String()}, "SHALA_ADDR"},
		{"blob store unusable", map[string]string{"SHALA_BLOB_URL": "nosuchscheme://bucket"}, "SHALA_BLOB_URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbURL := pgtest.URL(t)
			env := map[string]string{
				"DATABASE_URL":         dbURL,
				"SHALA_ADDR":           freeAddr(t),
				"SHALA_WEBHOOK_SECRET": "integration-secret-0123",
				"SHALA_LOG_LEVEL":      "error",
				"SHALA_SMS_OUTBOX":     filepath.Join(t.TempDir(), "sms-outbox.log"),
				"SHALA_BLOB_URL":       "file://" + t.TempDir() + "?create_dir=true",
				"SHALA_TUS_DIR":        filepath.Join(t.TempDir(), "tus"),
				"SHALA_DATA_DIR":       filepath.Join(t.TempDir(), "data"),
			}
			for k, v := range tt.env {
				env[k] = v
			}
			var out, errOut bytes.Buffer
			err := run(t.Context(), []string{"shala", "serve"}, func(k string) string { return env[k] }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("serve: got %v, want an error naming %s", err, tt.want)
			}
			// A River client that started registered its queues.
			conn, err := pgx.Connect(t.Context(), dbURL)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(t.Context())
			var queues int
			if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM river_queue").Scan(&queues); err != nil {
				t.Fatal(err)
			}
			if queues != 0 {
				t.Errorf("river_queue has %d rows: workers were started before serve failed", queues)
			}
		})
	}
}

// TestSeedStateRefusesAScaleItCannotLoad: --scale 0 (or negative, NaN) was
// taken as "the default" and loaded the whole state (≈ 30 M results, tens
// of GB) into whatever DATABASE_URL named; it is refused before anything
// is opened.
func TestSeedStateRefusesAScaleItCannotLoad(t *testing.T) {
	t.Parallel()
	for _, scale := range []string{"0", "-0.5", "NaN", "+Inf"} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), []string{"shala", "seed", "--state", "--scale", scale}, func(string) string { return "" }, &out, &errOut)
		if err == nil || !strings.Contains(err.Error(), "--scale") {
			t.Errorf("seed --state --scale %s: got %v, want an error naming --scale", scale, err)
		}
	}
}
