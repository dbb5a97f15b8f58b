package certificate

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/vault"
)

// DefaultTransitKey is the name of the Vault transit key (type ed25519)
// that signs certificates; docker compose's Vault init creates it.
const DefaultTransitKey = "shala-slc"

// Transit is the part of the Vault client the transit signer uses.
type Transit interface {
	TransitKey(ctx context.Context, mount, name string) (vault.TransitKey, error)
	TransitSign(ctx context.Context, mount, name string, version int, input []byte) ([]byte, int, error)
}

// TransitSigner signs in Vault's transit engine: the private key never
// leaves Vault. It reads the key's versions (public keys) at most every
// MaxAge, so a rotation reaches new certificates within that time (and
// while Vault is unreachable the versions read before keep verifying); each
// signature names its version explicitly, so the kid in the header and the
// key that signs always agree.
type TransitSigner struct {
	vault       Transit
	mount, name string
	// MaxAge is how long the key versions read from Vault are used.
	MaxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	keys    []Key
	read    time.Time
	stale   bool
	reading bool   // a caller is asking Vault
	gen     uint64 // Refresh calls: a read begun before one is stale
}

// NewTransitSigner signs with key name of the transit engine at mount.
func NewTransitSigner(v Transit, mount, name string) *TransitSigner {
	return &TransitSigner{vault: v, mount: mount, name: name, MaxAge: time.Minute, now: time.Now}
}

// Refresh makes the next use read the key versions again (after a rotation).
func (s *TransitSigner) Refresh() {
	s.mu.Lock()
	s.stale = true
	s.gen++
	s.mu.Unlock()
}

// ReReadAfter is how long after reading the key versions a payload with a
// kid they lack makes the signer read them again (ReRead): a rotation
// another replica saw first is picked up at once, and payloads with made-up
// kids ask Vault at most once in that time.
const ReReadAfter = 10 * time.Second

// ReRead makes the next use read the key versions again, unless they were
// read less than ReReadAfter ago or are being read; it reports whether it
// did.
func (s *TransitSigner) ReRead() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reading || s.now().Sub(s.read) < ReReadAfter {
		return false
	}
	s.stale = true
	s.gen++
	return true
}

// Keys lists every version of the key, oldest first. Vault is asked
// without holding the lock: while one caller waits for it, the others use
// the versions read before (a slow Vault delays one call a MaxAge, not
// every verification); while Vault is unreachable those keep serving, and
// it is asked again after MaxAge.
func (s *TransitSigner) Keys(ctx context.Context) ([]Key, error) {
	s.mu.Lock()
	if s.keys != nil && (s.reading || (!s.stale && s.now().Sub(s.read) < s.MaxAge)) {
		keys := s.keys
		s.mu.Unlock()
		return keys, nil
	}
	s.reading = true
	gen := s.gen
	s.mu.Unlock()

	keys, err := s.readKeys(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.reading = false
	if err != nil {
		if s.keys != nil {
			s.read, s.stale = s.now(), s.gen != gen
			return s.keys, nil
		}
		return nil, err
	}
	s.keys, s.read, s.stale = keys, s.now(), s.gen != gen
	return keys, nil
}

// readKeys asks Vault for the key's versions.
func (s *TransitSigner) readKeys(ctx context.Context) ([]Key, error) {
	tk, err := s.vault.TransitKey(ctx, s.mount, s.name)
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "", "certificate signing keys unavailable")
	}
	if tk.Type != "ed25519" {
		return nil, fmt.Errorf("vault transit key %s/%s is %q, want ed25519", s.mount, s.name, tk.Type)
	}
	keys := make([]Key, 0, len(tk.Versions))
	for i, v := range tk.Versions {
		if len(v.PublicKey) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("vault transit key %s/%s version %d: not an ed25519 public key", s.mount, s.name, v.Version)
		}
		k := Key{ID: KeyID(v.PublicKey), Public: v.PublicKey, NotBefore: v.Created, version: v.Version}
		if i+1 < len(tk.Versions) {
			k.NotAfter = tk.Versions[i+1].Created
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("vault transit key %s/%s has no versions", s.mount, s.name)
	}
	return keys, nil
}

// SigningKey is the latest version.
func (s *TransitSigner) SigningKey(ctx context.Context) (Key, error) {
	keys, err := s.Keys(ctx)
	if err != nil {
		return Key{}, err
	}
	return keys[len(keys)-1], nil
}

// Sign asks Vault to sign msg with k's version and checks the answer
// against k's public key.
func (s *TransitSigner) Sign(ctx context.Context, k Key, msg []byte) ([]byte, error) {
	if k.version == 0 {
		return nil, errors.New("transit signer: key has no Vault version")
	}
	sig, v, err := s.vault.TransitSign(ctx, s.mount, s.name, k.version, msg)
	if err != nil {
		return nil, fault.Wrap(err, fault.Unavailable, "", "certificate signing unavailable")
	}
	if v != k.version || !ed25519.Verify(k.Public, msg, sig) {
		return nil, fmt.Errorf("vault transit sign %s/%s: signature does not verify with version %d", s.mount, s.name, k.version)
	}
	return sig, nil
}
