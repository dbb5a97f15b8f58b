// Package vaulttest serves the parts of Vault's HTTP API that shala uses —
// KV v2 read/write, and the transit engine's ed25519 keys (create, read,
// rotate, sign; real ed25519 underneath, transit.go) — with Vault's
// documented paths, status codes and JSON,
// so tests exercise the real github.com/hashicorp/vault/api client. It exists
// because a Vault server cannot be built on the build machines; it is kept
// honest by following https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2
// field by field.
package vaulttest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running fake of Vault's HTTP API.
type Server struct {
	URL   string
	Token string

	mu     sync.Mutex
	kv     map[string][]map[string]any // "mount/path" → versions
	mounts map[string]bool
	Reads  int // KV reads served, for tests that check caching
	srv    *httptest.Server

	transit map[string]*transitKey // name → key ring, under TransitMount
	// Signs counts transit sign requests served.
	Signs int
}

// New starts a server that accepts token and has a KV v2 engine mounted at
// each of kvMounts (default "secret", as in Vault dev mode). It is closed
// when t ends.
func New(t testing.TB, token string, kvMounts ...string) *Server {
	if len(kvMounts) == 0 {
		kvMounts = []string{"secret"}
	}
	s := &Server{Token: token, kv: map[string][]map[string]any{}, mounts: map[string]bool{}, transit: map[string]*transitKey{}}
	for _, m := range kvMounts {
		s.mounts[m] = true
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Put writes a new version of mount/path, as `vault kv put` would.
func (s *Server) Put(mount, path string, data map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := mount + "/" + path
	s.kv[key] = append(s.kv[key], data)
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Vault-Token") != s.Token {
		writeJSON(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	if rest, ok := strings.CutPrefix(p, TransitMount+"/"); ok {
		s.serveTransit(w, r, rest)
		return
	}
	mount, rest, ok := strings.Cut(p, "/")
	if !ok || !s.mounts[mount] {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{"no handler for route \"" + p + "\". route entry not found."}})
		return
	}
	secretPath, isData := strings.CutPrefix(rest, "data/")
	if !isData {
		writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{}})
		return
	}
	key := mount + "/" + secretPath
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		versions := s.kv[key]
		if len(versions) == 0 {
			// Vault answers a missing KV v2 secret with 404 and no errors.
			writeJSON(w, http.StatusNotFound, map[string]any{"errors": []string{}})
			return
		}
		s.Reads++
		writeJSON(w, http.StatusOK, map[string]any{
			"request_id": requestID(), "lease_id": "", "renewable": false, "lease_duration": 0,
			"data": map[string]any{
				"data":     versions[len(versions)-1],
				"metadata": metadata(len(versions)),
			},
			"wrap_info": nil, "warnings": nil, "auth": nil, "mount_type": "kv",
		})
	case http.MethodPost, http.MethodPut:
		var body struct {
			Data map[string]any `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Data == nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []string{"no data provided"}})
			return
		}
		s.kv[key] = append(s.kv[key], body.Data)
		writeJSON(w, http.StatusOK, map[string]any{
			"request_id": requestID(), "lease_id": "", "renewable": false, "lease_duration": 0,
			"data": metadata(len(s.kv[key])), "wrap_info": nil, "warnings": nil, "auth": nil, "mount_type": "kv",
		})
	default:
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"errors": []string{"unsupported operation"}})
	}
}

func metadata(version int) map[string]any {
	return map[string]any{
		"created_time":    time.Now().UTC().Format(time.RFC3339Nano),
		"custom_metadata": nil,
		"deletion_time":   "",
		"destroyed":       false,
		"version":         version,
	}
}
