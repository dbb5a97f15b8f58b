package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"

	"github.com/shala-edu/shala/internal/auth"
)

const hsKey = "a-shared-secret-of-at-least-32-characters!"

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func clock() time.Time { return t0 }

func mustConfig(t *testing.T, s string) *auth.Config {
	t.Helper()
	c, err := auth.ParseConfig(s)
	if err != nil {
		t.Fatalf("ParseConfig(%s): %v", s, err)
	}
	return c
}

func verifier(t *testing.T, cfg *auth.Config, opts ...auth.VerifierOption) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg, append([]auth.VerifierOption{auth.WithClock(clock)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sign makes a token with the jwt library directly (not with Mint), as an
// identity provider would.
func sign(t *testing.T, m jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hasuraClaims(extra map[string]any) jwt.MapClaims {
	hc := map[string]any{"x-hasura-default-role": "school", "x-hasura-allowed-roles": []string{"school", "examiner"},
		"x-hasura-user-id": "7", "X-Hasura-School-Id": "0b1f3a8e-8c5e-4d3c-9a59-0f6f1e6f1a01"}
	for k, v := range extra {
		hc[k] = v
	}
	return jwt.MapClaims{"sub": "7", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), auth.DefaultNamespace: hc}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		`{"type":"HS256"}`: "key or jwk_url",
		`{"type":"HS256","key":"` + hsKey + `","jwk_url":"http://x"}`:                               "exclusive",
		`{"type":"XX1","key":"k"}`:                                                                  "type",
		`{"type":"HS256","key":"` + hsKey + `","claims_format":"yaml"}`:                             "claims_format",
		`{"type":"HS256","key":"` + hsKey + `","claims_namespace_path":"hasura"}`:                   "claims_namespace_path",
		`{"type":"HS256","key":"` + hsKey + `","claims_map":{"x-hasura-user-id":"$.sub"}}`:          "claims_map",
		`{"type":"HS256","key":"` + hsKey + `","header":{"type":"Cookie"}}`:                         "header.name",
		`{"type":"HS256","key":"` + hsKey + `","audience":7}`:                                       "audience",
		`{"type":"HS256","key":"` + hsKey + `","claims_namespace":"a","claims_namespace_path":"$"}`: "exclusive",
	}
	for in, want := range bad {
		_, err := auth.ParseConfig(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseConfig(%s) = %v, want an error naming %q", in, err, want)
		}
	}
	c := mustConfig(t, `{"type":"HS256","key":"`+hsKey+`","audience":"shala","allowed_skew":5}`)
	if len(c.Audience) != 1 || c.Audience[0] != "shala" || c.AllowedSkew != 5 {
		t.Errorf("got %+v", c)
	}
	if _, err := auth.NewVerifier(mustConfig(t, `{"type":"HS256","key":"short"}`)); err == nil {
		t.Error("a 5-character HMAC key was accepted; Hasura requires 32")
	}
}

func TestVerifyHMAC(t *testing.T) {
	t.Parallel()
	v := verifier(t, mustConfig(t, `{"type":"HS256","key":"`+hsKey+`"}`))
	ctx := context.Background()

	t.Run("valid token gives Hasura's session", func(t *testing.T) {
		c, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, []byte(hsKey), hasuraClaims(nil), ""))
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Session("")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"x-hasura-role": "school", "x-hasura-user-id": "7", "x-hasura-school-id": "0b1f3a8e-8c5e-4d3c-9a59-0f6f1e6f1a01"}
		for k, w := range want {
			if s[k] != w {
				t.Errorf("session[%s] = %q, want %q", k, s[k], w)
			}
		}
		if _, ok := s["x-hasura-allowed-roles"]; ok {
			t.Error("allowed roles leaked into the session variables")
		}
		if s, err := c.Session("examiner"); err != nil || s["x-hasura-role"] != "examiner" {
			t.Errorf("Session(examiner) = %v, %v; want the requested allowed role", s, err)
		}
		if _, err := c.Session("admin"); !errors.Is(err, auth.ErrForbidden) {
			t.Errorf("Session(admin) err = %v, want ErrForbidden", err)
		}
	})
	refused := map[string]string{
		"expired":       sign(t, jwt.SigningMethodHS256, []byte(hsKey), jwt.MapClaims{"exp": t0.Add(-time.Minute).Unix(), auth.DefaultNamespace: hasuraClaims(nil)[auth.DefaultNamespace]}, ""),
		"no exp":        sign(t, jwt.SigningMethodHS256, []byte(hsKey), jwt.MapClaims{auth.DefaultNamespace: hasuraClaims(nil)[auth.DefaultNamespace]}, ""),
		"wrong key":     sign(t, jwt.SigningMethodHS256, []byte(hsKey+"x"), hasuraClaims(nil), ""),
		"other alg":     sign(t, jwt.SigningMethodHS512, []byte(hsKey), hasuraClaims(nil), ""),
		"none alg":      sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, hasuraClaims(nil), ""),
		"no namespace":  sign(t, jwt.SigningMethodHS256, []byte(hsKey), jwt.MapClaims{"exp": t0.Add(time.Hour).Unix()}, ""),
		"no roles":      sign(t, jwt.SigningMethodHS256, []byte(hsKey), jwt.MapClaims{"exp": t0.Add(time.Hour).Unix(), auth.DefaultNamespace: map[string]any{"x-hasura-user-id": "1"}}, ""),
		"garbage":       "not.a.token",
		"tampered body": tamper(sign(t, jwt.SigningMethodHS256, []byte(hsKey), hasuraClaims(nil), "")),
	}
	for name, tok := range refused {
		t.Run("refuses "+name, func(t *testing.T) {
			if _, err := v.Verify(ctx, tok); !errors.Is(err, auth.ErrInvalid) {
				t.Errorf("Verify = %v, want ErrInvalid", err)
			}
		})
	}
}

