package aadhaar

import (
	"bytes"
	"path/filepath"
	"testing"
)

func TestProtect(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, KeySize)
	p, err := NewProtector(key)
	if err != nil {
		t.Fatal(err)
	}
	n := Complete("23456789012")
	a, err := p.Protect(n)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Protect(n)
	if !bytes.Equal(a.Hash, b.Hash) || bytes.Equal(a.Ciphertext, b.Ciphertext) || a.Last4 != n[8:] {
		t.Errorf("want equal hashes (uniqueness), different ciphertexts (random nonce), last four %s; got %+v, %+v", n[8:], a, b)
	}
	if bytes.Contains(a.Ciphertext, []byte(n)) || bytes.Contains(a.Hash, []byte(n)) {
		t.Error("the number appears in what is stored")
	}
	if got, err := p.Reveal(a.Ciphertext); err != nil || got != n {
		t.Errorf("reveal: got %q, %v", got, err)
	}
	other, _ := NewProtector(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Reveal(a.Ciphertext); err == nil {
		t.Error("another key decrypted the number")
	}
	if bytes.Equal(other.Hash(n), a.Hash) {
		t.Error("the hash does not depend on the key")
	}
	if _, err := p.Protect(n[:11] + string('0'+(n[11]-'0'+1)%10)); err == nil {
		t.Error("a wrong check digit was accepted")
	}
}

func TestDevKeyIsKept(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "dev-aadhaar-key")
	k1, created, err := DevKey(path)
	if err != nil || !created {
		t.Fatalf("first: created %v, %v", created, err)
	}
	k2, created, err := DevKey(path)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Errorf("second: created %v, same key %v, %v", created, bytes.Equal(k1, k2), err)
	}
}
