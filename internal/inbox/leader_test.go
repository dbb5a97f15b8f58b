package inbox_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/inbox"
)

// waitPending yields until n deliveries wait for a transaction.
func waitPending(t *testing.T, in *inbox.Inbox, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d deliveries pending", n), func() bool { return in.Pending() == n })
}

// waitFor polls cond until it holds, and fails the test when it does not
// for long: the behaviour under test is that it comes to hold at all, not
// how fast. (t.Context is cancelled only once the test has returned.)
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
		runtime.Gosched()
	}
}

// guard fails the test when ch yields nothing for long: the behaviour
// under test is that it yields at all, not how fast.
func guard[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: never happened", what)
		panic("unreachable")
	}
}

// holdLeader makes in's only transaction slot busy with a delivery whose
// work blocks until the returned function is called (or the test ends), so
// that deliveries received meanwhile queue and then run in one batch.
func holdLeader(t *testing.T, in *inbox.Inbox) (release func()) {
	t.Helper()
	in.MaxInFlight = 1
	return holdBatch(t, in)
}

// holdBatch makes in build a batch whose one delivery's work blocks until
// the returned function is called (or the test ends).
func holdBatch(t *testing.T, in *inbox.Inbox) (release func()) {
	t.Helper()
	started, hold := make(chan struct{}), make(chan struct{})
	go func() {
		_, err := in.Receive(context.Background(), delivery(uuid.New()), func(context.Context, *inbox.Work) error {
			close(started)
			<-hold
			return nil
		})
		if err != nil {
			t.Errorf("holding delivery: %v", err)
		}
	}()
	guard(t, started, "the holding delivery's work started")
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release) // a failed test must not leave a transaction open
	return release
}

func TestReceiveAnswersForItsOwnDeliveryOnly(t *testing.T) {
	t.Parallel()

	t.Run("a caller answers at its deadline while its work still runs", func(t *testing.T) {
		t.Parallel()
		in, _ := setup(t)
		started, release := make(chan struct{}), make(chan struct{})
		defer close(release)
		ctx, cancel := context.WithCancel(context.Background())
		returned := make(chan error, 1)
		go func() {
			_, err := in.Receive(ctx, delivery(uuid.New()), func(context.Context, *inbox.Work) error {
				close(started)
				<-release
				return nil
			})
			returned <- err
		}()
		guard(t, started, "work started")
		cancel()
		if err := guard(t, returned, "Receive returned after its caller's context ended"); !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want the caller's context.Canceled", err)
		}
	})

	t.Run("a delivery batched with one that fails slowly answers first", func(t *testing.T) {
		t.Parallel()
		in, _ := setup(t)
		in.MaxInFlight = 1
		release := holdLeader(t, in)
		good := make(chan error, 1)
		go func() {
			_, err := in.Receive(context.Background(), delivery(uuid.New()), func(context.Context, *inbox.Work) error { return nil })
			good <- err
		}()
		waitPending(t, in, 1)
		again, unblock := make(chan struct{}, 1), make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(unblock) }) })
		bad := make(chan error, 1)
		var calls atomic.Int32
		go func() {
			_, err := in.Receive(context.Background(), delivery(uuid.New()), func(context.Context, *inbox.Work) error {
				if calls.Add(1) == 1 {
					return errors.New("refused in its batch")
				}
				again <- struct{}{}
				<-unblock // alone, it takes its time
				return errors.New("refused alone")
			})
			bad <- err
		}()
		waitPending(t, in, 2)
		release()
		if err := guard(t, good, "the good delivery answered while the failing one ran alone"); err != nil {
			t.Errorf("good delivery: %v", err)
		}
		once.Do(func() { close(unblock) })
		if err := guard(t, bad, "the failing delivery answered"); err == nil {
			t.Error("failing delivery: nil error")
		}
	})

	t.Run("each delivery's work sees its own context values", func(t *testing.T) {
		t.Parallel()
		in, _ := setup(t)
		in.MaxInFlight = 1
		release := holdLeader(t, in)
		type key struct{}
		seen := make(chan [2]string, 3)
		done := make(chan struct{}, 3)
		for i, name := range []string{"first", "second", "third"} {
			go func() {
				ctx := context.WithValue(context.Background(), key{}, name)
				_, err := in.Receive(ctx, delivery(uuid.New()), func(ctx context.Context, w *inbox.Work) error {
					got, _ := ctx.Value(key{}).(string)
					seen <- [2]string{name, got}
					return nil
				})
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
				done <- struct{}{}
			}()
			waitPending(t, in, i+1)
		}
		release()
		for range 3 {
			guard(t, done, "a batched delivery answered")
		}
		close(seen)
		for s := range seen {
			if s[0] != s[1] {
				t.Errorf("work of the %s delivery saw the %q delivery's context", s[0], s[1])
			}
		}
	})
}
