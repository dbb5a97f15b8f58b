// Package benchdb gives benchmark programs a migrated, durable Postgres: the
// one in BENCH_DATABASE_URL, or a private cluster (fsync and
// synchronous_commit on) started in a temp dir and removed afterwards.
package benchdb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/bench/wrk"
	"github.com/shala-edu/shala/internal/pgcluster"
	"github.com/shala-edu/shala/internal/schema"
	"github.com/shala-edu/shala/migrations"
)

// Open returns a pool of maxConns on a migrated database and a function that
// closes it and stops the cluster it started, if any.
func Open(ctx context.Context, maxConns int32) (*pgxpool.Pool, func(), error) {
	cleanup := func() {}
	url := os.Getenv("BENCH_DATABASE_URL")
	if url == "" {
		dir, err := os.MkdirTemp("", "shala-bench-")
		if err != nil {
			return nil, nil, err
		}
		if err := pgcluster.PrepareDir(dir); err != nil {
			return nil, nil, err
		}
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "data"), Durable: true,
			Settings: map[string]string{"shared_buffers": "256MB", "max_wal_size": "4GB", "min_wal_size": "1GB",
				"track_wal_io_timing": "on"}}) // for WALSyncs
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		cleanup = func() { c.Stop(); os.RemoveAll(dir) }
		url = c.URL("postgres")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	if _, err := schema.Migrate(ctx, pool, migrations.Default(), slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		pool.Close()
		cleanup()
		return nil, nil, err
	}
	if os.Getenv("BENCH_DATABASE_URL") == "" {
		if err := prewarmWAL(ctx, pool, 768<<20); err != nil {
			pool.Close()
			cleanup()
			return nil, nil, err
		}
	}
	return pool, func() { pool.Close(); cleanup() }, nil
}

// prewarmWAL writes about n bytes of WAL and checkpoints, so that the
// cluster has that many WAL segments to recycle, as one that has been
// running for a while does. A fresh cluster instead creates each next
// 16 MB segment while a commit waits for it (zero-filled and fsynced,
// holding the WAL write lock): tens of milliseconds for every commit in
// flight, ten times in a 10-second run — a stall production never sees and
// a p99 that would measure the disk, not shala.
//
// The WAL is written as logical-decoding messages, which are WAL records
// and nothing else: no table to fill, write back and drop, so the disk
// writes half as much before the measurements start.
func prewarmWAL(ctx context.Context, pool *pgxpool.Pool, n int64) error {
	const msg = 1 << 20
	if _, err := pool.Exec(ctx, `SELECT pg_logical_emit_message(false, 'bench-prewarm', repeat('x', $1))
		FROM generate_series(1, $2)`, msg, n/msg); err != nil {
		return fmt.Errorf("prewarm WAL: %w", err)
	}
	if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return fmt.Errorf("prewarm WAL: %w", err)
	}
	return nil
}

// WALSyncs is how many times Postgres has flushed its WAL to disk and the
// time those flushes took (pg_stat_wal; the time needs track_wal_io_timing,
// on in the cluster Open starts), or why it cannot say. A backend holds its
// statistics for a while before it publishes them, so first every idle
// connection of pool is made to publish its own.
func WALSyncs(ctx context.Context, pool *pgxpool.Pool) (n int64, took time.Duration, err error) {
	for _, c := range pool.AcquireAllIdle(ctx) {
		// The flush happens as the statement ends, before its answer.
		_, ferr := c.Exec(ctx, "SELECT pg_stat_force_next_flush()")
		c.Release()
		if ferr != nil {
			return 0, 0, ferr
		}
	}
	var ms float64
	var timing string
	if err := pool.QueryRow(ctx, `SELECT wal_sync, wal_sync_time, current_setting('track_wal_io_timing') FROM pg_stat_wal`).Scan(&n, &ms, &timing); err != nil {
		return 0, 0, err
	}
	if timing != "on" {
		return 0, 0, errors.New("track_wal_io_timing off")
	}
	return n, time.Duration(ms * float64(time.Millisecond)), nil
}

// WALFiles is how many segment files pg_wal holds: a count that grows
// while a run creates segments instead of recycling them.
func WALFiles(ctx context.Context, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// Ceiling is the machine's rate of durable one-row INSERT transactions and
// their latency: the reference a webhook's acknowledgements are held to.
type Ceiling struct {
	Rate float64 // transactions a second
	// P50 and P99 summarise the commits as wrk summarises the requests it
	// measures (wrk.Correct), so they compare with a webhook's figures from
	// wrk; RawP99 is the plain 99th percentile of the commits.
	P50, P99, RawP99 time.Duration
	Slow             int // commits that took longer than InsertCeiling's slow
}

// InsertCeiling measures, for d, n clients each committing one durable
// one-row INSERT per transaction in a loop: the rate and the latency of
// each commit, and how many took longer than slow. Each client's
// connection is opened and its statement run once before the clock starts:
// wrk does not count its connects either.
func InsertCeiling(ctx context.Context, pool *pgxpool.Pool, n int, d, slow time.Duration) (Ceiling, error) {
	if _, err := pool.Exec(ctx, `DROP TABLE IF EXISTS bench_ceiling; CREATE TABLE bench_ceiling (id bigserial PRIMARY KEY, v text NOT NULL)`); err != nil {
		return Ceiling{}, err
	}
	if err := warm(ctx, pool, n); err != nil {
		return Ceiling{}, err
	}
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	lat := make([][]time.Duration, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t := time.Now()
				if _, err := pool.Exec(ctx, `INSERT INTO bench_ceiling (v) VALUES ($1)`, "x"); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = append(lat[i], time.Since(t))
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return Ceiling{}, err
	}
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return Ceiling{}, errors.New("ceiling: no transaction committed")
	}
	corrected := wrk.Correct(all, n, elapsed)
	slices.Sort(all)
	return Ceiling{Rate: float64(len(all)) / elapsed.Seconds(), P50: wrk.Percentile(corrected, 0.50),
		P99: wrk.Percentile(corrected, 0.99), RawP99: wrk.Percentile(all, 0.99), Slow: wrk.Over(all, slow)}, nil
}

// warm opens n connections at once and runs the ceiling's statement once on
// each, so the measurement starts with them ready.
func warm(ctx context.Context, pool *pgxpool.Pool, n int) error {
	conns := make([]*pgxpool.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("ceiling: open connection: %w", err)
		}
		conns = append(conns, c)
		if _, err := c.Exec(ctx, `INSERT INTO bench_ceiling (v) VALUES ($1)`, "x"); err != nil {
			return fmt.Errorf("ceiling: warm connection: %w", err)
		}
	}
	return nil
}
