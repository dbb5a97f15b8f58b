// Package pgtest gives each test its own real, migrated PostgreSQL database.
//
// When TEST_DATABASE_URL is unset, the first test in a package starts a
// throwaway cluster (internal/pgcluster) in a temp dir; the schema is
// migrated once into a template database named after the migrations'
// checksums, and every test gets a clone of it (CREATE DATABASE … TEMPLATE,
// tens of milliseconds) that is dropped when the test ends. Packages that use
// it call Main from TestMain so the cluster is stopped and removed.
package pgtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/shala-edu/shala/internal/pgcluster"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/schema"
	"github.com/shala-edu/shala/migrations"
)

type server struct {
	baseURL  string // connection string to the maintenance database
	template string
	cluster  *pgcluster.Cluster
	tmpDir   string
	admin    *pgxpool.Pool
}

var (
	once    sync.Once
	srv     *server
	srvErr  error
	cloneMu sync.Mutex
)

// Main runs the package's tests, stops the cluster this package started,
// if any, and then fails the run if the tests left goroutines running
// (goleak): a River client, a pool or a server not stopped. Use it as:
// func TestMain(m *testing.M) { pgtest.Main(m) }. ignore names more
// functions whose goroutines live for the process by design.
//
// Tests write only under t.TempDir(): a .data directory that appears in the
// package's directory during the run (a serve or dev started from the
// source tree with SHALA_DATA_DIR, SHALA_TUS_DIR or the blob bucket left
// at their defaults) fails the run too, and is removed.
func Main(m *testing.M, ignore ...string) {
	_, err := os.Stat(".data")
	hadData := err == nil
	code := m.Run()
	if _, err := os.Stat(".data"); err == nil && !hadData {
		wd, err := os.Getwd()
		if err != nil {
			wd = "."
		}
		fmt.Fprintf(os.Stderr, "pgtest: the tests wrote %s/.data into the source tree (removed): give every process a test starts its directories under t.TempDir()\n", wd)
		if err := os.RemoveAll(".data"); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: remove .data: %v\n", err)
		}
		code = 1
	}
	if srv != nil {
		srv.admin.Close()
		if srv.cluster != nil {
			srv.cluster.Stop()
			if err := os.RemoveAll(srv.tmpDir); err != nil {
				fmt.Fprintf(os.Stderr, "pgtest: remove %s: %v\n", srv.tmpDir, err)
			}
		}
	}
	if code == 0 {
		// By design, not leaks: pgcluster keeps the thread that started
		// postgres for good (its Pdeathsig is tied to that thread), and
		// tusd gives each request a context that ends a while after the
		// request's own (never, for a test's handler call with a
		// background context).
		opts := []goleak.Option{
			goleak.IgnoreTopFunction("github.com/shala-edu/shala/internal/pgcluster.launch.func1"),
			goleak.IgnoreTopFunction("github.com/tus/tusd/v2/pkg/handler.newDelayedContext.func1"),
		}
		for _, f := range ignore {
			opts = append(opts, goleak.IgnoreTopFunction(f))
		}
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: goroutines left running after the tests:\n%v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

func start() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &server{}
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		s.baseURL = u
	} else {
		dir, err := os.MkdirTemp("", "shala-pgtest-")
		if err != nil {
			return nil, err
		}
		if err := pgcluster.PrepareDir(dir); err != nil {
			return nil, err
		}
		c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(dir, "data")})
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.cluster, s.tmpDir, s.baseURL = c, dir, c.URL("postgres")
	}
	admin, err := pgxpool.New(ctx, s.baseURL)
	if err != nil {
		return nil, err
	}
	s.admin = admin
	if err := s.ensureTemplate(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// ensureTemplate creates and migrates the template database unless a
// template for exactly these migrations exists already (shared servers).
func (s *server) ensureTemplate(ctx context.Context) error {
	ms, err := schema.Load(migrations.Default())
	if err != nil {
		return err
	}
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%d:%s\n", m.Version, m.Checksum)
	}
	s.template = "shala_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16]

	conn, err := s.admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// Several test binaries may share one TEST_DATABASE_URL server.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7411)"); err != nil {
		return err
	}
	defer func() { _, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock(7411)") }()

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)",
		s.template).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	ident := pgx.Identifier{s.template}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, withDatabase(s.baseURL, s.template))
	if err != nil {
		return err
	}
	_, err = schema.Migrate(ctx, pool, migrations.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	pool.Close()
	if err != nil {
		return fmt.Errorf("migrate template: %w", err)
	}
	_, err = conn.Exec(ctx, "ALTER DATABASE "+ident+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
	return err
}

// URL creates a fresh database for t, cloned from the migrated template, and
// returns its connection string. The database is dropped when t ends.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { srv, srvErr = start() })
	if srvErr != nil {
		t.Fatalf("pgtest: %v", srvErr)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ident := pgx.Identifier{name}.Sanitize()
	ctx := context.Background()
	cloneMu.Lock()
	_, err := srv.admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE "+pgx.Identifier{srv.template}.Sanitize())
	cloneMu.Unlock()
	if err != nil {
		t.Fatalf("pgtest: clone template: %v", err)
	}
	t.Cleanup(func() {
		if _, err := srv.admin.Exec(context.Background(), "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	return withDatabase(srv.baseURL, name)
}

// New returns a pool on a fresh migrated database for t (see URL); the pool
// is closed when t ends. Every statement's arguments are checked for nil
// Go slices and maps (postgres.NilArgs): t fails, when it ends, for each
// one that reached the database.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(URL(t))
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	var (
		mu    sync.Mutex
		found []string
	)
	cfg.ConnConfig.Tracer = postgres.NilArgs{Report: func(sql string, param int, goType string) {
		mu.Lock()
		defer mu.Unlock()
		if len(found) < 20 {
			found = append(found, fmt.Sprintf("$%d is a nil %s (write an empty one, or an untyped nil for NULL) in: %s", param, goType, sql))
		}
	}}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		pool.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, f := range found {
			t.Errorf("pgtest: nil Go slice or map sent to Postgres: %s", f)
		}
	})
	return pool
}

func withDatabase(base, db string) string {
	u, err := url.Parse(base)
	if err != nil {
		panic(fmt.Sprintf("pgtest: TEST_DATABASE_URL is not a URL: %v", err))
	}
	u.Path = "/" + db
	return u.String()
}
