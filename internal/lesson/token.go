package lesson

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
)

// TokenAlphabet is what access tokens are made of: 1–9 and A–Z without O,
// so that neither 0 nor O is ever issued and a token read aloud or copied
// from a blackboard cannot be mistyped between them.
const TokenAlphabet = "123456789ABCDEFGHIJKLMNPQRSTUVWXYZ"

// TokenLength is the length of a student's access token (34⁶ ≈ 1.5 × 10⁹
// tokens; the join endpoint is rate limited per IP against guessing).
const TokenLength = 6

// NewAccessToken returns a token of TokenLength characters drawn uniformly
// from TokenAlphabet with crypto/rand.
func NewAccessToken() string {
	return randomFrom(TokenAlphabet, TokenLength)
}

// randomFrom draws n characters uniformly from alphabet (rejection sampling:
// no modulo bias).
func randomFrom(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic(err) // crypto/rand.Read never fails on supported platforms
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// NormalizeToken upper-cases a typed token and reports whether it can be
// one: tokens are matched case-insensitively.
func NormalizeToken(s string) (string, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if len(s) != TokenLength {
		return "", false
	}
	for i := range len(s) {
		if !strings.ContainsRune(TokenAlphabet, rune(s[i])) {
			return "", false
		}
	}
	return s, true
}

// newLinkToken returns a moderator quick-login token (32 bytes from
// crypto/rand, URL-safe) and the SHA-256 that is stored.
func newLinkToken() (token string, hash []byte) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		panic(err) // crypto/rand.Read never fails on supported platforms
	}
	token = base64.RawURLEncoding.EncodeToString(raw[:])
	return token, hashLinkToken(token)
}

func hashLinkToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