// tamper changes the payload's user id, keeping the signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := jwt.NewParser().DecodeSegment(parts[1])
	p = []byte(strings.Replace(string(p), `"7"`, `"8"`, 1))
	parts[1] = strings.TrimRight(jwtEncode(p), "=")
	return strings.Join(parts, ".")
}

func jwtEncode(b []byte) string { return (&jwt.Token{}).EncodeSegment(b) }

func TestAudienceIssuerSkewAndNamespaces(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := verifier(t, mustConfig(t, `{"type":"HS256","key":"`+hsKey+`","audience":["a","shala"],"issuer":"https://id.example","allowed_skew":60}`))
	good := hasuraClaims(nil)
	good["aud"], good["iss"] = "shala", "https://id.example"
	good["exp"] = t0.Add(-30 * time.Second).Unix() // within the skew
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, []byte(hsKey), good, "")); err != nil {
		t.Errorf("valid audience/issuer within skew: %v", err)
	}
	for name, change := range map[string]func(jwt.MapClaims){
		"audience":    func(c jwt.MapClaims) { c["aud"] = "other" },
		"issuer":      func(c jwt.MapClaims) { c["iss"] = "https://evil.example" },
		"beyond skew": func(c jwt.MapClaims) { c["exp"] = t0.Add(-2 * time.Minute).Unix() },
	} {
		c := hasuraClaims(nil)
		c["aud"], c["iss"] = "shala", "https://id.example"
		change(c)
		if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, []byte(hsKey), c, "")); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("%s: Verify = %v, want ErrInvalid", name, err)
		}
	}

	hc := hasuraClaims(nil)[auth.DefaultNamespace]
	b, _ := json.Marshal(hc)
	for cfg, claims := range map[string]jwt.MapClaims{
		`{"type":"HS256","key":"` + hsKey + `","claims_namespace":"hasura"}`:                      {"exp": t0.Add(time.Hour).Unix(), "hasura": hc},
		`{"type":"HS256","key":"` + hsKey + `","claims_namespace_path":"$.app['hasura.claims']"}`: {"exp": t0.Add(time.Hour).Unix(), "app": map[string]any{"hasura.claims": hc}},
		`{"type":"HS256","key":"` + hsKey + `","claims_namespace_path":"$"}`:                      merge(jwt.MapClaims{"exp": t0.Add(time.Hour).Unix()}, hc.(map[string]any)),
		`{"type":"HS256","key":"` + hsKey + `","claims_format":"stringified_json"}`:               {"exp": t0.Add(time.Hour).Unix(), auth.DefaultNamespace: string(b)},
	} {
		c, err := verifier(t, mustConfig(t, cfg)).Verify(ctx, sign(t, jwt.SigningMethodHS256, []byte(hsKey), claims, ""))
		if err != nil || c.DefaultRole != "school" || c.Vars["x-hasura-user-id"] != "7" {
			t.Errorf("%s: got %+v, %v", cfg, c, err)
		}
	}
}

