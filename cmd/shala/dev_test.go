package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/pgcluster"
)

// lockedWriter is a buffer run's output and the test can share.
type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// devDir is a data directory the postgres user can enter when tests run
// as root.
func devDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shala-dev-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := pgcluster.PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "data")
}

func freePort(t *testing.T) string {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return port
}

func devEnv(t *testing.T, dir string) map[string]string {
	return map[string]string{
		"SHALA_ADDR":             freeAddr(t),
		"SHALA_DEV_PG_PORT":      freePort(t),
		"SHALA_SMS_OUTBOX":       filepath.Join(dir, "sms-outbox.log"),
		"SHALA_LOG_LEVEL":        "warn",
		"SHALA_SHUTDOWN_TIMEOUT": "5s",
	}
}

// waitFor polls check (a process outside the test's control) until it
// holds or a minute passes.
func waitFor(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(50 * time.Millisecond) // polling another process; nothing to wait on
	}
}

func healthy(addr string) bool {
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// A second shala dev on the same data directory says plainly that one is
// running (and how to stop it) before touching anything: no "starting
// Postgres", no migration of the other's cluster.
func TestSecondDevIsRefusedPlainly(t *testing.T) {
	t.Parallel()
	dir := devDir(t)
	env := devEnv(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedWriter
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"shala", "dev", "-data", dir}, func(k string) string { return env[k] }, &out, &errOut)
	}()
	waitFor(t, "the first shala dev serving", func() bool {
		select {
		case err := <-done:
			t.Fatalf("first shala dev stopped: %v\n%s\n%s", err, out.String(), errOut.String())
		default:
		}
		return healthy(env["SHALA_ADDR"])
	})

	second := map[string]string{"SHALA_ADDR": freeAddr(t), "SHALA_DEV_PG_PORT": env["SHALA_DEV_PG_PORT"], "SHALA_SMS_OUTBOX": env["SHALA_SMS_OUTBOX"]}
	var out2, errOut2 lockedWriter
	err := run(context.Background(), []string{"shala", "dev", "-data", dir}, func(k string) string { return second[k] }, &out2, &errOut2)
	pid := strconv.Itoa(os.Getpid())
	if err == nil || !strings.Contains(err.Error(), "already running") || !strings.Contains(err.Error(), "kill "+pid) ||
		!strings.Contains(err.Error(), env["SHALA_ADDR"]) {
		t.Errorf("second shala dev: got %v, want it to name the running one (pid %s, %s) and how to stop it", err, pid, env["SHALA_ADDR"])
	}
	if s := out2.String() + errOut2.String(); strings.Contains(s, "Postgres") || strings.Contains(s, "migrate") {
		t.Errorf("second shala dev did things before refusing:\n%s", s)
	}
	if !healthy(env["SHALA_ADDR"]) {
		t.Error("the first shala dev stopped serving")
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("first shala dev: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "shala-dev.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left behind after a clean stop: %v", err)
	}
}

// shala dev stops, and stops its Postgres, when what started it dies —
// even by SIGKILL (`make run` killed from another terminal).
func TestDevStopsWithWhatStartedIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	bin := buildShala(t)
	dir := devDir(t)
	env := devEnv(t, dir)
	logPath := filepath.Join(t.TempDir(), "dev.log")
	// The parent: a shell that cannot exec shala (it has more to do after).
	parent := exec.Command("sh", "-c", fmt.Sprintf("'%s' dev -data '%s' >'%s' 2>&1; echo ended", bin, dir, logPath))
	parent.Env = append(os.Environ(), "SHALA_ADDR="+env["SHALA_ADDR"], "SHALA_DEV_PG_PORT="+env["SHALA_DEV_PG_PORT"],
		"SHALA_SMS_OUTBOX="+env["SHALA_SMS_OUTBOX"], "SHALA_LOG_LEVEL=warn", "SHALA_SHUTDOWN_TIMEOUT=5s", "DATABASE_URL=")
	parent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-parent.Process.Pid, syscall.SIGKILL) })
	waitFor(t, "shala dev serving", func() bool { return healthy(env["SHALA_ADDR"]) })
	b, err := os.ReadFile(filepath.Join(dir, "shala-dev.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var shalaPID, pgPID int
	fmt.Sscan(string(b), &shalaPID)
	if pm, err := os.ReadFile(filepath.Join(dir, "postgres", "postmaster.pid")); err == nil {
		fmt.Sscan(string(pm), &pgPID)
	}
	if shalaPID == 0 || pgPID == 0 {
		t.Fatalf("pids: shala %d postgres %d", shalaPID, pgPID)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(shalaPID, syscall.SIGKILL)
		_ = syscall.Kill(pgPID, syscall.SIGKILL)
	})

	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	gone := func(pid int) bool { return syscall.Kill(pid, 0) == syscall.ESRCH }
	waitFor(t, "shala dev and its Postgres gone after their parent was killed", func() bool { return gone(shalaPID) && gone(pgPID) })
	// In order: shala stopped its Postgres (a fast shutdown), rather than
	// Postgres noticing that shala had gone.
	if log, _ := os.ReadFile(filepath.Join(dir, "postgres.log")); !bytes.Contains(log, []byte("received fast shutdown request")) {
		devLog, _ := os.ReadFile(logPath)
		t.Errorf("shala dev did not stop its Postgres:\n%s\n%s", tail(log, 2<<10), tail(devLog, 2<<10))
	}
}

func TestDevListensOnThisMachineByDefault(t *testing.T) {
	t.Parallel()
	if got := devAddr(func(string) string { return "" }); got != "127.0.0.1:8080" {
		t.Errorf("default dev address %q, want 127.0.0.1:8080", got)
	}
	if got := devAddr(func(k string) string { return map[string]string{"SHALA_ADDR": ":9000"}[k] }); got != ":9000" {
		t.Errorf("SHALA_ADDR=:9000 gives %q", got)
	}
}
