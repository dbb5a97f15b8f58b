package schema_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/schema"
	"github.com/shala-edu/shala/migrations"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestMigrateIsIdempotentOnTheTemplate(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	if err := schema.Status(ctx, pool, migrations.Default()); err != nil {
		t.Fatalf("Status on a migrated clone: %v", err)
	}
	res, err := schema.Migrate(ctx, pool, migrations.Default(), discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 0 || len(res.RiverVersions) != 0 {
		t.Errorf("rerun applied %d migrations and %d river versions, want none", len(res.Applied), len(res.RiverVersions))
	}
}

// Status never holds a connection while asking for another (River's
// check takes its own): on a one-connection pool it answers, where before
// it waited for ever for a second connection.
func TestStatusNeedsOneConnectionAtATime(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// A bound on the test, not on Status: waiting for ever fails it here.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := schema.Status(ctx, pool, migrations.Default()); err != nil {
		t.Fatalf("Status on a one-connection pool: %v", err)
	}
}

func TestMigrateAppliesInOrderAndReportsDrift(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"1900000000002_second/up.sql": {Data: []byte("INSERT INTO mig_test (step) VALUES ('second');")},
		"1900000000001_first/up.sql":  {Data: []byte("CREATE TABLE mig_test (step text); INSERT INTO mig_test VALUES ('first');")},
	}
	if err := schema.Status(ctx, pool, fsys); err == nil {
		t.Fatal("Status before migrating: got nil, want pending error")
	}
	res, err := schema.Migrate(ctx, pool, fsys, discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Applied) != 2 || res.Applied[0].Name != "first" {
		t.Fatalf("applied %+v, want first then second", res.Applied)
	}
	var steps []string
	rows, _ := pool.Query(ctx, "SELECT step FROM mig_test ORDER BY ctid")
	for rows.Next() {
		var s string
		_ = rows.Scan(&s)
		steps = append(steps, s)
	}
	if len(steps) != 2 || steps[0] != "first" || steps[1] != "second" {
		t.Errorf("rows %v, want [first second]", steps)
	}
	if err := schema.Status(ctx, pool, fsys); err != nil {
		t.Errorf("Status after migrating: %v", err)
	}

	fsys["1900000000001_first/up.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE mig_test (step text); -- edited")}
	if _, err := schema.Migrate(ctx, pool, fsys, discard); !errors.Is(err, schema.ErrDrift) {
		t.Errorf("Migrate after editing an applied file: got %v, want ErrDrift", err)
	}
	if err := schema.Status(ctx, pool, fsys); !errors.Is(err, schema.ErrDrift) {
		t.Errorf("Status after editing: got %v, want ErrDrift", err)
	}
}

func TestFailedMigrationLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	fsys := fstest.MapFS{
		"1900000000001_broken/up.sql": {Data: []byte("CREATE TABLE half (x int); SELECT no_such_function();")},
	}
	if _, err := schema.Migrate(ctx, pool, fsys, discard); err == nil {
		t.Fatal("got nil error for a broken migration")
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'half'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Error("table from the failed migration exists: the migration was not transactional")
	}
}

func TestLoadRejectsBadDirectoryNames(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"123_short", "1900000000001-dash", "1900000000001_Upper"} {
		_, err := schema.Load(fstest.MapFS{name + "/up.sql": {Data: []byte("SELECT 1")}})
		if err == nil {
			t.Errorf("Load(%q): got nil error", name)
		}
	}
}
