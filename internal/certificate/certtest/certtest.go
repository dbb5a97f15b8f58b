// Package certtest holds what tests of certificates share: reading the QR
// code back from a rendered PDF (pdftoppm and a QR decoder), its text
// (pdftotext), and verifying a payload's signature as an outside verifier
// would, with crypto/ed25519 and the published key set only.
package certtest

import (
	"bytes"
	"compress/zlib"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dromara/dongle/coding/base45"
	"github.com/fxamacker/cbor/v2"
	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// NeedTools skips where Chromium or poppler are missing, except in CI
// (.ci/run installs them), where their absence fails the test.
func NeedTools(t *testing.T, tools ...string) {
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

// ScanPDF rasterises the PDF's page (pdftoppm, 300 dpi, no anti-aliasing)
// and reads its QR code with gozxing, or zbar (zbarimg) where gozxing's
// detector misses it.
func ScanPDF(t *testing.T, pdfBytes []byte) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "c.pdf")
	if err := os.WriteFile(file, pdfBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("pdftoppm", "-r", "300", "-aa", "no", "-aaVector", "no", "-png", "-singlefile", file, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	page := filepath.Join(dir, "page.png")
	b, err := os.ReadFile(page)
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
	if err == nil {
		return res.GetText()
	}
	// gozxing's finder-pattern detector misses about 2% of valid codes
	// (zbar reads them all): ask zbar before calling the code unreadable.
	if _, lerr := exec.LookPath("zbarimg"); lerr != nil {
		t.Fatalf("gozxing found no QR code on the page (%v) and zbarimg is not installed", err)
	}
	out, zerr := exec.Command("zbarimg", "-q", "--raw", page).Output()
	if zerr != nil {
		t.Fatalf("no QR code found on the page: gozxing: %v; zbarimg: %v", err, zerr)
	}
	return strings.TrimRight(string(out), "\n")
}

func PDFText(t *testing.T, pdfBytes []byte) string {
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

// VerifyWithStdlib checks a payload's signature the way an outside
// verifier would: undo base45 and zlib, take the COSE_Sign1 apart, rebuild
// the Sig_structure (RFC 9052 §4.4) and verify it with crypto/ed25519 and
// the published key — none of shala's code.
func VerifyWithStdlib(t *testing.T, payload string, keySetJSON []byte) bool {
	t.Helper()
	z, err := base45.NewStdDecoder().Decode([]byte(strings.TrimPrefix(payload, "SLC1:")))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, 4096))
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
	var ks struct {
		Keys []struct{ Kty, Crv, Kid, X string }
	}
	if err := json.Unmarshal(keySetJSON, &ks); err != nil {
		t.Fatal(err)
	}
	for _, k := range ks.Keys {
		if k.Kid == kid && k.Kty == "OKP" && k.Crv == "Ed25519" {
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if err != nil || len(x) != ed25519.PublicKeySize {
				t.Fatalf("key %s: x is not an Ed25519 public key", kid)
			}
			return ed25519.Verify(ed25519.PublicKey(x), toBeSigned, sig)
		}
	}
	t.Fatalf("kid %q not in the key set", kid)
	return false
}
