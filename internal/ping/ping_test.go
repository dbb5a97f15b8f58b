package ping_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/queue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestReconcileIsNotHeldBackByPingsAlreadyQueued: the sweep takes the pings
// it swept least recently first, so a thousand pings whose pong jobs are
// still queued (or failing and retried) never hold back one that has no
// job at all.
func TestReconcileIsNotHeldBackByPingsAlreadyQueued(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	q, err := queue.New(pool, nil, queue.Config{}) // no worker: the jobs stay queued
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := pool.QueryRow(ctx, query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// A sweep's worth of pings without a pong, older than any other, and
	// one answered.
	if _, err := pool.Exec(ctx, `INSERT INTO ping (message, created_at)
		SELECT 'old', now() - interval '2 hours' - make_interval(secs => g) FROM generate_series(1, 1000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `WITH p AS (INSERT INTO ping (message, created_at) VALUES ('answered', now() - interval '3 hours') RETURNING id)
		INSERT INTO pong (ping_id, job_id) SELECT id, 0 FROM p`); err != nil {
		t.Fatal(err)
	}
	if n, err := ping.Reconcile(ctx, pool, q, ping.ReconcileAfter); err != nil || n != 1000 {
		t.Fatalf("first sweep: %d jobs, %v; want 1000", n, err)
	}
	var late uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO ping (message, created_at) VALUES ('late', now() - interval '1 hour') RETURNING id`).Scan(&late); err != nil {
		t.Fatal(err)
	}
	if n, err := ping.Reconcile(ctx, pool, q, ping.ReconcileAfter); err != nil || n != 1 {
		t.Fatalf("second sweep: %d jobs, %v; want the late ping's", n, err)
	}
	if n := count(`SELECT count(*) FROM river_job WHERE kind = 'ping.pong' AND args ->> 'ping_id' = $1`, late.String()); n != 1 {
		t.Errorf("%d jobs for the late ping, want 1", n)
	}
	if n, err := ping.Reconcile(ctx, pool, q, ping.ReconcileAfter); err != nil || n != 0 {
		t.Errorf("third sweep: %d jobs, %v; want none (all queued)", n, err)
	}
	if n := count(`SELECT count(*) FROM river_job WHERE kind = 'ping.pong'`); n != 1001 {
		t.Errorf("%d pong jobs, want one per unanswered ping (1001)", n)
	}
}
