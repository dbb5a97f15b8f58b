package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/certificate"
)

func TestVerifyCertificateOffline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := certificate.NewDevSigner(priv)
	payload, err := certificate.Seal(ctx, signer, &certificate.Snapshot{ID: uuid.New(), IssuerUDISE: "02110512345",
		Name: "अनुष्का ठाकुर", Gender: "FEMALE", Grade: 8, LeavingDate: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC),
		Reason: certificate.ReasonTransferInState, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := signer.Keys(ctx)
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "keys.json")
	b, _ := json.Marshal(certificate.NewKeySet(keys))
	if err := os.WriteFile(keysFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	q, err := certificate.NewQR(payload)
	if err != nil {
		t.Fatal(err)
	}
	img, err := q.PNG(4)
	if err != nil {
		t.Fatal(err)
	}
	pngFile := filepath.Join(dir, "scan.png")
	if err := os.WriteFile(pngFile, img, 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(string) string { return "" }
	for name, arg := range map[string]string{"payload": payload, "png file": pngFile} {
		var out, errOut bytes.Buffer
		if err := run(ctx, []string{"shala", "verify-certificate", "-keys", keysFile, arg}, env, &out, &errOut); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, errOut.String())
		}
		if s := out.String(); !strings.Contains(s, "VALID SIGNATURE") || !strings.Contains(s, "CHECK ONLINE") || !strings.Contains(s, "अनुष्का ठाकुर") {
			t.Errorf("%s: got %q", name, s)
		}
	}
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"shala", "verify-certificate", "-keys", "http://shala.example/.well-known/shala-keys.json", payload}, env, &out, &errOut); err == nil ||
		!strings.Contains(err.Error(), "https") {
		t.Errorf("a key set over plain http: got %v, want a refusal asking for https", err)
	}
	bad := payload[:len(payload)-3] + "AAA"
	if err := run(ctx, []string{"shala", "verify-certificate", "-keys", keysFile, bad}, env, &out, &errOut); err == nil || !strings.Contains(out.String(), "INVALID") {
		t.Errorf("tampered: got %v, %q", err, out.String())
	}
}
