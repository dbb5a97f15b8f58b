// Package auth verifies and mints the JWTs apps already hold for Hasura, so
// shala's few REST endpoints (listing, exports, quick links) authorise
// exactly as Hasura does and never invent a second login. The key
// configuration is Hasura's own HASURA_GRAPHQL_JWT_SECRET JSON: the same
// string configures both.
package auth

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultNamespace is where Hasura looks for its claims by default.
const DefaultNamespace = "https://hasura.io/jwt/claims"

// Config is HASURA_GRAPHQL_JWT_SECRET, as Hasura documents it
// (https://hasura.io/docs/latest/auth/authentication/jwt/). claims_map is
// not supported: a config using it is refused rather than misread.
type Config struct {
	// Type is the algorithm: HS256/384/512 (Key is the shared secret, at
	// least 32 characters), RS256/384/512, ES256/384/512 or Ed25519 (Key is
	// a PEM public key or certificate). Empty with JWKURL.
	Type string `json:"type"`
	Key  string `json:"key"`
	// JWKURL serves a JWK set; keys are chosen by the token's kid.
	JWKURL string `json:"jwk_url"`
	// ClaimsNamespace (default DefaultNamespace) or ClaimsNamespacePath (a
	// JSON path such as "$" or "$.hasura.claims") locate the x-hasura-*
	// claims; ClaimsFormat "stringified_json" means they are a JSON string.
	ClaimsNamespace     string    `json:"claims_namespace"`
	ClaimsNamespacePath string    `json:"claims_namespace_path"`
	ClaimsFormat        string    `json:"claims_format"`
	Audience            audiences `json:"audience"`
	Issuer              string    `json:"issuer"`
	// AllowedSkew is the leeway, in seconds, on exp/nbf/iat.
	AllowedSkew int `json:"allowed_skew"`
	// Header says where the token travels: Authorization (Bearer, the
	// default), Cookie (Name), or CustomHeader (Name).
	Header    *Header         `json:"header"`
	ClaimsMap json.RawMessage `json:"claims_map"`
}

// Header is Config.Header.
type Header struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// audiences accepts a string or a list of strings.
type audiences []string

func (a *audiences) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audiences{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("audience: want a string or a list of strings")
	}
	*a = many
	return nil
}

// ParseConfig reads a HASURA_GRAPHQL_JWT_SECRET value. Errors name the
// offending key.
func ParseConfig(s string) (*Config, error) {
	var c Config
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("jwt secret: %w", err)
	}
	if len(c.ClaimsMap) > 0 && string(c.ClaimsMap) != "null" {
		return nil, errors.New("jwt secret: claims_map is not supported by shala; put the x-hasura-* claims under a namespace")
	}
	switch {
	case c.JWKURL != "" && c.Key != "":
		return nil, errors.New("jwt secret: key and jwk_url are exclusive")
	case c.JWKURL == "" && c.Key == "":
		return nil, errors.New("jwt secret: key or jwk_url is required")
	case c.Key != "":
		if _, err := method(c.Type); err != nil {
			return nil, err
		}
	}
	if c.ClaimsNamespace != "" && c.ClaimsNamespacePath != "" {
		return nil, errors.New("jwt secret: claims_namespace and claims_namespace_path are exclusive")
	}
	if c.ClaimsNamespacePath != "" {
		if _, err := splitPath(c.ClaimsNamespacePath); err != nil {
			return nil, err
		}
	}
	switch c.ClaimsFormat {
	case "", "json", "stringified_json":
	default:
		return nil, fmt.Errorf("jwt secret: claims_format: want json or stringified_json, got %q", c.ClaimsFormat)
	}
	if c.Header != nil {
		switch c.Header.Type {
		case "Authorization":
		case "Cookie", "CustomHeader":
			if c.Header.Name == "" {
				return nil, fmt.Errorf("jwt secret: header.name is required for %s", c.Header.Type)
			}
		default:
			return nil, fmt.Errorf("jwt secret: header.type: want Authorization, Cookie or CustomHeader, got %q", c.Header.Type)
		}
	}
	if c.AllowedSkew < 0 {
		return nil, errors.New("jwt secret: allowed_skew must not be negative")
	}
	return &c, nil
}

