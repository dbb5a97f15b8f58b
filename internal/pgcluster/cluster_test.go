package pgcluster_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/pgcluster"
)

// syncBuffer is a bytes.Buffer the server's output goroutine and the test
// can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tempDir is a directory the postgres user can enter when the tests run as
// root (t.TempDir's parent is private to us).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "shala-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := pgcluster.PrepareDir(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFailedStatementsLeaveNoValuesInTheServerLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logs syncBuffer
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tempDir(t), "data"), Log: &logs})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	if err != nil {
		c.Stop()
		t.Fatal(err)
	}
	const secret = "9816000042"
	for _, sql := range []string{
		`CREATE TABLE msg (phone text UNIQUE CHECK (char_length(phone) < 12), body text)`,
		`INSERT INTO msg VALUES ('+91` + secret + `0', 'x')`,   // check violation, values inline (as Hasura may send them)
		`INSERT INTO msg VALUES ('` + secret + `', '<data>…')`, // ok
		`INSERT INTO msg VALUES ('` + secret + `', 'again')`,   // unique violation: DETAIL names the key
	} {
		_, _ = conn.Exec(ctx, sql)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO msg VALUES ($1, $2)`, "+91"+secret+"9", "<data>"); err == nil {
		t.Fatal("want the parameterised insert to fail the check")
	}
	_ = conn.Close(ctx)
	c.Stop()

	got := logs.String()
	if !strings.Contains(got, "violates check constraint") || !strings.Contains(got, "violates unique constraint") {
		t.Fatalf("the log should still name the failed constraints; got:\n%s", got)
	}
	for _, leak := range []string{secret, "Failing row", "DETAIL", "STATEMENT", "<data>"} {
		if strings.Contains(got, leak) {
			t.Errorf("server log contains %q; want errors without values:\n%s", leak, got)
		}
	}
}

func TestStartRefusesAServerItDidNotStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(tempDir(t), "data")
	first, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Stop()

	t.Run("same data directory", func(t *testing.T) {
		_, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Port: first.Port()})
		var running *pgcluster.RunningError
		if !errors.As(err, &running) {
			t.Fatalf("got %v, want a RunningError", err)
		}
		if running.PID == 0 || !strings.Contains(err.Error(), "already running") {
			t.Errorf("got %v (pid %d), want the running server's pid", err, running.PID)
		}
	})
	t.Run("same port, other directory", func(t *testing.T) {
		_, err := pgcluster.Start(ctx, pgcluster.Options{Dir: filepath.Join(tempDir(t), "data"), Port: first.Port()})
		if err == nil || !strings.Contains(err.Error(), "another PostgreSQL server") {
			t.Fatalf("got %v, want the port named as taken by another server", err)
		}
	})
	// The first server is untouched.
	conn, err := pgx.Connect(ctx, first.URL("postgres"))
	if err != nil {
		t.Fatalf("first server: %v", err)
	}
	_ = conn.Close(ctx)
}
