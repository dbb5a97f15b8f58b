package certificate

import (
	"context"
	"testing"

	"github.com/shala-edu/shala/internal/vault"
	"github.com/shala-edu/shala/internal/vault/vaulttest"
)

func TestTransitSigner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := vaulttest.New(t, "root")
	srv.CreateTransitKey(DefaultTransitKey)
	client, err := vault.New(srv.URL, "root")
	if err != nil {
		t.Fatal(err)
	}
	signer := NewTransitSigner(client, vaulttest.TransitMount, DefaultTransitKey)

	old, err := Seal(ctx, signer, sample())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signer.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := Open(old, keys); got.Problem != "" {
		t.Fatalf("got %s (%s), want valid", got.Problem, got.Detail)
	}

	t.Run("rotation: old certificates verify, new ones carry the new kid", func(t *testing.T) {
		if err := client.TransitRotate(ctx, vaulttest.TransitMount, DefaultTransitKey); err != nil {
			t.Fatal(err)
		}
		signer.Refresh()
		fresh := sample()
		payload, err := Seal(ctx, signer, fresh)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := signer.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 {
			t.Fatalf("got %d key versions, want 2", len(keys))
		}
		if fresh.KeyID != keys[1].ID || fresh.KeyID == keys[0].ID {
			t.Errorf("new certificate kid %q, want the new version's %q", fresh.KeyID, keys[1].ID)
		}
		if keys[0].NotAfter.IsZero() || !keys[1].NotAfter.IsZero() {
			t.Errorf("not_after: got %v and %v, want set on the old version only", keys[0].NotAfter, keys[1].NotAfter)
		}
		for name, p := range map[string]string{"old": old, "new": payload} {
			if got := Open(p, keys); got.Problem != "" {
				t.Errorf("%s certificate: got %s (%s), want valid", name, got.Problem, got.Detail)
			}
		}
		// The published set round-trips through JSON as the offline tool reads it.
		ks := NewKeySet(keys)
		if ks.Keys[0].Use != "sig" || ks.Keys[0].Kty != "OKP" || ks.Keys[0].Crv != "Ed25519" || ks.Keys[0].NotAfter == "" {
			t.Errorf("got JWK %+v", ks.Keys[0])
		}
	})
}
