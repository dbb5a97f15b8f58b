package vault_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shala-edu/shala/internal/vault"
	"github.com/shala-edu/shala/internal/vault/vaulttest"
)

// TestMetrics: every call to Vault is counted by kind and outcome, through
// the real Vault client against a server speaking Vault's API.
func TestMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := vaulttest.New(t, "root-token")
	srv.Put("secret", "shala", map[string]any{"webhook_secret": "s3cret"})
	srv.CreateTransitKey("certificates")
	reg := prometheus.NewRegistry()
	c, err := vault.New(srv.URL, "root-token")
	if err != nil {
		t.Fatal(err)
	}
	c = c.WithMetrics(vault.NewMetrics(reg))

	if _, err := c.ReadKV(ctx, "secret", "shala"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadKV(ctx, "secret", "nowhere"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("ReadKV of a missing path = %v, want ErrNotFound", err)
	}
	if _, err := c.TransitKey(ctx, vaulttest.TransitMount, "certificates"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.TransitSign(ctx, vaulttest.TransitMount, "certificates", 0, []byte("payload")); err != nil {
		t.Fatal(err)
	}
	if err := c.TransitRotate(ctx, vaulttest.TransitMount, "certificates"); err != nil {
		t.Fatal(err)
	}
	bad, err := vault.New(srv.URL, "wrong-token")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bad.WithMetrics(vault.NewMetrics(prometheus.NewRegistry())).TransitSign(ctx, vaulttest.TransitMount, "certificates", 0, nil); err == nil {
		t.Fatal("signed with a wrong token")
	}
	if _, _, err := c.TransitSign(ctx, vaulttest.TransitMount, "no-such-key", 0, []byte("x")); err == nil {
		t.Fatal("signed with a key that does not exist")
	}

	want := `
# HELP shala_vault_calls_total Calls to Vault by kind (kv_read, transit_key, transit_sign, transit_rotate) and outcome (ok, not_found, error).
# TYPE shala_vault_calls_total counter
shala_vault_calls_total{call="kv_read",outcome="not_found"} 1
shala_vault_calls_total{call="kv_read",outcome="ok"} 1
shala_vault_calls_total{call="transit_key",outcome="error"} 0
shala_vault_calls_total{call="transit_key",outcome="ok"} 1
shala_vault_calls_total{call="transit_rotate",outcome="ok"} 1
shala_vault_calls_total{call="transit_sign",outcome="error"} 1
shala_vault_calls_total{call="transit_sign",outcome="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "shala_vault_calls_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "shala_vault_call_duration_seconds"); n != 4 {
		t.Errorf("got %d duration series, want one per kind (4)", n)
	}
}
