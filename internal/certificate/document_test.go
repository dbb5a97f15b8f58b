package certificate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dromara/dongle/coding/base45"
	"github.com/fxamacker/cbor/v2"
	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/shala-edu/shala/internal/pdf"
)

// needTools skips where Chromium or poppler are missing, except in CI
// (.ci/run installs them), where their absence fails the test.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (.ci/run installs chromium and poppler-utils)", tool)
			}
			t.Skipf("%s not installed (apt-get install -y chromium poppler-utils)", tool)
		}
	}
}

// RenderPDF renders r's certificate with a fresh pool (tests).
func renderPDF(t *testing.T, r *Record) []byte {
	t.Helper()
	needTools(t, "chromium", "pdftotext", "pdftoppm")
	pool, err := pdf.New(context.Background(), pdf.Options{Tabs: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	html, err := Document(r, "https://shala.example.org", pdf.FontFaces())
	if err != nil {
		t.Fatal(err)
	}
	out, err := pool.Render(context.Background(), html)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ScanPDF rasterises the PDF's page (pdftoppm, 200 dpi) and reads its QR
// code with a QR decoder.
func scanPDF(t *testing.T, pdfBytes []byte) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "c.pdf")
	if err := os.WriteFile(file, pdfBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pdftoppm", "-r", "200", "-png", "-singlefile", file, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "page.png"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("no QR code found on the page: %v", err)
	}
	return res.GetText()
}

func pdfText(t *testing.T, pdfBytes []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "c.pdf")
	if err := os.WriteFile(file, pdfBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-enc", "UTF-8", file, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

// verifyWithStdlib checks a payload's signature the way an outside
// verifier would: undo base45 and zlib, take the COSE_Sign1 apart, rebuild
// the Sig_structure (RFC 9052 §4.4) and verify it with crypto/ed25519 and
// the published key — none of shala's code.
func verifyWithStdlib(t *testing.T, payload string, ks KeySet) bool {
	t.Helper()
	z, err := base45.NewStdDecoder().Decode([]byte(strings.TrimPrefix(payload, Prefix)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := inflate(z)
	if err != nil {
		t.Fatal(err)
	}
	var tag cbor.Tag
	if err := cbor.Unmarshal(raw, &tag); err != nil || tag.Number != 18 {
		t.Fatalf("not a tagged COSE_Sign1: %v", err)
	}
	parts, ok := tag.Content.([]any)
	if !ok || len(parts) != 4 {
		t.Fatalf("COSE_Sign1 is not a 4-element array")
	}
	protected, payloadBytes, sig := parts[0].([]byte), parts[2].([]byte), parts[3].([]byte)
	var hdr map[int]any
	if err := cbor.Unmarshal(protected, &hdr); err != nil {
		t.Fatal(err)
	}
	kid := string(hdr[4].([]byte))
	toBeSigned, err := cbor.Marshal([]any{"Signature1", protected, []byte{}, payloadBytes})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks.Keys {
		if k.Kid == kid {
			keys, err := ParseKeySet(mustJSON(t, KeySet{Keys: []JWK{k}}))
			if err != nil {
				t.Fatal(err)
			}
			return ed25519.Verify(keys[0].Public, toBeSigned, sig)
		}
	}
	t.Fatalf("kid %q not in the key set", kid)
	return false
}

func TestDocumentPDF(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := sample()
	payload, err := Seal(context.Background(), b.signer, s)
	if err != nil {
		t.Fatal(err)
	}
	out := renderPDF(t, &Record{Snapshot: *s, Payload: payload})

	t.Run("the Hindi names come out of the PDF intact", func(t *testing.T) {
		// poppler's word-gap heuristic puts a space after some vowel-sign
		// clusters Skia positions (ठाकु र for ठाकुर, with any font), so
		// spaces are ignored; every character, conjunct and matra must be
		// there, in order.
		text := strings.Join(strings.Fields(pdfText(t, out)), "")
		for _, want := range []string{s.Name, s.FatherName, s.MotherName, s.IssuerName, s.ID.String()} {
			if !strings.Contains(text, strings.Join(strings.Fields(want), "")) {
				t.Errorf("pdftotext does not find %q in:\n%s", want, text)
			}
		}
	})
	t.Run("the printed QR scans and verifies with crypto/ed25519", func(t *testing.T) {
		got := scanPDF(t, out)
		if got != payload {
			t.Fatalf("scanned %q, want the payload", got)
		}
		if !verifyWithStdlib(t, got, NewKeySet(b.keys)) {
			t.Error("signature does not verify with the published key")
		}
	})
}
