package certificate

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/dromara/dongle/coding/base45"
	"github.com/fxamacker/cbor/v2"
	"github.com/google/uuid"
	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/student"
)

func date(s string) *time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func sample() *Snapshot {
	return &Snapshot{
		ID: uuid.New(), IssuerUDISE: "02110512345", IssuerName: "राजकीय वरिष्ठ माध्यमिक पाठशाला कोटखाई",
		Name: "अनुष्का ठाकुर", FatherName: "राजेश ठाकुर", MotherName: "सुनीता देवी",
		DateOfBirth: date("2012-03-04"), Gender: "FEMALE", Category: "OBC", Grade: 8, Section: "B",
		AdmissionNumber: "12345/0042", AdmissionDate: date("2019-04-01"), LeavingDate: *date("2026-11-30"),
		Reason: ReasonTransferInState, IssuedAt: time.Unix(1795313000, 0).UTC(),
	}
}

type bundle struct {
	signer *DevSigner
	keys   []Key
}

func setup(t *testing.T) bundle {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := NewDevSigner(priv)
	keys, _ := s.Keys(context.Background())
	return bundle{signer: s, keys: keys}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		s := sample()
		payload, err := Seal(ctx, b.signer, s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(payload, Prefix) {
			t.Fatalf("got %q, want prefix %s", payload[:8], Prefix)
		}
		got := Open(payload, b.keys)
		if got.Problem != "" {
			t.Fatalf("got problem %s (%s), want valid", got.Problem, got.Detail)
		}
		want := *s
		want.IssuerName, want.Description = "", ""
		if g := *got.Snapshot; g.Name != want.Name || g.FatherName != want.FatherName || g.MotherName != want.MotherName ||
			!g.DateOfBirth.Equal(*want.DateOfBirth) || g.Gender != want.Gender || g.Category != want.Category ||
			g.Grade != want.Grade || g.Section != want.Section || g.AdmissionNumber != want.AdmissionNumber ||
			!g.AdmissionDate.Equal(*want.AdmissionDate) || !g.LeavingDate.Equal(want.LeavingDate) || g.Reason != want.Reason ||
			!g.IssuedAt.Equal(want.IssuedAt) || g.ID != want.ID || g.IssuerUDISE != want.IssuerUDISE || g.KeyID != b.keys[0].ID {
			t.Errorf("got %+v, want %+v", g, want)
		}
	})

	t.Run("any changed byte fails", func(t *testing.T) {
		t.Parallel()
		payload, err := Seal(ctx, b.signer, sample())
		if err != nil {
			t.Fatal(err)
		}
		raw := coseBytes(t, payload)
		// Flip one bit of the payload's last claim byte (inside the signed
		// content, not the signature) and repack it.
		sigStart := len(raw) - 64
		raw[sigStart-3] ^= 0x01
		got := Open(repack(t, raw), b.keys)
		if got.Problem != BadSignature && got.Problem != BadFormat {
			t.Fatalf("got %q, want BAD_SIGNATURE", got.Problem)
		}
		if got.Snapshot != nil {
			t.Error("claims returned for a payload whose signature failed")
		}
		raw = coseBytes(t, payload)
		raw[len(raw)-1] ^= 0x80 // the signature
		if got := Open(repack(t, raw), b.keys); got.Problem != BadSignature {
			t.Errorf("signature changed: got %q, want BAD_SIGNATURE", got.Problem)
		}
	})

	t.Run("unknown key", func(t *testing.T) {
		t.Parallel()
		payload, err := Seal(ctx, b.signer, sample())
		if err != nil {
			t.Fatal(err)
		}
		other := setup(t)
		if got := Open(payload, other.keys); got.Problem != UnknownKey {
			t.Errorf("got %q, want UNKNOWN_KEY", got.Problem)
		}
	})

	t.Run("bad formats", func(t *testing.T) {
		t.Parallel()
		for name, in := range map[string]string{
			"empty": "", "no prefix": "HC1:ABC", "not base45": Prefix + "abc", "not zlib": Prefix + string(base45.NewStdEncoder().Encode([]byte("hello"))),
			"too long": Prefix + strings.Repeat("A", MaxPayloadChars),
		} {
			if got := Open(in, b.keys); got.Problem != BadFormat {
				t.Errorf("%s: got %q, want BAD_FORMAT", name, got.Problem)
			}
		}
	})

	t.Run("zip bomb refused before parsing", func(t *testing.T) {
		t.Parallel()
		var z bytes.Buffer
		zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
		if _, err := zw.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		got := Open(Prefix+string(base45.NewStdEncoder().Encode(z.Bytes())), b.keys)
		if got.Problem != BadFormat || !strings.Contains(got.Detail, "4 KiB") {
			t.Errorf("got %q (%s), want BAD_FORMAT beyond 4 KiB", got.Problem, got.Detail)
		}
	})
}

