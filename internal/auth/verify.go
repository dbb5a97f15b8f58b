package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Verifier checks Hasura JWTs as Hasura would with the same Config.
type Verifier struct {
	cfg       *Config
	namespace []string // path to the claims object
	key       any      // static key; nil with a JWK set
	jwks      *keySet
	now       func() time.Time
}

// VerifierOption configures a Verifier.
type VerifierOption func(*Verifier)

// WithClock makes the Verifier read time from now (tests).
func WithClock(now func() time.Time) VerifierOption { return func(v *Verifier) { v.now = now } }

// WithHTTPClient fetches jwk_url with c (default: a client with a 10 s
// timeout).
func WithHTTPClient(c *http.Client) VerifierOption {
	return func(v *Verifier) {
		if v.jwks != nil {
			v.jwks.client = c
		}
	}
}

// NewVerifier returns a Verifier for cfg (see ParseConfig).
func NewVerifier(cfg *Config, opts ...VerifierOption) (*Verifier, error) {
	v := &Verifier{cfg: cfg, now: time.Now}
	switch {
	case cfg.ClaimsNamespacePath != "":
		keys, err := splitPath(cfg.ClaimsNamespacePath)
		if err != nil {
			return nil, err
		}
		v.namespace = keys
	case cfg.ClaimsNamespace != "":
		v.namespace = []string{cfg.ClaimsNamespace}
	default:
		v.namespace = []string{DefaultNamespace}
	}
	if cfg.JWKURL != "" {
		v.jwks = &keySet{url: cfg.JWKURL, client: &http.Client{Timeout: 10 * time.Second}}
	} else {
		k, err := cfg.verificationKey()
		if err != nil {
			return nil, err
		}
		v.key = k
	}
	for _, o := range opts {
		o(v)
	}
	if v.jwks != nil {
		v.jwks.now = v.now
	}
	return v, nil
}

// TokenFrom returns the token r carries where the Config says it travels.
func (v *Verifier) TokenFrom(r *http.Request) (string, error) {
	h := v.cfg.Header
	switch {
	case h == nil || h.Type == "Authorization":
		a := r.Header.Get("Authorization")
		scheme, tok, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", fmt.Errorf("%w: want header Authorization: Bearer <token>", ErrInvalid)
		}
		return strings.TrimSpace(tok), nil
	case h.Type == "Cookie":
		c, err := r.Cookie(h.Name)
		if err != nil || c.Value == "" {
			return "", fmt.Errorf("%w: want cookie %s", ErrInvalid, h.Name)
		}
		return c.Value, nil
	default:
		t := strings.TrimSpace(r.Header.Get(h.Name))
		if t == "" {
			return "", fmt.Errorf("%w: want header %s", ErrInvalid, h.Name)
		}
		return t, nil
	}
}

// Verify checks token's signature, expiry (exp is required, as Hasura
// requires it), audience and issuer, and returns its Hasura claims. Its
// errors wrap ErrInvalid, or ErrKeysUnavailable when the jwk_url key set
// could not be fetched and there are no keys to check with.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	opts := []jwt.ParserOption{jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.now),
		jwt.WithLeeway(time.Duration(v.cfg.AllowedSkew) * time.Second)}
	if v.cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.cfg.Issuer))
	}
	if v.key != nil {
		m, _ := method(v.cfg.Type) // checked by ParseConfig
		opts = append(opts, jwt.WithValidMethods([]string{m.Alg()}))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if v.key != nil {
			return v.key, nil
		}
		kid, _ := t.Header["kid"].(string)
		return v.jwks.key(ctx, kid, t.Method.Alg())
	}, opts...)
	if errors.Is(err, ErrKeysUnavailable) {
		return nil, err // no keys to tell a valid token from an invalid one
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(v.cfg.Audience) > 0 {
		aud, err := claims.GetAudience()
		if err != nil || !anyIn(aud, v.cfg.Audience) {
			return nil, fmt.Errorf("%w: audience is not %v", ErrInvalid, []string(v.cfg.Audience))
		}
	}
	return v.hasuraClaims(claims)
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if h == w {
				return true
			}
		}
	}
	return false
}

