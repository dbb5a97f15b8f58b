package collector_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type fixture struct {
	t    *testing.T
	pool *pgxpool.Pool
}

func setup(t *testing.T) *fixture {
	t.Helper()
	return &fixture{t: t, pool: pgtest.New(t)}
}

func (f *fixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestCollectorTokens(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	c := collector.NewStore(f.pool)
	col, token, err := c.Create(ctx, "सीमा", "+91 94180 12345", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if len(token) != 43 || col.Phone != "+919418012345" {
		t.Errorf("token %q phone %q", token, col.Phone)
	}
	if n := f.count(`SELECT count(*) FROM collector WHERE token_hint = $1 AND position($2 in encode(token_hash, 'escape')) = 0`, token[:6], token); n != 1 {
		t.Error("token stored in clear")
	}
	if got, err := c.Authenticate(ctx, token); err != nil || got.ID != col.ID {
		t.Errorf("authenticate: %v", err)
	}
	if _, err := c.Authenticate(ctx, token[:42]+"x"); fault.KindOf(err) != fault.Unauthorized {
		t.Errorf("wrong token: %v", err)
	}
	if _, err := c.Revoke(ctx, col.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(ctx, token); fault.KindOf(err) != fault.Forbidden {
		t.Errorf("revoked token: %v", err)
	}
	if _, _, err := c.Create(ctx, "x", "0177-2658123", ""); fault.As(err).Field != "phone" {
		t.Errorf("landline: %v", err)
	}

}