func coseBytes(t *testing.T, payload string) []byte {
	t.Helper()
	c, err := base45.NewStdDecoder().Decode([]byte(strings.TrimPrefix(payload, Prefix)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := inflate(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func repack(t *testing.T, raw []byte) string {
	t.Helper()
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return Prefix + string(base45.NewStdEncoder().Encode(z.Bytes()))
}

// longestName is a name of n characters made of random Devanagari
// syllables (consonant + vowel sign, a conjunct now and then): the content
// that compresses worst, so the QR it gives bounds every real name's.
func longestName(rng *rand.Rand, n int) string {
	var r []rune
	for len(r) < n {
		r = append(r, rune(0x915+rng.IntN(37)))
		switch rng.IntN(4) {
		case 0:
			r = append(r, 0x94d, rune(0x915+rng.IntN(37))) // virama: a conjunct
		case 1, 2:
			r = append(r, rune(0x93e+rng.IntN(15)))
		}
		if rng.IntN(6) == 0 {
			r = append(r, ' ')
		}
	}
	r = r[:n]
	if r[n-1] == ' ' {
		r[n-1] = 'क'
	}
	return string(r)
}

// atLimits is the sample with these names, the longest admission number
// and a class-12 stream: the biggest certificate for those names.
func atLimits(name, father, mother string) *Snapshot {
	s := sample()
	s.Name, s.FatherName, s.MotherName = name, father, mother
	s.AdmissionNumber = strings.Repeat("9/", student.MaxAdmissionNumberChars/2)
	s.Stream, s.Grade = "SCIENCE_NON_MEDICAL", 12
	return s
}

// sealQR signs s and encodes its QR code.
func sealQR(t *testing.T, b bundle, s *Snapshot) (string, *QR) {
	t.Helper()
	payload, err := Seal(context.Background(), b.signer, s)
	if err != nil {
		t.Fatal(err)
	}
	q, err := NewQR(payload)
	if err != nil {
		t.Fatal(err)
	}
	return payload, q
}

func TestQRVersionWithLongestNames(t *testing.T) {
	t.Parallel()
	b := setup(t)
	worst := 0
	for i := range 50 {
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		s := atLimits(longestName(rng, student.MaxNameChars), longestName(rng, student.MaxParentNameChars),
			longestName(rng, student.MaxParentNameChars))
		payload, q := sealQR(t, b, s)
		worst = max(worst, q.Version)
		// The bound holds whatever the content: zlib never adds more than
		// 16 bytes to the COSE message.
		if n := len(coseBytes(t, payload)) + 16; len(payload) > len(Prefix)+3*(n/2)+2*(n%2) {
			t.Errorf("payload %d characters, beyond the stored-zlib bound for a %d-byte message", len(payload), n-16)
		}
		if i == 0 {
			t.Logf("payload %d characters, QR version %d: %s", len(payload), q.Version, s.Name)
			// The code scans back to the same payload.
			img, err := q.PNG(4)
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeQR(t, img); got != payload {
				t.Fatalf("scanned %q, want the payload", got)
			}
		}
	}
	t.Logf("worst QR version over 50 sets of longest names: %d", worst)
	if worst > MaxQRVersion {
		t.Errorf("got QR version %d, want ≤ %d", worst, MaxQRVersion)
	}
}

func decodeQR(t *testing.T, pngBytes []byte) string {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(pngBytes))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// The image is the code alone: PURE_BARCODE (gozxing's finder-pattern
	// detector misreads about 2% of valid codes in a larger picture).
	res, err := gozxingqr.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetText()
}

func TestPackedText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"अनुष्का ठाकुर", "Anushka Thakur", "क्\u200dष", "Zoë", ""} {
		b, err := cbor.Marshal(text(s))
		if err != nil {
			t.Fatal(err)
		}
		var got text
		if err := decMode.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if string(got) != s {
			t.Errorf("got %q, want %q", got, s)
		}
	}
}

// TestCheckFits: a snapshot the register of the school the child moves to
// could not hold (an old record's long or bracketed name) is refused before
// the child leaves, naming the field.
func TestCheckFits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		edit  func(*Snapshot)
		field string
	}{
		{"fits", func(*Snapshot) {}, ""},
		{"digits in an old name fit", func(s *Snapshot) { s.Name = "Ram Kumar 2" }, ""},
		{"joiners fit", func(s *Snapshot) { s.Name = "क्\u200dष" }, ""},
		{"too long", func(s *Snapshot) { s.Name = strings.Repeat("अ", student.MaxNameChars+1) }, "name"},
		{"brackets", func(s *Snapshot) { s.Name = "Ram Kumar (Junior)" }, "name"},
		{"another script", func(s *Snapshot) { s.MotherName = "Анна" }, "motherName"},
		{"S/O in a father's name", func(s *Snapshot) { s.FatherName = "S/O Shyam Lal" }, "fatherName"},
		{"admission number", func(s *Snapshot) { s.AdmissionNumber = "12#4" }, "admissionNumber"},
	} {
		s := sample()
		c.edit(s)
		err := s.CheckFits()
		switch {
		case c.field == "" && err != nil:
			t.Errorf("%s: got %v, want it to fit", c.name, err)
		case c.field != "" && (fault.As(err).Code != CodeDoesNotFit || !strings.HasPrefix(err.Error(), c.field+":")):
			t.Errorf("%s: got %v, want DOES_NOT_FIT naming %s", c.name, err, c.field)
		}
	}
}
