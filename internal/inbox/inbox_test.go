package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/queue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func setup(t *testing.T) (*inbox.Inbox, func(q string, args ...any) int) {
	t.Helper()
	b := setupBundle(t)
	return b.in, b.count
}

// bundle is what a test of the inbox needs beyond the inbox itself: its
// database, to reach it as another replica or to change its tables.
type bundle struct {
	in    *inbox.Inbox
	pool  *pgxpool.Pool
	queue *queue.Client
	count func(q string, args ...any) int
}

func setupBundle(t *testing.T) *bundle {
	t.Helper()
	pool := pgtest.New(t)
	workers := river.NewWorkers()
	river.AddWorker(workers, &ping.PongWorker{Pool: pool})
	q, err := queue.New(pool, workers, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	count := func(query string, args ...any) int {
		var n int
		if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	return &bundle{in: inbox.New(pool, q), pool: pool, queue: q, count: count}
}

func delivery(id uuid.UUID) inbox.Delivery {
	return inbox.Delivery{ID: id, Kind: "event", Name: "ping_created", Op: "INSERT"}
}

// TestManyConcurrentDeliveriesShareTransactionsCorrectly sends 200
// deliveries at once — 50 events, each delivered 4 times — so that they are
// grouped into batches holding copies of the same event: each event must
// run its work exactly once and every other copy be a duplicate.
func TestManyConcurrentDeliveriesShareTransactionsCorrectly(t *testing.T) {
	t.Parallel()
	in, count := setup(t)
	in.MaxInFlight = 1 // force batching
	events := make([]uuid.UUID, 50)
	for i := range events {
		events[i] = uuid.New()
	}
	var mu sync.Mutex
	ran := map[uuid.UUID]int{}
	dups := 0
	var wg sync.WaitGroup
	for copyNo := range 4 {
		for _, id := range events {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dup, err := in.Receive(context.Background(), delivery(id), func(ctx context.Context, w *inbox.Work) error {
					mu.Lock()
					ran[id]++
					mu.Unlock()
					w.Enqueue(ping.PongArgs{PingID: id}, nil)
					return nil
				})
				if err != nil {
					t.Errorf("copy %d of %s: %v", copyNo, id, err)
				}
				mu.Lock()
				if dup {
					dups++
				}
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	for _, id := range events {
		if ran[id] != 1 {
			t.Errorf("event %s: work ran %d times, want 1", id, ran[id])
		}
	}
	if dups != 150 {
		t.Errorf("%d duplicates, want 150", dups)
	}
	if n := count("SELECT count(*) FROM webhook_inbox"); n != 50 {
		t.Errorf("%d inbox rows, want 50", n)
	}
	if n := count("SELECT count(*) FROM river_job WHERE kind = 'ping.pong'"); n != 50 {
		t.Errorf("%d jobs, want 50", n)
	}
}

// TestOneFailingDeliveryDoesNotFailItsBatch: deliveries batched with one
// whose work fails still commit; the failing one gets its own error and
// leaves nothing behind, so Hasura's retry can succeed later.
func TestOneFailingDeliveryDoesNotFailItsBatch(t *testing.T) {
	t.Parallel()
	in, count := setup(t)
	in.MaxInFlight = 1
	bad := uuid.New()
	boom := fault.Invalidf("event.data.new.message", "refused for the test")
	var wg sync.WaitGroup
	errs := make(map[uuid.UUID]error)
	var mu sync.Mutex
	ids := []uuid.UUID{uuid.New(), uuid.New(), bad, uuid.New(), uuid.New()}
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := in.Receive(context.Background(), delivery(id), func(ctx context.Context, w *inbox.Work) error {
				if id == bad {
					return boom
				}
				_, err := w.Tx.Exec(ctx, "INSERT INTO ping (id, message) VALUES ($1, 'x')", id)
				return err
			})
			mu.Lock()
			errs[id] = err
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == bad {
			if !errors.Is(errs[id], boom) {
				t.Errorf("failing delivery: got %v, want its own error", errs[id])
			}
			continue
		}
		if errs[id] != nil {
			t.Errorf("delivery %s failed with its batch: %v", id, errs[id])
		}
	}
	if n := count("SELECT count(*) FROM ping"); n != 4 {
		t.Errorf("%d pings written, want 4", n)
	}
	if n := count("SELECT count(*) FROM webhook_inbox WHERE event_id = $1", bad); n != 0 {
		t.Error("the failed delivery was recorded: its retry would be skipped as a duplicate")
	}
	// The retry of the failed delivery now succeeds.
	dup, err := in.Receive(context.Background(), delivery(bad), func(ctx context.Context, w *inbox.Work) error { return nil })
	if err != nil || dup {
		t.Errorf("retry: dup=%v err=%v, want recorded", dup, err)
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `INSERT INTO webhook_inbox (event_id, kind, name, received_at) VALUES
		($1, 'event', 'x', now() - interval '40 days'), ($2, 'event', 'x', now())`, uuid.New(), uuid.New()); err != nil {
		t.Fatal(err)
	}
	n, err := inbox.Prune(ctx, pool, inbox.Retention)
	if err != nil || n != 1 {
		t.Errorf("pruned %d (%v), want 1", n, err)
	}
}
