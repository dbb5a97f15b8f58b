package auth

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer mints short-lived Hasura JWTs (e.g. for a moderator's quick-login
// link) that Hasura, configured with the matching HASURA_GRAPHQL_JWT_SECRET,
// accepts: same algorithm, same claims location, issuer and audience.
type Issuer struct {
	cfg    *Config
	method jwt.SigningMethod
	key    any
	kid    string
	now    func() time.Time
}

// NewIssuer returns an Issuer for cfg. With an HMAC type the shared key is
// cfg.Key; with Ed25519, signingKey is the private key whose public half
// cfg.Key (or the JWK set, under kid) holds. RSA/ECDSA minting is not
// offered: shala has no use for it.
func NewIssuer(cfg *Config, signingKey ed25519.PrivateKey, kid string, now func() time.Time) (*Issuer, error) {
	if now == nil {
		now = time.Now
	}
	typ := cfg.Type
	if typ == "" && signingKey != nil {
		typ = "Ed25519"
	}
	m, err := method(typ)
	if err != nil {
		return nil, err
	}
	i := &Issuer{cfg: cfg, method: m, kid: kid, now: now}
	switch m.(type) {
	case *jwt.SigningMethodHMAC:
		if len(cfg.Key) < 32 {
			return nil, errors.New("jwt secret: key: an HMAC key must be at least 32 characters")
		}
		i.key = []byte(cfg.Key)
	case *jwt.SigningMethodEd25519:
		if len(signingKey) != ed25519.PrivateKeySize {
			return nil, errors.New("mint: an Ed25519 private key is required")
		}
		i.key = signingKey
	default:
		return nil, fmt.Errorf("mint: %s tokens are not minted by shala (use HS* or Ed25519)", typ)
	}
	if cfg.ClaimsNamespacePath != "" {
		if _, err := splitPath(cfg.ClaimsNamespacePath); err != nil {
			return nil, err
		}
	}
	return i, nil
}

// Mint returns a token for subject valid for ttl, with allowed roles,
// default role and extra x-hasura-* variables (keys lower-cased).
func (i *Issuer) Mint(subject string, roles []string, defaultRole string, vars map[string]string, ttl time.Duration) (string, error) {
	if len(roles) == 0 || defaultRole == "" {
		return "", errors.New("mint: roles and a default role are required")
	}
	hc := map[string]any{"x-hasura-allowed-roles": roles, "x-hasura-default-role": defaultRole}
	for k, v := range vars {
		hc[strings.ToLower(k)] = v
	}
	var hasura any = hc
	if i.cfg.ClaimsFormat == "stringified_json" {
		b, err := json.Marshal(hc)
		if err != nil {
			return "", err
		}
		hasura = string(b)
	}
	now := i.now()
	claims := jwt.MapClaims{"sub": subject, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if i.cfg.Issuer != "" {
		claims["iss"] = i.cfg.Issuer
	}
	if len(i.cfg.Audience) == 1 {
		claims["aud"] = i.cfg.Audience[0]
	} else if len(i.cfg.Audience) > 1 {
		claims["aud"] = []string(i.cfg.Audience)
	}
	switch {
	case i.cfg.ClaimsNamespacePath != "":
		keys, _ := splitPath(i.cfg.ClaimsNamespacePath)
		if len(keys) == 0 {
			m, ok := hasura.(map[string]any)
			if !ok {
				return "", errors.New("mint: stringified claims cannot sit at the token root")
			}
			for k, v := range m {
				claims[k] = v
			}
			break
		}
		node := map[string]any(claims)
		for _, k := range keys[:len(keys)-1] {
			next := map[string]any{}
			node[k] = next
			node = next
		}
		node[keys[len(keys)-1]] = hasura
	case i.cfg.ClaimsNamespace != "":
		claims[i.cfg.ClaimsNamespace] = hasura
	default:
		claims[DefaultNamespace] = hasura
	}
	t := jwt.NewWithClaims(i.method, claims)
	if i.kid != "" {
		t.Header["kid"] = i.kid
	}
	return t.SignedString(i.key)
}
