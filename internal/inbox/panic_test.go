package inbox_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/inbox"
)

// A panic in one delivery's work fails that delivery alone (with the panic
// in its error) and leaves the inbox working — also when the batch runs on
// a leader goroutine, where nothing else would recover it.
func TestPanicInWorkFailsOnlyThatDelivery(t *testing.T) {
	t.Parallel()
	in, _ := setup(t)
	boom := func(ctx context.Context, w *inbox.Work) error { panic("bug in a trigger") }
	for range in.MaxInFlight + 1 {
		if _, err := in.Receive(context.Background(), delivery(uuid.New()), boom); err == nil || !strings.Contains(err.Error(), "panic") {
			t.Fatalf("panicking delivery: %v, want its panic as the error", err)
		}
	}
	// Queue a panicking delivery and a healthy one behind a busy leader, so
	// a leader goroutine runs their batch.
	var wg sync.WaitGroup
	release := holdLeader(t, in)
	errs := make([]error, 2)
	wg.Go(func() { _, errs[0] = in.Receive(context.Background(), delivery(uuid.New()), boom) })
	wg.Go(func() {
		_, errs[1] = in.Receive(context.Background(), delivery(uuid.New()), func(ctx context.Context, w *inbox.Work) error { return nil })
	})
	waitPending(t, in, 2) // both queued behind the leader
	release()
	wg.Wait()
	if errs[0] == nil || errs[1] != nil {
		t.Errorf("batch with a panic: %v / %v, want the panic to fail only its own delivery", errs[0], errs[1])
	}
}

// The batch's deadline bounds the work, and one delivery that runs out of
// time fails alone: the others of its batch are recorded.
func TestWorkRunsUnderTheBatchDeadline(t *testing.T) {
	t.Parallel()
	in, _ := setup(t)
	var has bool
	if _, err := in.Receive(context.Background(), delivery(uuid.New()), func(ctx context.Context, w *inbox.Work) error {
		_, has = ctx.Deadline()
		return nil
	}); err != nil || !has {
		t.Fatalf("work context without a deadline (%v)", err)
	}
	var wg sync.WaitGroup
	release := holdLeader(t, in)
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = in.Receive(context.Background(), delivery(uuid.New()), func(ctx context.Context, w *inbox.Work) error {
				if i == 0 {
					return context.DeadlineExceeded // as a statement past the deadline reports
				}
				_, err := w.Tx.Exec(ctx, `SELECT 1`)
				return err
			})
		})
	}
	waitPending(t, in, len(errs))
	release()
	wg.Wait()
	if !errors.Is(errs[0], context.DeadlineExceeded) {
		t.Errorf("slow delivery: %v", errs[0])
	}
	for i, err := range errs[1:] {
		if err != nil {
			t.Errorf("delivery %d of the slow one's batch: %v", i+1, err)
		}
	}
}
