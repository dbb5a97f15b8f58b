package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TransitKeyVersion is one version of an asymmetric transit key.
type TransitKeyVersion struct {
	Version   int
	PublicKey []byte // raw public key (ed25519: 32 bytes)
	Created   time.Time
}

// TransitKey is what GET /transit/keys/:name says about a key.
type TransitKey struct {
	Name     string
	Type     string
	Latest   int
	Versions []TransitKeyVersion // oldest first
}

// TransitKey reads the key name on the transit engine at mount: its type
// and the public key of every version. The private keys never leave Vault.
func (c *Client) TransitKey(ctx context.Context, mount, name string) (_ TransitKey, err error) {
	defer func(start time.Time) { c.metrics.observe("transit_key", start, err) }(time.Now())
	s, err := c.api.Logical().ReadWithContext(ctx, mount+"/keys/"+name)
	if err != nil {
		return TransitKey{}, fmt.Errorf("read vault transit key %s/%s: %w", mount, name, err)
	}
	if s == nil || s.Data == nil {
		return TransitKey{}, fmt.Errorf("%w: transit key %s/%s", ErrNotFound, mount, name)
	}
	return parseTransitKey(s.Data)
}

func parseTransitKey(data map[string]any) (TransitKey, error) {
	k := TransitKey{}
	k.Name, _ = data["name"].(string)
	k.Type, _ = data["type"].(string)
	latest, err := jsonInt(data["latest_version"])
	if err != nil {
		return k, fmt.Errorf("transit key %s: latest_version: %w", k.Name, err)
	}
	k.Latest = latest
	keys, _ := data["keys"].(map[string]any)
	for v, raw := range keys {
		n, err := strconv.Atoi(v)
		if err != nil {
			return k, fmt.Errorf("transit key %s: version %q", k.Name, v)
		}
		entry, ok := raw.(map[string]any)
		if !ok {
			return k, fmt.Errorf("transit key %s: version %d has no public key (not an asymmetric key?)", k.Name, n)
		}
		pubText, _ := entry["public_key"].(string)
		pub, err := base64.StdEncoding.DecodeString(pubText)
		if err != nil {
			return k, fmt.Errorf("transit key %s: version %d: public_key: %w", k.Name, n, err)
		}
		created, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(entry["creation_time"]))
		k.Versions = append(k.Versions, TransitKeyVersion{Version: n, PublicKey: pub, Created: created})
	}
	sort.Slice(k.Versions, func(i, j int) bool { return k.Versions[i].Version < k.Versions[j].Version })
	return k, nil
}

func jsonInt(v any) (int, error) {
	switch v := v.(type) {
	case json.Number:
		n, err := v.Int64()
		return int(n), err
	case float64:
		return int(v), nil
	case int:
		return v, nil
	default:
		return 0, fmt.Errorf("not a number: %v", v)
	}
}

// TransitSign signs input with version of key name (0: the latest) and
// returns the raw signature and the version that made it. For ed25519
// keys Vault signs input itself (no prehash).
func (c *Client) TransitSign(ctx context.Context, mount, name string, version int, input []byte) (_ []byte, _ int, err error) {
	defer func(start time.Time) { c.metrics.observe("transit_sign", start, err) }(time.Now())
	body := map[string]any{"input": base64.StdEncoding.EncodeToString(input)}
	if version > 0 {
		body["key_version"] = version
	}
	s, err := c.api.Logical().WriteWithContext(ctx, mount+"/sign/"+name, body)
	if err != nil {
		return nil, 0, fmt.Errorf("vault transit sign %s/%s: %w", mount, name, err)
	}
	if s == nil || s.Data == nil {
		return nil, 0, fmt.Errorf("vault transit sign %s/%s: empty answer", mount, name)
	}
	text, _ := s.Data["signature"].(string)
	// vault:v<version>:<base64>
	parts := strings.SplitN(text, ":", 3)
	if len(parts) != 3 || parts[0] != "vault" || !strings.HasPrefix(parts[1], "v") {
		return nil, 0, fmt.Errorf("vault transit sign %s/%s: unexpected signature format", mount, name)
	}
	v, err := strconv.Atoi(parts[1][1:])
	if err != nil {
		return nil, 0, fmt.Errorf("vault transit sign %s/%s: signature version %q", mount, name, parts[1])
	}
	sig, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, 0, fmt.Errorf("vault transit sign %s/%s: signature: %w", mount, name, err)
	}
	return sig, v, nil
}

// TransitRotate adds a new version of key name; later signatures use it.
func (c *Client) TransitRotate(ctx context.Context, mount, name string) (err error) {
	defer func(start time.Time) { c.metrics.observe("transit_rotate", start, err) }(time.Now())
	if _, err := c.api.Logical().WriteWithContext(ctx, mount+"/keys/"+name+"/rotate", nil); err != nil {
		return fmt.Errorf("vault transit rotate %s/%s: %w", mount, name, err)
	}
	return nil
}
