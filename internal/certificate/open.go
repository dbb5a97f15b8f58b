package certificate

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/shala-edu/shala/internal/vault"
)

// OpenSigner builds the signer shala runs with: Vault transit key name on
// mount when vaultAddr is set (checked now: the key must exist and be
// ed25519), else the development key under dataDir — said loudly at
// start-up, and marked "use": "dev" in the published key set. metrics
// (nil: none) counts its calls to Vault.
func OpenSigner(ctx context.Context, vaultAddr, vaultToken, mount, name, dataDir string, metrics *vault.Metrics, log *slog.Logger) (Signer, error) {
	if vaultAddr != "" {
		client, err := vault.New(vaultAddr, vaultToken)
		if err != nil {
			return nil, err
		}
		client = client.WithMetrics(metrics)
		s := NewTransitSigner(client, mount, name)
		k, err := s.SigningKey(ctx)
		if err != nil {
			return nil, fmt.Errorf("SHALA_CERTIFICATE_KEY: %w (create it: vault write -f %s/keys/%s type=ed25519)", err, mount, name)
		}
		log.Info("certificates are signed in Vault transit", "key", mount+"/"+name, "kid", k.ID)
		return s, nil
	}
	path := filepath.Join(dataDir, "dev-certificate-key")
	s, created, err := OpenDevSigner(path)
	if err != nil {
		return nil, err
	}
	k, _ := s.SigningKey(ctx)
	log.Warn("DEVELOPMENT certificate signing key in use (no Vault): certificates verify only against this machine's key set, marked \"use\": \"dev\"",
		"path", path, "kid", k.ID, "created", created)
	return s, nil
}
