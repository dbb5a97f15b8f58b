package benchdb

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/pgcluster"
	"github.com/shala-edu/shala/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestProbeDisk(t *testing.T) {
	run := func(t *testing.T, slow time.Duration) (DiskProbe, string) {
		t.Helper()
		dir := t.TempDir()
		stop, err := ProbeDisk(dir, time.Millisecond, slow)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond) // the probe's own pace: some syncs to count
		p, err := stop()
		if err != nil {
			t.Fatal(err)
		}
		return p, dir
	}

	t.Run("CountsEverySyncAndRemovesItsFile", func(t *testing.T) {
		p, dir := run(t, time.Hour)
		if p.Syncs == 0 {
			t.Fatal("got 0 syncs, want some in 30 ms at one a millisecond")
		}
		if p.P50 <= 0 || p.P50 > p.Max {
			t.Errorf("got p50 %v and max %v, want 0 < p50 <= max", p.P50, p.Max)
		}
		if p.Slow != 0 || p.Beyond != 0 {
			t.Errorf("got %d slow syncs (%v beyond) under a one-hour line, want none", p.Slow, p.Beyond)
		}
		left, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) != 0 {
			t.Errorf("got %d files left in the probe's dir, want none", len(left))
		}
	})

	t.Run("SlowSyncsAddUpPastTheLine", func(t *testing.T) {
		p, _ := run(t, 0)
		if p.Slow != p.Syncs {
			t.Errorf("got %d of %d syncs slow over a zero line, want all", p.Slow, p.Syncs)
		}
		// Past a zero line is the whole of each sync: at least the
		// longest, and at least half of them at p50 or more.
		if p.Beyond < p.Max || p.Beyond < time.Duration(p.Syncs)*p.P50/2 {
			t.Errorf("got %v beyond for %d syncs (p50 %v, max %v), want their sum", p.Beyond, p.Syncs, p.P50, p.Max)
		}
	})
}

func TestProbeDirIsBesideTheDataDirectory(t *testing.T) {
	pool := pgtest.New(t)
	var data string
	if err := pool.QueryRow(t.Context(), "SHOW data_directory").Scan(&data); err != nil {
		t.Fatal(err)
	}
	if got, want := ProbeDir(t.Context(), pool), filepath.Dir(data); got != want {
		t.Errorf("got %q, want %q, the data directory's parent", got, want)
	}
}

func TestWALSyncs(t *testing.T) {
	t.Run("TimingOffSaysSo", func(t *testing.T) {
		if _, _, err := WALSyncs(t.Context(), pgtest.New(t)); err == nil || err.Error() != "track_wal_io_timing off" {
			t.Errorf("got error %v with track_wal_io_timing off (the test cluster's), want that said", err)
		}
	})
	t.Run("CountsACommitsFlush", func(t *testing.T) {
		// The test cluster does not fsync: this needs a durable one.
		// The server user must enter t.TempDir's 0700 parent.
		dir := t.TempDir()
		if err := os.Chmod(filepath.Dir(dir), 0o711); err != nil {
			t.Fatal(err)
		}
		if err := pgcluster.PrepareDir(dir); err != nil {
			t.Fatal(err)
		}
		c, err := pgcluster.Start(t.Context(), pgcluster.Options{Dir: filepath.Join(dir, "data"), Durable: true,
			Settings: map[string]string{"track_wal_io_timing": "on"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
		cfg, err := pgxpool.ParseConfig(c.URL("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.MaxConns = 1 // one backend: its statistics flush is the one forced below
		pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		n0, _, err := WALSyncs(t.Context(), pool)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(t.Context(), "CREATE TABLE walsync_probe (v int)"); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(t.Context(), "INSERT INTO walsync_probe VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		// WALSyncs itself makes the backend publish what it holds.
		n, took, err := WALSyncs(t.Context(), pool)
		if err != nil || n <= n0 || took <= 0 {
			t.Errorf("got %d syncs (%v, %v) after two commits, want more than %d and some time", n, took, err, n0)
		}
	})
}