func merge(a jwt.MapClaims, b map[string]any) jwt.MapClaims {
	for k, v := range b {
		a[k] = v
	}
	return a
}

func pemOf(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestAsymmetricKeysAndAlgorithmConfusion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pemOf(t, &rk.PublicKey)
	cfgJSON, _ := json.Marshal(map[string]string{"type": "RS256", "key": rsaPEM})
	v := verifier(t, mustConfig(t, string(cfgJSON)))
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodRS256, rk, hasuraClaims(nil), "")); err != nil {
		t.Errorf("RS256: %v", err)
	}
	// The classic attack: HS256 with the RSA public key as the secret.
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), hasuraClaims(nil), "")); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("HS256 signed with the public key: %v, want ErrInvalid", err)
	}

	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	edJSON, _ := json.Marshal(map[string]string{"type": "Ed25519", "key": pemOf(t, pub), "issuer": "shala"})
	cfg := mustConfig(t, string(edJSON))
	iss, err := auth.NewIssuer(cfg, priv, "", clock)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Mint("m-1", []string{"moderator"}, "moderator", map[string]string{"X-Hasura-User-Id": "m-1"}, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := verifier(t, cfg).Verify(ctx, tok)
	if err != nil || c.Vars["x-hasura-user-id"] != "m-1" || c.DefaultRole != "moderator" || !c.ExpiresAt.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("minted Ed25519 token: %+v, %v", c, err)
	}
	later := auth.WithClock(func() time.Time { return t0.Add(11 * time.Minute) })
	if _, err := verifier(t, cfg, later).Verify(ctx, tok); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("minted token after its ttl: %v, want ErrInvalid", err)
	}
}

func TestMintHMACRoundTripsEveryClaimsLayout(t *testing.T) {
	t.Parallel()
	for _, cfg := range []string{
		`{"type":"HS256","key":"` + hsKey + `"}`,
		`{"type":"HS512","key":"` + hsKey + `","claims_namespace":"hasura","audience":"x"}`,
		`{"type":"HS256","key":"` + hsKey + `","claims_namespace_path":"$.a.b"}`,
		`{"type":"HS256","key":"` + hsKey + `","claims_namespace_path":"$"}`,
		`{"type":"HS256","key":"` + hsKey + `","claims_format":"stringified_json"}`,
	} {
		c := mustConfig(t, cfg)
		iss, err := auth.NewIssuer(c, nil, "", clock)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := iss.Mint("u", []string{"moderator", "school"}, "moderator", map[string]string{"x-hasura-user-id": "u"}, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", cfg, err)
		}
		got, err := verifier(t, c).Verify(context.Background(), tok)
		if err != nil || got.DefaultRole != "moderator" || len(got.AllowedRoles) != 2 || got.Vars["x-hasura-user-id"] != "u" {
			t.Errorf("%s: %+v, %v", cfg, got, err)
		}
	}
}

func TestJWKSetRotation(t *testing.T) {
	t.Parallel()
	_, k1, _ := ed25519.GenerateKey(rand.Reader)
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	var fetches atomic.Int32
	var current atomic.Value
	current.Store([]jose.JSONWebKey{{Key: k1.Public(), KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=3600")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: current.Load().([]jose.JSONWebKey)})
	}))
	defer srv.Close()
	now := t0
	cfg := mustConfig(t, `{"jwk_url":"`+srv.URL+`"}`)
	v, err := auth.NewVerifier(cfg, auth.WithClock(func() time.Time { return now }), auth.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodEdDSA, k1, hasuraClaims(nil), "k1")); err != nil {
		t.Fatalf("k1: %v", err)
	}
	// Rotation: the provider now signs with k2. An unknown kid refetches,
	// but not more than every 30 s.
	current.Store([]jose.JSONWebKey{{Key: k1.Public(), KeyID: "k1"}, {Key: k2.Public(), KeyID: "k2"}})
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodEdDSA, k2, hasuraClaims(nil), "k2")); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("k2 within 30 s of the last fetch: %v, want refused (no refetch storm)", err)
	}
	now = now.Add(31 * time.Second)
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodEdDSA, k2, hasuraClaims(nil), "k2")); err != nil {
		t.Errorf("k2 after rotation: %v", err)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodEdDSA, k1, hasuraClaims(nil), "k1")); err != nil {
		t.Errorf("k1 after rotation: %v", err)
	}
	if got := fetches.Load(); got != 2 {
		t.Errorf("fetched the key set %d times, want 2", got)
	}
	if _, err := v.Verify(ctx, sign(t, jwt.SigningMethodEdDSA, k1, hasuraClaims(nil), "forged")); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("unknown kid: %v, want ErrInvalid", err)
	}
}

