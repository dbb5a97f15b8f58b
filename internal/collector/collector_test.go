package collector_test

import (
	"context"
	"testing"
	"time"

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

// A token is checked once per AuthTTL: a revocation through this process
// takes effect at once, one through another replica within AuthTTL.
func TestAuthenticationIsCachedBriefly(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	here, elsewhere := collector.NewStore(f.pool), collector.NewStore(f.pool)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	collector.SetClock(here, func() time.Time { return now })
	col, token, err := here.Create(ctx, "सीमा", "9418012345", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := here.Authenticate(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := elsewhere.Revoke(ctx, col.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Authenticate(ctx, token); err != nil {
		t.Errorf("within AuthTTL of a revocation elsewhere: %v, want the cached collector", err)
	}
	now = now.Add(collector.AuthTTL)
	if _, err := here.Authenticate(ctx, token); fault.As(err).Code != collector.CodeTokenRevoked {
		t.Errorf("AuthTTL after a revocation elsewhere: %v, want TOKEN_REVOKED", err)
	}
	// Revoked through the same store: at once.
	other, token2, err := here.Create(ctx, "रीना", "9418012346", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := here.Authenticate(ctx, token2); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Revoke(ctx, other.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := here.Authenticate(ctx, token2); fault.As(err).Code != collector.CodeTokenRevoked {
		t.Errorf("revoked through the same store: %v, want TOKEN_REVOKED at once", err)
	}
}