// method is the signing method Hasura calls typ.
func method(typ string) (jwt.SigningMethod, error) {
	switch typ {
	case "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512":
		return jwt.GetSigningMethod(typ), nil
	case "Ed25519", "EdDSA":
		return jwt.SigningMethodEdDSA, nil
	}
	return nil, fmt.Errorf("jwt secret: type: want HS256/384/512, RS256/384/512, ES256/384/512 or Ed25519, got %q", typ)
}

// verificationKey is the key a token of Config c is checked with.
func (c *Config) verificationKey() (any, error) {
	m, err := method(c.Type)
	if err != nil {
		return nil, err
	}
	switch m.(type) {
	case *jwt.SigningMethodHMAC:
		if len(c.Key) < 32 {
			return nil, errors.New("jwt secret: key: an HMAC key must be at least 32 characters (as Hasura requires)")
		}
		return []byte(c.Key), nil
	case *jwt.SigningMethodRSA:
		return publicKey(c.Key, func(b []byte) (crypto.PublicKey, error) { return jwt.ParseRSAPublicKeyFromPEM(b) })
	case *jwt.SigningMethodECDSA:
		return publicKey(c.Key, func(b []byte) (crypto.PublicKey, error) { return jwt.ParseECPublicKeyFromPEM(b) })
	default:
		return publicKey(c.Key, jwt.ParseEdPublicKeyFromPEM)
	}
}

func publicKey(pem string, parse func([]byte) (crypto.PublicKey, error)) (any, error) {
	k, err := parse([]byte(pem))
	if err != nil {
		return nil, fmt.Errorf("jwt secret: key: %w", err)
	}
	return k, nil
}

// splitPath splits a claims_namespace_path ("$", "$.a.b", "$.a['x.y']")
// into keys.
func splitPath(p string) ([]string, error) {
	bad := fmt.Errorf("jwt secret: claims_namespace_path: want a JSON path like $.hasura.claims, got %q", p)
	if !strings.HasPrefix(p, "$") {
		return nil, bad
	}
	var keys []string
	rest := p[1:]
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "['"):
			end := strings.Index(rest, "']")
			if end < 2 {
				return nil, bad
			}
			keys, rest = append(keys, rest[2:end]), rest[end+2:]
		case strings.HasPrefix(rest, "."):
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			if end == 0 {
				return nil, bad
			}
			keys, rest = append(keys, rest[:end]), rest[end:]
		default:
			return nil, bad
		}
	}
	return keys, nil
}

// Claims are the Hasura claims of a verified token.
type Claims struct {
	Subject      string
	ExpiresAt    time.Time
	AllowedRoles []string
	DefaultRole  string
	// Vars are the other x-hasura-* claims, keys lower-cased, values as
	// strings (as Hasura passes them to permissions).
	Vars map[string]string
}

// Session is the session variables Hasura would derive for a request with
// these claims that asks for role (its X-Hasura-Role header; "" for the
// default role): the chosen role must be one of the allowed roles.
func (c *Claims) Session(role string) (map[string]string, error) {
	if role == "" {
		role = c.DefaultRole
	}
	allowed := false
	for _, r := range c.AllowedRoles {
		if strings.EqualFold(r, role) {
			allowed, role = true, r
			break
		}
	}
	if !allowed {
		return nil, fmt.Errorf("%w: role %q is not in x-hasura-allowed-roles", ErrForbidden, role)
	}
	s := make(map[string]string, len(c.Vars)+1)
	for k, v := range c.Vars {
		s[k] = v
	}
	s["x-hasura-role"] = role
	return s, nil
}

// Errors Verify and Session wrap. ErrInvalid means the token cannot be
// trusted (401); ErrForbidden that it is valid but does not allow what was
// asked (403).
var (
	ErrInvalid   = errors.New("invalid token")
	ErrForbidden = errors.New("not allowed")
	// ErrKeysUnavailable: the jwk_url key set could not be fetched, and
	// no keys are at hand to check the token with (try again).
	ErrKeysUnavailable = errors.New("JWT keys unavailable")
)
