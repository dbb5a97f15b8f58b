// Package vault reads shala's secrets from HashiCorp Vault (KV v2) through
// the official github.com/hashicorp/vault/api client. Secrets never live in
// the repository or the image; environment variables are only the local-dev
// fallback.
package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// Client is a Vault client with a token.
type Client struct {
	api     *vaultapi.Client
	metrics *Metrics // nil: not counted
}

// New returns a client for the Vault at addr authenticating with token.
func New(addr, token string) (*Client, error) {
	cfg := vaultapi.DefaultConfig()
	if cfg.Error != nil {
		return nil, cfg.Error
	}
	cfg.Address = addr
	cfg.Timeout = 10 * time.Second
	cfg.MaxRetries = 2
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.SetToken(token)
	return &Client{api: c}, nil
}

// ErrNotFound means the secret path does not exist.
var ErrNotFound = errors.New("vault: secret not found")

// ReadKV reads the latest version of the KV v2 secret at mount/path and
// returns its string values. Non-string values are an error: every secret
// shala reads is a string.
func (c *Client) ReadKV(ctx context.Context, mount, path string) (_ map[string]string, err error) {
	defer func(start time.Time) { c.metrics.observe("kv_read", start, err) }(time.Now())
	s, err := c.api.KVv2(mount).Get(ctx, path)
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, mount, path)
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("%w: %s/%s", ErrNotFound, mount, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read vault kv %s/%s: %w", mount, path, err)
	}
	out := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("vault kv %s/%s: key %q is %T, want a string", mount, path, k, v)
		}
		out[k] = str
	}
	return out, nil
}
