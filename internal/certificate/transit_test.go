package certificate

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/vault"
	"github.com/shala-edu/shala/internal/vault/vaulttest"
)

func TestTransitSigner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := transitClient(t)
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

// flaky is the Vault client with an outage switch, counting key reads.
type flaky struct {
	Transit
	down  bool
	reads int
}

func (f *flaky) TransitKey(ctx context.Context, mount, name string) (vault.TransitKey, error) {
	f.reads++
	if f.down {
		return vault.TransitKey{}, errors.New("dial tcp 10.0.0.5:8200: connect: connection refused")
	}
	return f.Transit.TransitKey(ctx, mount, name)
}

// TestTransitSignerVaultDown: while Vault is unreachable the key versions
// read before keep verifying certificates, and Vault is asked again once a
// MaxAge, not by every verification (each would wait out the client's
// timeout and retries, one after another, behind the signer's lock).
func TestTransitSignerVaultDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := transitClient(t)
	v := &flaky{Transit: client}
	signer := NewTransitSigner(v, vaulttest.TransitMount, DefaultTransitKey)
	clock := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	signer.now = func() time.Time { return clock }
	if _, err := signer.Keys(ctx); err != nil {
		t.Fatal(err)
	}

	v.down = true
	clock = clock.Add(signer.MaxAge + time.Second)
	for i := range 3 {
		keys, err := signer.Keys(ctx)
		if err != nil || len(keys) != 1 {
			t.Fatalf("call %d with Vault down: got %d keys, %v; want the key read before", i, len(keys), err)
		}
	}
	if v.reads != 2 {
		t.Errorf("Vault asked %d times for 1 + 3 calls, want 2 (once more, then the cached keys until MaxAge)", v.reads)
	}

	v.down = false
	clock = clock.Add(signer.MaxAge + time.Second)
	if _, err := signer.Keys(ctx); err != nil || v.reads != 3 {
		t.Errorf("Vault back after MaxAge: %d reads, %v; want it read again", v.reads, err)
	}
}

// slow is a Vault that answers key reads only when released.
type slow struct {
	Transit
	asked, release chan struct{}
}

func (s *slow) TransitKey(ctx context.Context, mount, name string) (vault.TransitKey, error) {
	s.asked <- struct{}{}
	<-s.release
	return s.Transit.TransitKey(ctx, mount, name)
}

// TestTransitSignerSlowVault: while one caller waits for Vault to list the
// key versions again, the others verify with the versions read before
// instead of queueing behind it.
func TestTransitSignerSlowVault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := transitClient(t)
	v := &slow{Transit: client, asked: make(chan struct{}, 1), release: make(chan struct{})}
	signer := NewTransitSigner(v, vaulttest.TransitMount, DefaultTransitKey)
	clock := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	signer.now = func() time.Time { return clock }
	close(v.release)
	if _, err := signer.Keys(ctx); err != nil {
		t.Fatal(err)
	}
	<-v.asked

	v.release = make(chan struct{})
	clock = clock.Add(signer.MaxAge + time.Second)
	done := make(chan error, 1)
	go func() {
		_, err := signer.Keys(ctx)
		done <- err
	}()
	<-v.asked // that caller is now waiting for Vault
	if !signer.mu.TryLock() {
		close(v.release)
		<-done
		t.Fatal("the signer's lock is held while Vault is asked: every other caller waits for Vault")
	}
	signer.mu.Unlock()
	if keys, err := signer.Keys(ctx); err != nil || len(keys) != 1 {
		t.Errorf("during the slow read: got %d keys, %v; want the versions read before", len(keys), err)
	}
	close(v.release)
	if err := <-done; err != nil {
		t.Errorf("the slow read: %v", err)
	}
}

// transitClient is a Vault client on a test server holding the transit key.
func transitClient(t *testing.T) *vault.Client {
	t.Helper()
	srv := vaulttest.New(t, "root")
	srv.CreateTransitKey(DefaultTransitKey)
	client, err := vault.New(srv.URL, "root")
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// TestTransitSignerRotationOnAnotherReplica: a certificate signed with a
// version this replica has not read yet (another replica saw the rotation
// first) verifies here at once, not UNKNOWN_KEY until MaxAge has passed; a
// kid that is nowhere makes Vault be asked at most once a ReReadAfter.
func TestTransitSignerRotationOnAnotherReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := transitClient(t)
	v := &flaky{Transit: client}
	here := NewTransitSigner(v, vaulttest.TransitMount, DefaultTransitKey)
	clock := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	here.now = func() time.Time { return clock }
	if _, err := here.Keys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := client.TransitRotate(ctx, vaulttest.TransitMount, DefaultTransitKey); err != nil {
		t.Fatal(err)
	}
	there := NewTransitSigner(client, vaulttest.TransitMount, DefaultTransitKey)
	payload, err := Seal(ctx, there, sample())
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(ReReadAfter)
	if o, err := openWith(ctx, here, payload); err != nil || o.Problem != "" {
		t.Fatalf("got %q (%s) %v, want valid", o.Problem, o.Detail, err)
	}

	foreign := NewDevSigner(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	stranger, err := Seal(ctx, foreign, sample())
	if err != nil {
		t.Fatal(err)
	}
	reads := v.reads
	for range 3 {
		if o, err := openWith(ctx, here, stranger); err != nil || o.Problem != UnknownKey {
			t.Fatalf("a kid that is nowhere: got %q %v, want UNKNOWN_KEY", o.Problem, err)
		}
	}
	if v.reads != reads {
		t.Errorf("unknown kids within %v of a read: Vault asked %d more times, want 0", ReReadAfter, v.reads-reads)
	}
}
