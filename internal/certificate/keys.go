package certificate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Key is one public key version that signs (or signed) certificates.
type Key struct {
	ID     string // kid: KeyID(Public)
	Public ed25519.PublicKey
	// NotBefore is when the version was created; NotAfter, when a newer
	// version replaced it (zero while it is the signing key). Certificates
	// it signed stay valid after NotAfter.
	NotBefore, NotAfter time.Time
	// Dev marks the development key (no Vault): published with "use": "dev".
	Dev bool
	// version is the Vault transit key version (0 for other keys).
	version int
}

// KeyID is the kid of a public key: the first 6 bytes of its SHA-256,
// base64url (8 characters). Derived from the key itself, so a Vault key, a
// rotated version and a development key can never share a kid.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:6])
}

// Signer signs certificates with a key it never hands out. SigningKey is
// the key the next signature will use (its kid goes into the protected
// header before signing); Sign signs msg with exactly that key.
type Signer interface {
	SigningKey(ctx context.Context) (Key, error)
	Sign(ctx context.Context, key Key, msg []byte) ([]byte, error)
	// Keys lists every version, oldest first, for the published key set.
	Keys(ctx context.Context) ([]Key, error)
}

// JWK is one published key (RFC 8037 OKP key).
type JWK struct {
	Kty       string `json:"kty"`
	Crv       string `json:"crv"`
	Kid       string `json:"kid"`
	X         string `json:"x"`
	Alg       string `json:"alg"`
	Use       string `json:"use"` // "sig", or "dev" for the development key
	NotBefore string `json:"not_before,omitempty"`
	NotAfter  string `json:"not_after,omitempty"`
}

// KeySet is the document at /.well-known/shala-keys.json.
type KeySet struct {
	Keys []JWK `json:"keys"`
}

// NewKeySet publishes keys.
func NewKeySet(keys []Key) KeySet {
	ks := KeySet{Keys: make([]JWK, 0, len(keys))}
	for _, k := range keys {
		j := JWK{Kty: "OKP", Crv: "Ed25519", Kid: k.ID, X: base64.RawURLEncoding.EncodeToString(k.Public),
			Alg: "EdDSA", Use: "sig"}
		if k.Dev {
			j.Use = "dev"
		}
		if !k.NotBefore.IsZero() {
			j.NotBefore = k.NotBefore.UTC().Format(time.RFC3339)
		}
		if !k.NotAfter.IsZero() {
			j.NotAfter = k.NotAfter.UTC().Format(time.RFC3339)
		}
		ks.Keys = append(ks.Keys, j)
	}
	return ks
}

// ParseKeySet reads a published key set (as the offline verifier does).
// Keys that are not Ed25519 OKP keys are skipped.
func ParseKeySet(b []byte) ([]Key, error) {
	var ks KeySet
	if err := json.Unmarshal(b, &ks); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	var out []Key
	for _, j := range ks.Keys {
		if j.Kty != "OKP" || j.Crv != "Ed25519" {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key set: key %q: x is not a base64url Ed25519 public key", j.Kid)
		}
		k := Key{ID: j.Kid, Public: x, Dev: j.Use == "dev"}
		if KeyID(k.Public) != k.ID {
			return nil, fmt.Errorf("key set: key %q: kid does not match its public key", j.Kid)
		}
		k.NotBefore, _ = time.Parse(time.RFC3339, j.NotBefore)
		k.NotAfter, _ = time.Parse(time.RFC3339, j.NotAfter)
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("key set: no Ed25519 keys")
	}
	return out, nil
}

// DevSigner signs with a development key kept in a file: shala's signer
// when no Vault is configured (the local default). Certificates it signs
// verify only against that machine's key set, which marks the key "dev".
type DevSigner struct {
	key ed25519.PrivateKey
	at  time.Time
}

// OpenDevSigner loads the key in path, creating it on first use; created
// says whether it was just made.
func OpenDevSigner(path string) (s *DevSigner, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		seed, derr := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(b)))
		if derr != nil || len(seed) != ed25519.SeedSize {
			return nil, false, fmt.Errorf("dev signing key %s: not a base64 Ed25519 seed", path)
		}
		st, serr := os.Stat(path)
		if serr != nil {
			return nil, false, serr
		}
		return &DevSigner{key: ed25519.NewKeyFromSeed(seed), at: st.ModTime()}, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), 0o600); err != nil {
		return nil, false, err
	}
	return &DevSigner{key: ed25519.NewKeyFromSeed(seed), at: time.Now()}, true, nil
}

// NewDevSigner signs with key (tests).
func NewDevSigner(key ed25519.PrivateKey) *DevSigner { return &DevSigner{key: key, at: time.Now()} }

func (s *DevSigner) public() Key {
	pub := s.key.Public().(ed25519.PublicKey)
	return Key{ID: KeyID(pub), Public: pub, NotBefore: s.at, Dev: true}
}

// SigningKey is the development key.
func (s *DevSigner) SigningKey(context.Context) (Key, error) { return s.public(), nil }

// Sign signs msg.
func (s *DevSigner) Sign(_ context.Context, k Key, msg []byte) ([]byte, error) {
	if k.ID != s.public().ID {
		return nil, fmt.Errorf("dev signer: unknown key %q", k.ID)
	}
	return ed25519.Sign(s.key, msg), nil
}

// Keys is the development key.
func (s *DevSigner) Keys(context.Context) ([]Key, error) { return []Key{s.public()}, nil }

// findKey returns the key with kid.
func findKey(keys []Key, kid string) (Key, bool) {
	i := slices.IndexFunc(keys, func(k Key) bool { return k.ID == kid })
	if i < 0 {
		return Key{}, false
	}
	return keys[i], true
}
