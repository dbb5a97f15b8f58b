package vaulttest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// TransitMount is where the transit engine is mounted (Vault's default).
const TransitMount = "transit"

// transitKey is a named key ring: version i+1 is versions[i].
type transitKey struct {
	versions []ed25519.PrivateKey
	created  []time.Time
}

// CreateTransitKey creates an ed25519 key named name, as
// `vault write -f transit/keys/<name> type=ed25519` does.
func (s *Server) CreateTransitKey(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.transit[name] == nil {
		s.transit[name] = &transitKey{}
		s.transit[name].rotate()
	}
}

func (k *transitKey) rotate() {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	k.versions = append(k.versions, priv)
	k.created = append(k.created, time.Now().UTC())
}

// serveTransit answers /v1/transit/… as documented at
// https://developer.hashicorp.com/vault/api-docs/secret/transit:
//
//	POST /transit/keys/:name          create (type ed25519 only here)
//	GET  /transit/keys/:name          read: keys map of versions with public_key
//	POST /transit/keys/:name/rotate   new version; answers like read
//	POST /transit/sign/:name          input (base64) [, key_version] → vault:vN:<base64 signature>
func (s *Server) serveTransit(w http.ResponseWriter, r *http.Request, rest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "keys" && r.Method == http.MethodGet:
		k := s.transit[parts[1]]
		if k == nil {
			writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			return
		}
		writeJSON(w, http.StatusOK, envelope(k.read(parts[1])))
	case len(parts) == 2 && parts[0] == "keys" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		var body struct {
			Type string `json:"type"`
		}
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"failed to parse JSON input: " + err.Error()}})
				return
			}
		}
		if body.Type != "ed25519" {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"this test server creates ed25519 keys only"}})
			return
		}
		if s.transit[parts[1]] == nil {
			s.transit[parts[1]] = &transitKey{}
			s.transit[parts[1]].rotate()
		}
		writeJSON(w, http.StatusOK, envelope(s.transit[parts[1]].read(parts[1])))
	case len(parts) == 3 && parts[0] == "keys" && parts[2] == "rotate" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		k := s.transit[parts[1]]
		if k == nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"key not found"}})
			return
		}
		k.rotate()
		writeJSON(w, http.StatusOK, envelope(k.read(parts[1])))
	case len(parts) == 2 && parts[0] == "sign" && (r.Method == http.MethodPost || r.Method == http.MethodPut):
		s.Signs++
		k := s.transit[parts[1]]
		var body struct {
			Input      string `json:"input"`
			KeyVersion int    `json:"key_version"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"failed to parse JSON input: " + err.Error()}})
			return
		}
		if k == nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"signing key not found"}})
			return
		}
		input, err := base64.StdEncoding.DecodeString(body.Input)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"unable to decode input as base64: " + err.Error()}})
			return
		}
		v := body.KeyVersion
		if v == 0 {
			v = len(k.versions)
		}
		if v < 1 || v > len(k.versions) {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"invalid key version"}})
			return
		}
		sig := ed25519.Sign(k.versions[v-1], input)
		writeJSON(w, http.StatusOK, envelope(map[string]any{
			"signature":   "vault:v" + strconv.Itoa(v) + ":" + base64.StdEncoding.EncodeToString(sig),
			"key_version": v,
		}))
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{"no handler for route \"" + TransitMount + "/" + rest + "\". route entry not found."}})
	}
}

func (k *transitKey) read(name string) map[string]any {
	keys := map[string]any{}
	for i, priv := range k.versions {
		keys[strconv.Itoa(i+1)] = map[string]any{
			"creation_time": k.created[i].Format(time.RFC3339Nano),
			"name":          "ed25519",
			"public_key":    base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)),
		}
	}
	return map[string]any{
		"allow_plaintext_backup": false, "auto_rotate_period": 0, "deletion_allowed": false, "derived": false,
		"exportable": false, "imported_key": false, "keys": keys, "latest_version": len(k.versions),
		"min_available_version": 0, "min_decryption_version": 1, "min_encryption_version": 0, "name": name,
		"supports_decryption": false, "supports_derivation": true, "supports_encryption": false, "supports_signing": true,
		"type": "ed25519",
	}
}

func envelope(data map[string]any) map[string]any {
	return map[string]any{"request_id": requestID(), "lease_id": "", "renewable": false, "lease_duration": 0,
		"data": data, "wrap_info": nil, "warnings": nil, "auth": nil, "mount_type": "transit"}
}
