package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Probes at once share one check, and its answer for a second: a burst
// of them costs the pool one check, however many come.
func TestReadinessChecksOnceForAllProbesOfASecond(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	var calls atomic.Int32
	down := errors.New("database down")
	c := &readiness{now: func() time.Time { return now }, ready: func(context.Context) error {
		if calls.Add(1) == 1 {
			return down
		}
		return nil
	}}
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := c.check(context.Background()); !errors.Is(err, down) {
				t.Errorf("probe: %v, want the one check's answer", err)
			}
		})
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("%d checks for 20 probes at once, want 1", n)
	}
	now = now.Add(time.Second)
	if err := c.check(context.Background()); err != nil || calls.Load() != 2 {
		t.Errorf("a second later: %v after %d checks, want a new check that sees the recovery", err, calls.Load())
	}
}
