package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/ping"
)

// TestRecordingPaths covers the two ways a batch is recorded: the fast
// path (BEGIN and the INSERT in one round trip, every delivery new) and
// the slow one it falls back to when a delivery was recorded before.
func TestRecordingPaths(t *testing.T) {
	t.Parallel()

	// receive delivers d and reports whether it was a duplicate and how
	// often its work ran. (It may run on a goroutine of its own: it
	// reports an error with Errorf.)
	receive := func(t *testing.T, in *inbox.Inbox, d inbox.Delivery) (dup bool, ran int) {
		t.Helper()
		dup, err := in.Receive(context.Background(), d, func(ctx context.Context, w *inbox.Work) error {
			ran++
			w.Enqueue(ping.PongArgs{PingID: d.ID}, nil)
			return nil
		})
		if err != nil {
			t.Errorf("receive %s: %v", d.ID, err)
		}
		return dup, ran
	}
	paths := func(t *testing.T, in *inbox.Inbox, wantFast, wantSlow int64) {
		t.Helper()
		if fast, slow := in.Paths(); fast != wantFast || slow != wantSlow {
			t.Errorf("got %d fast and %d slow batches, want %d and %d", fast, slow, wantFast, wantSlow)
		}
	}

	// result is what a delivery's caller saw.
	type result struct {
		dup bool
		ran int
	}

	t.Run("NewDeliveriesAreRecordedOnTheFastPath", func(t *testing.T) {
		t.Parallel()
		in, count := setup(t)
		event := inbox.Delivery{ID: uuid.New(), Kind: "event", Name: "ping_created", Op: "INSERT", TraceID: "0af7651916cd43dd8448eb211c80319c"}
		cron := inbox.Delivery{ID: uuid.New(), Kind: "cron", Name: "reconcile"}
		for _, d := range []inbox.Delivery{event, cron} {
			if dup, ran := receive(t, in, d); dup || ran != 1 {
				t.Errorf("%s: got duplicate %v, work ran %d times; want new, once", d.Name, dup, ran)
			}
		}
		paths(t, in, 2, 0)
		if n := count(`SELECT count(*) FROM webhook_inbox WHERE event_id = $1 AND kind = 'event'
			AND name = 'ping_created' AND op = 'INSERT' AND trace_id = $2`, event.ID, event.TraceID); n != 1 {
			t.Errorf("event: got %d rows with its values, want 1", n)
		}
		if n := count(`SELECT count(*) FROM webhook_inbox WHERE event_id = $1 AND kind = 'cron'
			AND name = 'reconcile' AND op IS NULL AND trace_id IS NULL`, cron.ID); n != 1 {
			t.Errorf("cron: got %d rows with its values (op and trace NULL), want 1", n)
		}
		if n := count(`SELECT count(*) FROM river_job WHERE kind = 'ping.pong'`); n != 2 {
			t.Errorf("got %d jobs, want 2", n)
		}
	})

	t.Run("ValuesAreStoredVerbatimNeverAsSQL", func(t *testing.T) {
		t.Parallel()
		in, count := setup(t)
		hostile := []string{
			`x'); DROP TABLE webhook_inbox; --`,
			`back\slash \' and "quotes" $$ and $1`,
			"नमस्ते\ttab",
			"<b>&amp;</b> \u2028\u2029 escaped by encoding/json",
			`$inbox`, // the tag's prefix, not the tag: still the fast path
		}
		for _, name := range hostile {
			d := inbox.Delivery{ID: uuid.New(), Kind: "event", Name: name, Op: "INSERT", TraceID: name}
			if dup, ran := receive(t, in, d); dup || ran != 1 {
				t.Errorf("%q: got duplicate %v, work ran %d times; want new, once", name, dup, ran)
			}
			if n := count(`SELECT count(*) FROM webhook_inbox WHERE event_id = $1 AND name = $2 AND trace_id = $2`, d.ID, name); n != 1 {
				t.Errorf("%q: got %d rows holding it verbatim, want 1", name, n)
			}
		}
		paths(t, in, int64(len(hostile)), 0)
	})

	t.Run("AValueHoldingTheTagTakesTheSlowPath", func(t *testing.T) {
		t.Parallel()
		in, count := setup(t)
		d := inbox.Delivery{ID: uuid.New(), Kind: "event", Name: "ping_created", Op: "INSERT", TraceID: "a$inbox$b"}
		if dup, ran := receive(t, in, d); dup || ran != 1 {
			t.Errorf("got duplicate %v, work ran %d times; want new, once", dup, ran)
		}
		paths(t, in, 0, 1)
		if n := count(`SELECT count(*) FROM webhook_inbox WHERE trace_id = 'a$inbox$b'`); n != 1 {
			t.Errorf("got %d rows holding the trace id verbatim, want 1", n)
		}
	})

	t.Run("ARedeliveryFallsBackAndRunsOnlyNewWork", func(t *testing.T) {
		t.Parallel()
		in, count := setup(t)
		old := delivery(uuid.New())
		receive(t, in, old)
		paths(t, in, 1, 0)

		// The redelivery and a new delivery, in one batch.
		release := holdLeader(t, in)
		fresh := delivery(uuid.New())
		var wg sync.WaitGroup
		results := map[uuid.UUID]result{}
		var mu sync.Mutex
		for _, d := range []inbox.Delivery{old, fresh} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dup, ran := receive(t, in, d)
				mu.Lock()
				defer mu.Unlock()
				results[d.ID] = result{dup, ran}
			}()
		}
		waitPending(t, in, 2)
		release()
		wg.Wait()
		if got := results[old.ID]; got != (result{dup: true, ran: 0}) {
			t.Errorf("redelivery: got duplicate %v and %d work runs, want a duplicate and none", got.dup, got.ran)
		}
		if got := results[fresh.ID]; got != (result{dup: false, ran: 1}) {
			t.Errorf("new delivery: got duplicate %v and %d work runs, want new and one", got.dup, got.ran)
		}
		// 2 fast: the first delivery and the holding one; the batch of
		// two met the duplicate, rolled back and went the slow way.
		paths(t, in, 2, 1)
		if n := count(`SELECT count(*) FROM river_job WHERE kind = 'ping.pong'`); n != 2 {
			t.Errorf("got %d jobs, want 2 (the first delivery's and the new one's)", n)
		}

		// Redeliveries come in runs: the next batches skip the fast path.
		receive(t, in, delivery(uuid.New()))
		paths(t, in, 2, 2)
		if n := count(`SELECT count(*) FROM webhook_inbox`); n != 4 {
			t.Errorf("got %d deliveries recorded, want 4", n)
		}
	})

	t.Run("TheSlowSpellEnds", func(t *testing.T) {
		t.Parallel()
		in, _ := setup(t)
		old := delivery(uuid.New())
		receive(t, in, old)
		if dup, _ := receive(t, in, old); !dup {
			t.Fatal("redelivery: got new, want a duplicate")
		}
		paths(t, in, 1, 1)
		for i := range 64 {
			receive(t, in, delivery(uuid.New()))
			if _, slow := in.Paths(); slow != int64(2+i) {
				t.Fatalf("batch %d after the duplicate: got %d slow batches, want %d", i+1, slow, 2+i)
			}
		}
		receive(t, in, delivery(uuid.New()))
		paths(t, in, 2, 65)
	})

	t.Run("AnErrorThatIsNoDuplicateFailsTheDelivery", func(t *testing.T) {
		t.Parallel()
		in, count := setup(t)
		bad := inbox.Delivery{ID: uuid.New(), Kind: "event", Name: "", Op: "INSERT"} // the name's CHECK refuses it
		_, err := in.Receive(context.Background(), bad, func(context.Context, *inbox.Work) error {
			t.Error("work ran for a delivery that was not recorded")
			return nil
		})
		if err == nil {
			t.Fatal("got no error for a delivery the table refuses, want one")
		}
		// The connection was rolled back and reused, and no slow spell
		// began: the next delivery takes the fast path.
		if dup, ran := receive(t, in, delivery(uuid.New())); dup || ran != 1 {
			t.Errorf("next delivery: got duplicate %v, work ran %d times; want new, once", dup, ran)
		}
		paths(t, in, 1, 0)
		if n := count(`SELECT count(*) FROM webhook_inbox`); n != 1 {
			t.Errorf("got %d deliveries recorded, want 1", n)
		}
	})

	// Two transactions holding the same id — two replicas, each given a
	// copy: the second's INSERT waits for the first's row, then meets it
	// (a duplicate) or takes its place. (Within one replica the second
	// copy would wait for the first's batch instead: one batch is built
	// at a time.)
	t.Run("ACopyRacingAnUncommittedOne", func(t *testing.T) {
		for _, firstFails := range []bool{false, true} {
			name := "TheFirstCommits"
			if firstFails {
				name = "TheFirstRollsBack"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				b := setupBundle(t)
				in, count := b.in, b.count
				replica := inbox.New(b.pool, b.queue)
				d := delivery(uuid.New())
				started, hold := make(chan struct{}), make(chan struct{})
				firstErr := make(chan error, 1)
				go func() {
					_, err := in.Receive(context.Background(), d, func(ctx context.Context, w *inbox.Work) error {
						close(started)
						<-hold
						if firstFails {
							return errors.New("the first copy's work fails")
						}
						w.Enqueue(ping.PongArgs{PingID: d.ID}, nil)
						return nil
					})
					firstErr <- err
				}()
				guard(t, started, "the first copy's work started")
				second := make(chan result, 1)
				go func() {
					dup, ran := receive(t, replica, d)
					second <- result{dup, ran}
				}()
				// The second copy's INSERT waits on the first's row.
				waitFor(t, "the second copy waits on the first", func() bool {
					return count(`SELECT count(*) FROM pg_stat_activity
						WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
				})
				close(hold)
				err := guard(t, firstErr, "the first copy answered")
				got := guard(t, second, "the second copy answered")
				if firstFails {
					if err == nil {
						t.Error("first copy: got no error, want its work's")
					}
					if got.dup || got.ran != 1 {
						t.Errorf("second copy: got duplicate %v, work ran %d times; want new, once", got.dup, got.ran)
					}
				} else {
					if err != nil {
						t.Errorf("first copy: %v", err)
					}
					if !got.dup || got.ran != 0 {
						t.Errorf("second copy: got duplicate %v, work ran %d times; want a duplicate, no work", got.dup, got.ran)
					}
				}
				if n := count(`SELECT count(*) FROM river_job WHERE kind = 'ping.pong'`); n != 1 {
					t.Errorf("got %d jobs, want 1", n)
				}
			})
		}
	})
}
