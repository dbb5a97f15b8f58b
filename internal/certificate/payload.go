package certificate

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dromara/dongle/coding/base45"
	"github.com/veraison/go-cose"
)

// Prefix starts every certificate payload (version 1 of the format).
const Prefix = "SLC1:"

// Decoding limits: a QR of version 40 holds 4,296 alphanumeric characters,
// so anything longer is not from a QR; and a payload that inflates beyond
// MaxInflated is refused before it is parsed (a zip bomb in a QR is a known
// attack on verifiers).
const (
	MaxPayloadChars = 4296
	MaxInflated     = 4096
)

// Problem is why a certificate is not valid: the `reason` of
// verifyCertificate. The empty Problem means valid.
type Problem string

// Problems, as the API names them.
const (
	BadFormat    Problem = "BAD_FORMAT"
	BadSignature Problem = "BAD_SIGNATURE"
	UnknownKey   Problem = "UNKNOWN_KEY"
	Revoked      Problem = "REVOKED"
	AlreadyUsed  Problem = "ALREADY_USED"
)

// Seal signs s with signer's current key (setting s.KeyID) and returns the
// QR payload: "SLC1:" + base45(zlib(COSE_Sign1(claims))).
func Seal(ctx context.Context, signer Signer, s *Snapshot) (string, error) {
	key, err := signer.SigningKey(ctx)
	if err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	s.KeyID = key.ID
	c, err := toClaims(s)
	if err != nil {
		return "", err
	}
	payload, err := encMode.Marshal(c)
	if err != nil {
		return "", err
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmEdDSA)
	msg.Headers.Protected[cose.HeaderLabelKeyID] = []byte(key.ID)
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, nil, &coseSigner{ctx: ctx, signer: signer, key: key}); err != nil {
		return "", fmt.Errorf("sign certificate: %w", err)
	}
	raw, err := msg.MarshalCBOR()
	if err != nil {
		return "", err
	}
	z, err := deflate(raw)
	if err != nil {
		return "", err
	}
	return Prefix + string(base45.NewStdEncoder().Encode(z)), nil
}

// coseSigner lets go-cose sign through a Signer (Vault transit): go-cose
// hands it the Sig_structure, which Ed25519 signs whole.
type coseSigner struct {
	ctx    context.Context
	signer Signer
	key    Key
}

func (s *coseSigner) Algorithm() cose.Algorithm { return cose.AlgorithmEdDSA }

func (s *coseSigner) Sign(_ io.Reader, content []byte) ([]byte, error) {
	return s.signer.Sign(s.ctx, s.key, content)
}

// Opened is a decoded certificate payload.
type Opened struct {
	// Snapshot is what the claims state (nil when the payload could not be
	// decoded or its signature did not verify).
	Snapshot *Snapshot
	Key      Key
	Problem  Problem
	// Detail says what exactly was wrong, for logs and the offline tool.
	Detail string
}

// Open decodes payload and verifies its signature against keys. It never
// returns claims whose signature did not verify.
func Open(payload string, keys []Key) Opened {
	fail := func(p Problem, format string, args ...any) Opened {
		return Opened{Problem: p, Detail: fmt.Sprintf(format, args...)}
	}
	payload = strings.TrimSpace(payload)
	if len(payload) > MaxPayloadChars {
		return fail(BadFormat, "longer than any QR code (%d characters)", len(payload))
	}
	body, ok := strings.CutPrefix(payload, Prefix)
	if !ok {
		return fail(BadFormat, "does not start with %s", Prefix)
	}
	compressed, err := base45.NewStdDecoder().Decode([]byte(body))
	if err != nil {
		return fail(BadFormat, "base45: %v", err)
	}
	raw, err := inflate(compressed)
	if err != nil {
		return fail(BadFormat, "zlib: %v", err)
	}
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(raw); err != nil {
		return fail(BadFormat, "COSE_Sign1: %v", err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil || alg != cose.AlgorithmEdDSA {
		return fail(BadFormat, "protected header: algorithm is not EdDSA")
	}
	kidBytes, ok := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte)
	if !ok {
		return fail(BadFormat, "protected header: no kid")
	}
	kid := string(kidBytes)
	key, ok := findKey(keys, kid)
	if !ok {
		return fail(UnknownKey, "no published key has kid %q", kid)
	}
	verifier, err := cose.NewVerifier(cose.AlgorithmEdDSA, key.Public)
	if err != nil {
		return fail(UnknownKey, "key %q: %v", kid, err)
	}
	if err := msg.Verify(nil, verifier); err != nil {
		return Opened{Problem: BadSignature, Key: key, Detail: err.Error()}
	}
	var c claims
	if err := decMode.Unmarshal(msg.Payload, &c); err != nil {
		return Opened{Problem: BadFormat, Key: key, Detail: "claims: " + err.Error()}
	}
	s, err := c.snapshot(kid)
	if err != nil {
		return Opened{Problem: BadFormat, Key: key, Detail: "claims: " + err.Error()}
	}
	return Opened{Snapshot: s, Key: key}
}

// deflate is zlib at its best compression, or zlib with a stored block when
// that is shorter (names of random syllables do not compress, and flate may
// then spend a few bytes more than storing): so the payload is never more
// than 16 bytes longer than the COSE message (Go writes a stored stream as header, block, empty final block, checksum), whatever the names, which is
// what bounds the QR version for names within the limits.
func deflate(raw []byte) ([]byte, error) {
	var best []byte
	for _, level := range []int{zlib.BestCompression, zlib.NoCompression} {
		var z bytes.Buffer
		zw, err := zlib.NewWriterLevel(&z, level)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(raw); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		if best == nil || z.Len() < len(best) {
			best = z.Bytes()
		}
	}
	return best, nil
}

func inflate(b []byte) ([]byte, error) {
	zr, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, MaxInflated+1))
	if err != nil {
		return nil, err
	}
	if len(out) > MaxInflated {
		return nil, errors.New("inflates beyond 4 KiB")
	}
	return out, nil
}
