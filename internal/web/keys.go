package web

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/internal/certificate"
)

// KeysPath is where the certificate signing keys are published.
const KeysPath = "/.well-known/shala-keys.json"

// Keys serves the JWK set of every certificate signing key version (OKP
// Ed25519, kid, x, not_before/not_after; "use": "dev" for a development
// key). Offline verifiers download it once.
func Keys(log *slog.Logger, signer certificate.Signer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys, err := signer.Keys(r.Context())
		if err != nil {
			log.ErrorContext(r.Context(), "certificate keys", "err", err)
			http.Error(w, "keys unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if err := json.NewEncoder(w).Encode(certificate.NewKeySet(keys)); err != nil {
			log.DebugContext(r.Context(), "write keys", "err", err)
		}
	})
}
