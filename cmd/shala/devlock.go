package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// devLock is the lock a running `shala dev` holds on its data directory:
// an exclusive flock on <data>/shala-dev.pid, which also says who holds it.
// The kernel drops the lock when the process dies, however it dies, so a
// stale file never blocks the next start.
type devLock struct{ f *os.File }

// lockDev takes the data directory's lock, or reports plainly who holds it.
func lockDev(dataDir, addr string, pgPort int) (*devLock, error) {
	path := filepath.Join(dataDir, "shala-dev.pid")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		b, _ := os.ReadFile(path)
		holder := strings.Fields(string(b))
		if len(holder) >= 3 {
			return nil, fmt.Errorf("shala dev is already running on %s (pid %s, serving on %s, its Postgres on 127.0.0.1:%s); stop it first: kill %s",
				dataDir, holder[0], holder[1], holder[2], holder[0])
		}
		return nil, fmt.Errorf("shala dev is already running on %s (see %s); stop it first", dataDir, path)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := fmt.Fprintf(f, "%d %s %d\n", os.Getpid(), addr, pgPort); err != nil {
		f.Close()
		return nil, err
	}
	return &devLock{f: f}, nil
}

// release removes the pid file and drops the lock.
func (l *devLock) release() {
	_ = os.Remove(l.f.Name())
	_ = l.f.Close()
}

// dieWithParent asks the kernel to send this process SIGTERM when the
// process that started it exits, however it exits — `make run` killed from
// another terminal, its `go run` gone — so shala dev never outlives what
// started it, and stops its Postgres on the way out. The request belongs to
// the OS thread that makes it, so that thread is kept for the life of the
// process.
func dieWithParent() error {
	parent := os.Getppid()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
		select {} // keep the thread: the parent-death signal is tied to it
	}()
	if err := <-errc; err != nil {
		return fmt.Errorf("parent-death signal: %w", err)
	}
	if os.Getppid() != parent {
		// The parent died before the request was made.
		return syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
	return nil
}

// devAddr is where shala dev listens: SHALA_ADDR, or this machine only.
// The dev webhook secret and operator password are printed on the
// terminal; other machines (a phone running ODK Collect on the LAN) are let
// in by setting SHALA_ADDR=:8080 on purpose.
func devAddr(getenv func(string) string) string {
	if a := getenv("SHALA_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:8080"
}

// pgPort reads SHALA_DEV_PG_PORT.
func pgPort(getenv func(string) string) (int, error) {
	p := getenv("SHALA_DEV_PG_PORT")
	if p == "" {
		return defaultDevPGPort, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("SHALA_DEV_PG_PORT: want a port number, got %q", p)
	}
	return n, nil
}
