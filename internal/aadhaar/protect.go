package aadhaar

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// KeySize is the size of the master key (base64 in SHALA_AADHAAR_KEY or
// Vault's aadhaar_key).
const KeySize = 32

// Protected is an Aadhaar number as the database keeps it: a keyed hash
// that makes "one ACTIVE enrolment per Aadhaar" a unique index without the
// number, the ciphertext only the admin path decrypts, and the last four
// digits everyone else sees. Without the key, the hash cannot be tested
// against guesses (an unkeyed hash of 10¹¹ numbers is reversed in minutes).
type Protected struct {
	Hash       []byte // HMAC-SHA-256, 32 bytes
	Ciphertext []byte // AES-256-GCM: 12-byte nonce || sealed number
	Last4      string
}

// Protector hashes and encrypts Aadhaar numbers under keys derived (HKDF)
// from one master key.
type Protector struct {
	hmacKey []byte
	aead    cipher.AEAD
}

// NewProtector derives the hash and encryption keys from master.
func NewProtector(master []byte) (*Protector, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("aadhaar key: want %d bytes, got %d", KeySize, len(master))
	}
	hk, err := hkdf.Key(sha256.New, master, nil, "shala aadhaar hmac v1", 32)
	if err != nil {
		return nil, err
	}
	ek, err := hkdf.Key(sha256.New, master, nil, "shala aadhaar aes-gcm v1", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(ek)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Protector{hmacKey: hk, aead: aead}, nil
}

// ParseKey decodes a base64 master key.
func ParseKey(b64 string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(k) != KeySize {
		return nil, fmt.Errorf("want %d random bytes in base64 (e.g. `head -c32 /dev/urandom | base64`)", KeySize)
	}
	return k, nil
}

// DevKey reads the development master key from path, creating it on first
// use (shala without Vault, the local default).
func DevKey(path string) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ParseKey(string(bytes.TrimSpace(b)))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	return key, true, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}

// Hash is the keyed hash of a valid number.
func (p *Protector) Hash(number string) []byte {
	m := hmac.New(sha256.New, p.hmacKey)
	m.Write([]byte(number))
	return m.Sum(nil)
}

// Protect validates number (Verhoeff) and returns its protected form.
func (p *Protector) Protect(number string) (Protected, error) {
	if !Valid(number) {
		return Protected{}, errors.New("not a valid Aadhaar number: 12 digits, not starting with 0 or 1, with a correct check digit")
	}
	nonce := make([]byte, p.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return Protected{}, err
	}
	return Protected{Hash: p.Hash(number), Ciphertext: p.aead.Seal(nonce, nonce, []byte(number), nil), Last4: number[8:]}, nil
}

// Reveal decrypts a ciphertext made by Protect.
func (p *Protector) Reveal(ciphertext []byte) (string, error) {
	n := p.aead.NonceSize()
	if len(ciphertext) < n {
		return "", errors.New("aadhaar ciphertext too short")
	}
	plain, err := p.aead.Open(nil, ciphertext[:n], ciphertext[n:], nil)
	if err != nil {
		return "", fmt.Errorf("aadhaar ciphertext: %w", err)
	}
	return string(plain), nil
}

// Mask shows the last four digits only: "XXXX XXXX 1234".
func Mask(last4 string) string {
	if last4 == "" {
		return ""
	}
	return "XXXX XXXX " + last4
}

// OpenProtector builds the protector shala runs with: from key (base64,
// SHALA_AADHAAR_KEY or Vault's aadhaar_key) when set — required when Vault
// is configured — else from a development key under dataDir, which it says
// loudly through warn.
func OpenProtector(key string, withVault bool, dataDir string, warn func(msg string, args ...any)) (*Protector, error) {
	if key != "" {
		k, err := ParseKey(key)
		if err != nil {
			return nil, fmt.Errorf("SHALA_AADHAAR_KEY: %w", err)
		}
		return NewProtector(k)
	}
	if withVault {
		return nil, errors.New("SHALA_AADHAAR_KEY: required when Vault is configured (store aadhaar_key in shala's Vault secret)")
	}
	path := filepath.Join(dataDir, "dev-aadhaar-key")
	k, created, err := DevKey(path)
	if err != nil {
		return nil, err
	}
	warn("DEVELOPMENT Aadhaar key in use (no Vault): Aadhaar numbers are encrypted under a key kept on this disk", "path", path, "created", created)
	return NewProtector(k)
}
