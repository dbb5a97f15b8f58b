package inbox_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/inbox"
)

// holdCommits makes every commit of a transaction that recorded a delivery
// wait until the returned function is called (or the test ends): a
// deferred trigger on the inbox takes an advisory lock the test holds.
// waiting says how many commits wait for it.
func holdCommits(t *testing.T, b *bundle) (release func(), waiting func() int) {
	t.Helper()
	ctx := context.Background()
	if _, err := b.pool.Exec(ctx, `
		CREATE FUNCTION test_hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER test_hold_commit AFTER INSERT ON webhook_inbox
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_hold_commit()`); err != nil {
		t.Fatal(err)
	}
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(4242)`); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if released {
			return
		}
		released = true
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(4242)`); err != nil {
			t.Error(err)
		}
		conn.Release()
	}
	t.Cleanup(release)
	waiting = func() int {
		return b.count(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`)
	}
	return release, waiting
}

// setupHeldCommits is a bundle whose inbox has measured builds and commits
// as given (so whether a commit passes the turn is known) and never passes
// a turn for taking long, and whose commits wait (holdCommits).
func setupHeldCommits(t *testing.T, build, commit time.Duration) (b *bundle, releaseCommits func(), waiting func() int) {
	t.Helper()
	b = setupBundle(t)
	b.in.PassAfter = time.Hour
	b.in.SetAverages(build, commit)
	releaseCommits, waiting = holdCommits(t, b)
	return b, releaseCommits, waiting
}

// receiveAsync delivers a new delivery on a goroutine; its work signals on
// ran, and its caller's error arrives on the returned channel.
func receiveAsync(in *inbox.Inbox, ran chan<- struct{}) <-chan error {
	answered := make(chan error, 1)
	go func() {
		_, err := in.Receive(context.Background(), delivery(uuid.New()), func(context.Context, *inbox.Work) error {
			if ran != nil {
				ran <- struct{}{}
			}
			return nil
		})
		answered <- err
	}()
	return answered
}

func TestBatchesTakeTurns(t *testing.T) {
	t.Parallel()

	t.Run("a delivery waits while a batch is built, though a slot is free", func(t *testing.T) {
		t.Parallel()
		in, count := setup(t)
		in.PassAfter = time.Hour
		release := holdBatch(t, in)
		answered := receiveAsync(in, nil)
		waitPending(t, in, 1)
		if got := in.Running(); got != 1 {
			t.Errorf("got %d transactions while one batch is built, want 1 (of %d slots)", got, in.MaxInFlight)
		}
		release()
		if err := guard(t, answered, "the waiting delivery answered"); err != nil {
			t.Errorf("waiting delivery: %v", err)
		}
		if got := count(`SELECT count(*) FROM webhook_inbox`); got != 2 {
			t.Errorf("got %d deliveries recorded, want 2", got)
		}
	})

	// The next batch waits for the commit when commits are quicker than
	// builds, and when no slot is free.
	for _, tc := range []struct {
		name          string
		slots         int
		build, commit time.Duration
	}{
		{"when commits are quicker than builds the next batch waits for the commit", 2, time.Hour, time.Millisecond},
		{"no more transactions than MaxInFlight, though commits are slower", 1, time.Millisecond, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, releaseCommits, waiting := setupHeldCommits(t, tc.build, tc.commit)
			in := b.in
			in.MaxInFlight = tc.slots
			first := receiveAsync(in, nil)
			waitFor(t, "the first batch commits", func() bool { return waiting() == 1 })
			second := receiveAsync(in, nil)
			waitPending(t, in, 1)
			if got := in.Running(); got != 1 {
				t.Errorf("got %d transactions during a commit, want 1", got)
			}
			releaseCommits()
			for i, answered := range []<-chan error{first, second} {
				if err := guard(t, answered, "a delivery answered"); err != nil {
					t.Errorf("delivery %d: %v", i+1, err)
				}
			}
		})
	}

	t.Run("when commits are slower than builds the next batch is built during the commit", func(t *testing.T) {
		t.Parallel()
		b, releaseCommits, _ := setupHeldCommits(t, time.Millisecond, time.Hour)
		in := b.in
		releaseWork := holdBatch(t, in)
		ran := make(chan struct{}, 1)
		second := receiveAsync(in, ran)
		waitPending(t, in, 1)
		releaseWork() // the first batch commits, and hands the next its turn
		// Every commit waits for releaseCommits: the first has not committed.
		guard(t, ran, "the second delivery's work ran while the first batch committed")
		if commit, slow, failed := in.Passes(); commit < 1 || slow != 0 || failed != 0 {
			t.Errorf("got passes commit=%d slow=%d failed=%d, want the first's as it committed", commit, slow, failed)
		}
		if got := in.Running(); got != 2 {
			t.Errorf("got %d transactions, want 2: one committing, one built", got)
		}
		releaseCommits()
		if err := guard(t, second, "the second delivery answered"); err != nil {
			t.Errorf("second delivery: %v", err)
		}
		if got := b.count(`SELECT count(*) FROM webhook_inbox`); got != 2 {
			t.Errorf("got %d deliveries recorded, want 2", got)
		}
	})

	t.Run("a leader that passed its turn does not build beside the next builder", func(t *testing.T) {
		t.Parallel()
		b, releaseCommits, waiting := setupHeldCommits(t, time.Millisecond, time.Hour)
		in := b.in
		first := receiveAsync(in, nil)
		waitFor(t, "the first batch commits", func() bool { return waiting() == 1 })
		releaseWork := holdBatch(t, in) // the next builder, whose work waits
		releaseCommits()
		if err := guard(t, first, "the first delivery answered"); err != nil {
			t.Fatalf("first delivery: %v", err)
		}
		waitFor(t, "the first leader gave up its slot", func() bool { return in.Running() == 1 })
		third := receiveAsync(in, nil)
		waitPending(t, in, 1)
		if got := in.Running(); got != 1 {
			t.Errorf("got %d transactions while one batch is built, want 1", got)
		}
		releaseWork()
		if err := guard(t, third, "the third delivery answered"); err != nil {
			t.Errorf("third delivery: %v", err)
		}
	})

	t.Run("a batch slower than PassAfter lets the next start beside it", func(t *testing.T) {
		t.Parallel()
		in, _ := setup(t)
		in.PassAfter = time.Millisecond
		releaseWork := holdBatch(t, in) // its work waits, as on a lock
		// No clock is read: the delivery is answered only if the timer
		// passed the turn, whenever it fired.
		if err := guard(t, receiveAsync(in, nil), "a delivery answered beside the waiting batch"); err != nil {
			t.Errorf("delivery: %v", err)
		}
		if _, slow, _ := in.Passes(); slow < 1 {
			t.Errorf("got %d slow passes, want the waiting batch's", slow)
		}
		releaseWork()
	})

	// A batch that fails runs again in parts: without the failing work, then
	// that alone (its work failed), or each delivery alone (anything else
	// failed, here the inbox's CHECK on a delivery). New deliveries need not
	// wait for the parts.
	for _, tc := range []struct {
		name string
		bad  inbox.Delivery
	}{
		{"a batch whose work failed lets the next start while it runs again in parts", delivery(uuid.New())},
		{"a batch the inbox refused lets the next start while it runs again in parts",
			inbox.Delivery{ID: uuid.New(), Kind: "event", Name: "", Op: "INSERT"}}, // the name's CHECK refuses it
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in, _ := setup(t)
			in.PassAfter = time.Hour
			in.SetAverages(time.Hour, 0) // no pass as a part commits
			releaseFirst := holdBatch(t, in)
			alone, unblock := make(chan struct{}, 1), make(chan struct{})
			var once sync.Once
			unblockAll := func() { once.Do(func() { close(unblock) }) }
			t.Cleanup(unblockAll)
			var calls atomic.Int32
			go func() {
				_, _ = in.Receive(context.Background(), delivery(uuid.New()), func(context.Context, *inbox.Work) error {
					if calls.Add(1) == 1 && tc.bad.Name != "" {
						return nil // in the batch, before the bad work fails it
					}
					alone <- struct{}{}
					<-unblock // run again, it waits, as on a lock
					return nil
				})
			}()
			waitPending(t, in, 1)
			refused := make(chan error, 1)
			go func() {
				_, err := in.Receive(context.Background(), tc.bad, func(context.Context, *inbox.Work) error {
					return errors.New("refused in its batch")
				})
				refused <- err
			}()
			waitPending(t, in, 2)
			releaseFirst()
			guard(t, alone, "a part of the failed batch runs again and waits")
			if err := guard(t, receiveAsync(in, nil), "a new delivery answered while a part waits"); err != nil {
				t.Errorf("new delivery: %v", err)
			}
			if commit, slow, failed := in.Passes(); commit != 0 || slow != 0 || failed != 1 {
				t.Errorf("got passes commit=%d slow=%d failed=%d, want the failed batch's", commit, slow, failed)
			}
			unblockAll()
			if err := guard(t, refused, "the bad delivery answered"); err == nil {
				t.Error("bad delivery: got no error, want one")
			}
		})
	}

	t.Run("builds and commits are measured", func(t *testing.T) {
		t.Parallel()
		in, _ := setup(t)
		in.PassAfter = time.Hour // a batch slower than PassAfter (a busy machine) is left out of the build average
		if build, commit := in.Averages(); build != 0 || commit != 0 {
			t.Fatalf("a new inbox: got averages %v and %v, want none", build, commit)
		}
		if err := guard(t, receiveAsync(in, nil), "a delivery answered"); err != nil {
			t.Fatal(err)
		}
		if build, commit := in.Averages(); build <= 0 || commit <= 0 {
			t.Errorf("after a delivery: got averages %v to build and %v to commit, want both measured", build, commit)
		}
	})
}
