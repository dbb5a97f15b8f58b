package certificate

import (
	"context"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/certificate/certtest"
	"github.com/shala-edu/shala/internal/pdf"
	"github.com/shala-edu/shala/internal/student"
)

// renderPDF renders r's certificate with a fresh pool.
func renderPDF(t *testing.T, r *Record) []byte {
	t.Helper()
	certtest.NeedTools(t, "chromium", "pdftotext", "pdftoppm")
	pool, err := pdf.New(context.Background(), pdf.Options{Tabs: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	page, err := Document(r, "https://shala.example.org")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pool.Render(context.Background(), page.Style, page.Body)
	if err != nil {
		t.Fatal(err)
	}
	return out
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
		text := strings.Join(strings.Fields(certtest.PDFText(t, out)), "")
		for _, want := range []string{s.Name, s.FatherName, s.MotherName, s.IssuerName, s.ID.String()} {
			if !strings.Contains(text, strings.Join(strings.Fields(want), "")) {
				t.Errorf("pdftotext does not find %q in:\n%s", want, text)
			}
		}
	})
	t.Run("the printed QR scans and verifies with crypto/ed25519", func(t *testing.T) {
		got := certtest.ScanPDF(t, out)
		if got != payload {
			t.Fatalf("scanned %q, want the payload", got)
		}
		if !certtest.VerifyWithStdlib(t, got, mustJSON(t, NewKeySet(b.keys))) {
			t.Error("signature does not verify with the published key")
		}
	})
}

// TestDocumentPDFLongestNames: names at the limits, with conjuncts, matras,
// a nukta and an explicit half form (ZWJ), print whole and the version-16
// code they make still scans from the page.
func TestDocumentPDFLongestNames(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := atLimits(fit("श्रीमती क्\u200dषमा प्रज्ञा त्रिपाठी ज़ैदी शर्मा वर्मा", student.MaxNameChars),
		fit("श्री द्वारिकाप्रसाद क्षत्रिय ग्रामीण हृदय", student.MaxParentNameChars),
		fit("श्रीमती स्त्रीधन ऋद्धि सिद्धि ठाकुर", student.MaxParentNameChars))
	payload, q := sealQR(t, b, s)
	t.Logf("payload %d characters, QR version %d", len(payload), q.Version)
	if q.Version > MaxQRVersion {
		t.Fatalf("QR version %d, want ≤ %d", q.Version, MaxQRVersion)
	}
	out := renderPDF(t, &Record{Snapshot: *s, Payload: payload})
	if got := certtest.ScanPDF(t, out); got != payload {
		t.Fatalf("scanned %q, want the payload", got)
	}
	text := strings.Join(strings.Fields(certtest.PDFText(t, out)), "")
	for _, want := range []string{s.Name, s.FatherName, s.MotherName} {
		if want = strings.Join(strings.Fields(want), ""); !strings.Contains(text, want) {
			t.Errorf("pdftotext does not find %q in:\n%s", want, text)
		}
	}
}

// fit makes s exactly n characters long (cut, or padded with "अ").
func fit(s string, n int) string {
	r := []rune(s)
	for len(r) < n {
		r = append(r, 'अ')
	}
	r = r[:n]
	if r[n-1] == ' ' {
		r[n-1] = 'अ'
	}
	return string(r)
}