func TestTokenFrom(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer abc.def.ghi")
	r.AddCookie(&http.Cookie{Name: "session", Value: "cookie.tok.en"})
	r.Header.Set("X-Token", "custom.tok.en")
	for cfg, want := range map[string]string{
		`{"type":"HS256","key":"` + hsKey + `"}`:                                                   "abc.def.ghi",
		`{"type":"HS256","key":"` + hsKey + `","header":{"type":"Cookie","name":"session"}}`:       "cookie.tok.en",
		`{"type":"HS256","key":"` + hsKey + `","header":{"type":"CustomHeader","name":"X-Token"}}`: "custom.tok.en",
	} {
		got, err := verifier(t, mustConfig(t, cfg)).TokenFrom(r)
		if err != nil || got != want {
			t.Errorf("%s: TokenFrom = %q, %v; want %q", cfg, got, err, want)
		}
	}
	bare := httptest.NewRequest(http.MethodGet, "/", nil)
	bare.Header.Set("Authorization", "Basic dXNlcjpwdw==")
	if _, err := verifier(t, mustConfig(t, `{"type":"HS256","key":"`+hsKey+`"}`)).TokenFrom(bare); !errors.Is(err, auth.ErrInvalid) {
		t.Errorf("Basic auth: %v, want ErrInvalid", err)
	}
}

// TestJWKSetServerDown: the identity provider's key set server going down
// does not sign everyone out. Keys already fetched keep verifying after
// their max-age while a refetch fails (as Hasura keeps them), refetches
// are tried at most every 30 s, and a Verifier that never got the set says
// the keys are unavailable (try again), not that the token is invalid.
func TestJWKSetServerDown(t *testing.T) {
	t.Parallel()
	_, k1, _ := ed25519.GenerateKey(rand.Reader)
	var up atomic.Bool
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if !up.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k1.Public(), KeyID: "k1", Algorithm: "EdDSA", Use: "sig"}}})
	}))
	defer srv.Close()
	ctx := context.Background()
	cfg := mustConfig(t, `{"jwk_url":"`+srv.URL+`"}`)

	t.Run("keys already fetched keep verifying", func(t *testing.T) {
		now := t0
		v, err := auth.NewVerifier(cfg, auth.WithClock(func() time.Time { return now }), auth.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		up.Store(true)
		claims := hasuraClaims(nil)
		claims["exp"] = t0.Add(24 * time.Hour).Unix()
		tok := sign(t, jwt.SigningMethodEdDSA, k1, claims, "k1")
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatalf("with the server up: %v", err)
		}
		up.Store(false)
		before := fetches.Load()
		now = now.Add(2 * time.Minute) // past max-age: a refetch is due, and fails
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("past max-age with the server down: %v, want the fetched keys to verify", err)
		}
		now = now.Add(10 * time.Second)
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("again: %v", err)
		}
		if got := fetches.Load() - before; got != 1 {
			t.Errorf("%d refetches within 30 s of a failed one, want 1", got)
		}
	})
	t.Run("a request gone during the first fetch does not stop the next", func(t *testing.T) {
		v, err := auth.NewVerifier(cfg, auth.WithClock(clock), auth.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		up.Store(true)
		defer up.Store(false)
		tok := sign(t, jwt.SigningMethodEdDSA, k1, hasuraClaims(nil), "k1")
		gone, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := v.Verify(gone, tok); err != nil {
			t.Logf("the request that left: %v (whatever it is told)", err)
		}
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Errorf("the next request: %v, want verified", err)
		}
	})
	t.Run("never fetched", func(t *testing.T) {
		v, err := auth.NewVerifier(cfg, auth.WithClock(clock), auth.WithHTTPClient(srv.Client()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(ctx, sign(t, jwt.SigningMethodEdDSA, k1, hasuraClaims(nil), "k1"))
		if !errors.Is(err, auth.ErrKeysUnavailable) || errors.Is(err, auth.ErrInvalid) {
			t.Errorf("got %v, want ErrKeysUnavailable and not ErrInvalid", err)
		}
	})
}