// hasuraClaims reads the x-hasura-* claims from the namespace.
func (v *Verifier) hasuraClaims(all jwt.MapClaims) (*Claims, error) {
	var node any = map[string]any(all)
	for _, k := range v.namespace {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: no claims at %v", ErrInvalid, v.namespace)
		}
		node = m[k]
	}
	if s, ok := node.(string); ok && v.cfg.ClaimsFormat == "stringified_json" {
		var m map[string]any
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return nil, fmt.Errorf("%w: claims are not stringified JSON", ErrInvalid)
		}
		node = m
	}
	hc, ok := node.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: no Hasura claims object", ErrInvalid)
	}
	c := &Claims{Vars: map[string]string{}}
	c.Subject, _ = all.GetSubject()
	if exp, err := all.GetExpirationTime(); err == nil && exp != nil {
		c.ExpiresAt = exp.Time
	}
	for k, val := range hc {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-hasura-") {
			continue
		}
		switch lk {
		case "x-hasura-allowed-roles":
			list, ok := val.([]any)
			if !ok {
				return nil, fmt.Errorf("%w: x-hasura-allowed-roles must be a list", ErrInvalid)
			}
			for _, r := range list {
				s, ok := r.(string)
				if !ok {
					return nil, fmt.Errorf("%w: x-hasura-allowed-roles must be strings", ErrInvalid)
				}
				c.AllowedRoles = append(c.AllowedRoles, s)
			}
		case "x-hasura-default-role":
			c.DefaultRole, _ = val.(string)
		default:
			switch val := val.(type) {
			case string:
				c.Vars[lk] = val
			case nil:
			default:
				b, _ := json.Marshal(val) // numbers, booleans, arrays: as Hasura renders them
				c.Vars[lk] = string(b)
			}
		}
	}
	if len(c.AllowedRoles) == 0 || c.DefaultRole == "" {
		return nil, fmt.Errorf("%w: x-hasura-allowed-roles and x-hasura-default-role are required", ErrInvalid)
	}
	return c, nil
}

// keySet is a JWK set fetched from a URL, refreshed when it ages past its
// Cache-Control max-age (default an hour) or a token names a kid it lacks.
// A fetch is tried at most every 30 s, so forged kids cannot make shala
// hammer the server nor a server that is down make every request wait for
// it; while it fails the keys fetched before keep verifying (as Hasura
// keeps them), so an outage of the identity provider's key server does not
// sign everyone out.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu       sync.Mutex
	keys     jose.JSONWebKeySet
	fetched  time.Time
	expires  time.Time
	tried    time.Time // the last fetch attempt
	fetchErr error     // its error, if it failed
}

// refetchEvery is how often a fetch may be tried.
const refetchEvery = 30 * time.Second

func (s *keySet) key(ctx context.Context, kid, alg string) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.fetched.IsZero() || now.After(s.expires) {
		if err := s.refresh(ctx, now); err != nil && s.fetched.IsZero() {
			return nil, err
		}
	}
	if k, ok := s.find(kid, alg); ok {
		return k, nil
	}
	if err := s.refresh(ctx, now); err != nil {
		return nil, err
	}
	if k, ok := s.find(kid, alg); ok {
		return k, nil
	}
	return nil, fmt.Errorf("no key %q in the JWK set", kid)
}

// refresh fetches the set unless a fetch was tried within refetchEvery
// (then it returns that attempt's error). A failed fetch keeps the keys
// there were; its error wraps ErrKeysUnavailable. The fetch is every
// caller's, so it does not end with the request that made it (the client's
// timeout bounds it).
func (s *keySet) refresh(ctx context.Context, now time.Time) error {
	if !s.tried.IsZero() && now.Sub(s.tried) < refetchEvery {
		return s.fetchErr
	}
	s.tried = now
	s.fetchErr = s.fetch(context.WithoutCancel(ctx), now)
	if s.fetchErr != nil {
		s.fetchErr = fmt.Errorf("%w: %w", ErrKeysUnavailable, s.fetchErr)
	}
	return s.fetchErr
}

func (s *keySet) find(kid, alg string) (any, bool) {
	for _, k := range s.keys.Keys {
		if (kid == "" || k.KeyID == kid) && (k.Algorithm == "" || k.Algorithm == alg) && k.Use != "enc" {
			return k.Key, true
		}
	}
	return nil, false
}

func (s *keySet) fetch(ctx context.Context, now time.Time) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return fmt.Errorf("jwk_url: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwk_url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwk_url: %s", resp.Status)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("jwk_url: %w", err)
	}
	if len(set.Keys) == 0 {
		return errors.New("jwk_url: the set has no keys")
	}
	s.keys, s.fetched, s.expires = set, now, now.Add(maxAge(resp.Header.Get("Cache-Control")))
	return nil
}

// maxAge reads max-age from a Cache-Control header (an hour without one,
// at least a minute).
func maxAge(cc string) time.Duration {
	for _, part := range strings.Split(cc, ",") {
		var secs int
		if _, err := fmt.Sscanf(strings.TrimSpace(part), "max-age=%d", &secs); err == nil {
			return max(time.Duration(secs)*time.Second, time.Minute)
		}
	}
	return time.Hour
}
