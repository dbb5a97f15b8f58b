package eventlog_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shala-edu/shala/internal/eventlog"
	"github.com/shala-edu/shala/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// now is the tests' clock: Hasura writes created_at in UTC.
var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type bundle struct {
	pool    *pgxpool.Pool
	reg     *prometheus.Registry
	cleaner *eventlog.Cleaner
}

// setup gives a database with Hasura's event tables and a cleaner keeping
// a week, two events per batch.
func setup(t *testing.T) *bundle {
	t.Helper()
	pool := pgtest.New(t)
	ddl, err := os.ReadFile("testdata/hdb_catalog.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(context.Background(), string(ddl)); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	return &bundle{pool: pool, reg: reg, cleaner: &eventlog.Cleaner{Pool: pool, Retention: 7 * 24 * time.Hour, Batch: 2,
		Now: func() time.Time { return now }, Metrics: eventlog.NewMetrics(reg)}}
}

// event inserts an event as Hasura records it, age old, with n invocation
// logs, and returns its id.
func (b *bundle) event(t *testing.T, age time.Duration, delivered, failed bool, invocations int) string {
	t.Helper()
	ctx := context.Background()
	at := now.Add(-age).Format("2006-01-02 15:04:05")
	var id string
	if err := b.pool.QueryRow(ctx, `INSERT INTO hdb_catalog.event_log (schema_name, table_name, trigger_name, payload, delivered, error, tries, created_at)
		VALUES ('public', 'sms_request', 'sms_request_created', '{"op": "INSERT"}', $1, $2, 1, $3::timestamp) RETURNING id`,
		delivered, failed, at).Scan(&id); err != nil {
		t.Fatal(err)
	}
	for range invocations {
		if _, err := b.pool.Exec(ctx, `INSERT INTO hdb_catalog.event_invocation_logs (trigger_name, event_id, status, request, response, created_at)
			VALUES ('sms_request_created', $1, 200, '{}', '{}', $2::timestamp)`, id, at); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func (b *bundle) exists(t *testing.T, id string) bool {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM hdb_catalog.event_log WHERE id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// index reports shala's index on event_log: absent, valid or invalid.
func (b *bundle) index(t *testing.T) string {
	t.Helper()
	var state string
	if err := b.pool.QueryRow(context.Background(), `SELECT coalesce((SELECT CASE WHEN indisvalid THEN 'valid' ELSE 'invalid' END
		FROM pg_index WHERE indexrelid = to_regclass('hdb_catalog.shala_event_log_finished')), 'absent')`).Scan(&state); err != nil {
		t.Fatal(err)
	}
	return state
}

func TestClean(t *testing.T) {
	t.Parallel()

	t.Run("deletes old finished events with their logs, in batches, keeps the rest", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const week = 7 * 24 * time.Hour
		var gone, kept []string
		for range 3 { // more than one batch of two
			gone = append(gone, b.event(t, week+time.Hour, true, false, 2))
		}
		gone = append(gone, b.event(t, 30*24*time.Hour, false, true, 3)) // failed for good
		kept = append(kept,
			b.event(t, week-time.Hour, true, false, 1),   // delivered, not old enough
			b.event(t, 30*24*time.Hour, false, false, 1), // old but still being retried
		)
		res, err := b.cleaner.Clean(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res, (eventlog.Result{Events: 4, Invocations: 9}); got != want {
			t.Errorf("Clean = %+v, want %+v", got, want)
		}
		for _, id := range gone {
			if b.exists(t, id) {
				t.Errorf("event %s: kept, want deleted", id)
			}
		}
		for _, id := range kept {
			if !b.exists(t, id) {
				t.Errorf("event %s: deleted, want kept", id)
			}
		}
		var logs int
		if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM hdb_catalog.event_invocation_logs`).Scan(&logs); err != nil {
			t.Fatal(err)
		}
		if got, want := logs, 2; got != want {
			t.Errorf("%d invocation logs left, want %d (those of the kept events)", got, want)
		}
		want := `
# HELP shala_hasura_event_log_deleted_total Rows of Hasura's event log deleted by shala's retention, by table (event_log, event_invocation_logs).
# TYPE shala_hasura_event_log_deleted_total counter
shala_hasura_event_log_deleted_total{table="event_invocation_logs"} 9
shala_hasura_event_log_deleted_total{table="event_log"} 4
`
		if err := testutil.GatherAndCompare(b.reg, strings.NewReader(want), "shala_hasura_event_log_deleted_total"); err != nil {
			t.Error(err)
		}
	})

	t.Run("finds old events through its own index", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, err := b.cleaner.Clean(context.Background()); err != nil {
			t.Fatal(err)
		}
		var def string
		if err := b.pool.QueryRow(context.Background(), `SELECT indexdef FROM pg_indexes
			WHERE schemaname = 'hdb_catalog' AND indexname = 'shala_event_log_finished'`).Scan(&def); err != nil {
			t.Fatalf("no index shala_event_log_finished: %v", err)
		}
		if _, err := b.cleaner.Clean(context.Background()); err != nil {
			t.Fatalf("second run, index in place: %v", err)
		}
	})

	// A concurrent build that was interrupted (the job timed out on a
	// table grown for months, the process was killed) leaves an invalid
	// index under the name: IF NOT EXISTS then kept it, never used, for
	// good. The next run builds it again.
	t.Run("an index an interrupted build left invalid is built again", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		b.event(t, 30*24*time.Hour, true, false, 0)
		b.event(t, 30*24*time.Hour, true, false, 0)
		// A unique build over duplicates fails the way an interrupted one
		// does: the index stays, marked invalid.
		if _, err := b.pool.Exec(ctx, `CREATE UNIQUE INDEX CONCURRENTLY shala_event_log_finished
			ON hdb_catalog.event_log (trigger_name) WHERE delivered OR error`); err == nil {
			t.Fatal("the broken build succeeded; the test needs duplicates")
		}
		valid := func() bool {
			t.Helper()
			var ok bool
			if err := b.pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i
				WHERE i.indexrelid = 'hdb_catalog.shala_event_log_finished'::regclass`).Scan(&ok); err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if valid() {
			t.Fatal("the broken build left a valid index")
		}
		if _, err := b.cleaner.Clean(ctx); err != nil {
			t.Fatal(err)
		}
		if !valid() {
			t.Error("after a cleanup the index is still invalid, want it built again")
		}
	})

	// The build waits for every transaction older than it (a backup, a
	// long report): one that cannot finish within its budget is dropped
	// again — no invalid index left behind — and the cleanup goes on
	// without it.
	t.Run("an index that cannot be built in time is not left invalid", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx := context.Background()
		old := b.event(t, 30*24*time.Hour, true, false, 1)
		long, err := b.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer long.Rollback(ctx)
		if _, err := long.Exec(ctx, `SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`); err != nil {
			t.Fatal(err)
		}
		if _, err := long.Exec(ctx, `SELECT 1`); err != nil { // holds its snapshot
			t.Fatal(err)
		}
		b.cleaner.IndexBudget = 200 * time.Millisecond
		if _, err := b.cleaner.Clean(ctx); err != nil {
			t.Fatalf("cleanup while the index cannot be built: %v", err)
		}
		if got := b.index(t); got != "absent" {
			t.Errorf("index after a build that ran out of time: %s, want absent", got)
		}
		if b.exists(t, old) {
			t.Error("the old event was kept: the cleanup did not go on without the index")
		}
		if err := long.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := b.cleaner.Clean(ctx); err != nil {
			t.Fatal(err)
		}
		if got := b.index(t); got != "valid" {
			t.Errorf("index once nothing holds it up: %s, want valid", got)
		}
	})

	t.Run("without Hasura's tables does nothing", func(t *testing.T) {
		t.Parallel()
		c := &eventlog.Cleaner{Pool: pgtest.New(t), Retention: time.Hour}
		if res, err := c.Clean(context.Background()); err != nil || res != (eventlog.Result{}) {
			t.Errorf("Clean = %+v, %v; want nothing and no error", res, err)
		}
	})

	t.Run("a retention of 0 keeps everything", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		id := b.event(t, 365*24*time.Hour, true, false, 1)
		b.cleaner.Retention = 0
		if _, err := b.cleaner.Clean(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !b.exists(t, id) {
			t.Error("retention 0 deleted an event")
		}
	})
}
