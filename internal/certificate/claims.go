package certificate

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/student"
)

// claims is the QR's CBOR map: a CWT claims set (RFC 8392) — iss, iat and
// cti at their registered keys — with the certificate's own claims at
// negative keys, each one byte on the wire. Dates are whole days since
// 1970-01-01 (RFC 8943's representation, untagged: the key says it is a
// date); enumerations are indexes into their append-only lists; names are
// "packed text" (see packText). The README documents every key.
type claims struct {
	Issuer          string `cbor:"1,keyasint"`  // iss: issuing school's UDISE code
	IssuedAt        int64  `cbor:"6,keyasint"`  // iat: seconds since 1970-01-01 UTC
	ID              []byte `cbor:"7,keyasint"`  // cti: certificate id, 16 bytes
	Name            text   `cbor:"-1,keyasint"` // student's name
	FatherName      *text  `cbor:"-2,keyasint,omitempty"`
	MotherName      *text  `cbor:"-3,keyasint,omitempty"`
	DateOfBirth     *int64 `cbor:"-4,keyasint,omitempty"`
	Gender          int    `cbor:"-5,keyasint"` // index in student.Genders
	Category        *int   `cbor:"-6,keyasint,omitempty"`
	Grade           int    `cbor:"-7,keyasint"`
	Section         string `cbor:"-8,keyasint,omitempty"`
	Stream          any    `cbor:"-9,keyasint,omitempty"` // index in student.Streams, or the stream's id as text
	AdmissionNumber *text  `cbor:"-10,keyasint,omitempty"`
	AdmissionDate   *int64 `cbor:"-11,keyasint,omitempty"`
	LeavingDate     int64  `cbor:"-12,keyasint"`
	Reason          int    `cbor:"-13,keyasint"` // index in Reasons
}

var epoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

func days(t time.Time) int64 {
	d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return int64(d.Sub(epoch).Hours() / 24)
}

func fromDays(n int64) time.Time { return epoch.AddDate(0, 0, int(n)) }

func optDays(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	d := days(*t)
	return &d
}

func optText(s string) *text {
	if s == "" {
		return nil
	}
	t := text(s)
	return &t
}

func toClaims(s *Snapshot) (*claims, error) {
	c := &claims{
		Issuer: s.IssuerUDISE, IssuedAt: s.IssuedAt.Unix(), ID: s.ID[:],
		Name: text(s.Name), FatherName: optText(s.FatherName), MotherName: optText(s.MotherName),
		DateOfBirth: optDays(s.DateOfBirth), Grade: s.Grade, Section: s.Section,
		AdmissionNumber: optText(s.AdmissionNumber), AdmissionDate: optDays(s.AdmissionDate),
		LeavingDate: days(s.LeavingDate),
	}
	var err error
	if c.Gender, err = indexOf(student.Genders, s.Gender); err != nil {
		return nil, fmt.Errorf("gender: %w", err)
	}
	if s.Category != "" {
		i, err := indexOf(student.Categories, s.Category)
		if err != nil {
			return nil, fmt.Errorf("category: %w", err)
		}
		c.Category = &i
	}
	if s.Stream != "" {
		if i, err := indexOf(student.Streams, s.Stream); err == nil {
			c.Stream = i
		} else {
			c.Stream = s.Stream
		}
	}
	if c.Reason, err = indexOf(reasonNames(), string(s.Reason)); err != nil {
		return nil, fmt.Errorf("reason: %w", err)
	}
	return c, nil
}

func reasonNames() []string {
	out := make([]string, len(Reasons))
	for i, r := range Reasons {
		out[i] = string(r)
	}
	return out
}

func at[T any](list []T, i int, what string) (T, error) {
	var zero T
	if i < 0 || i >= len(list) {
		return zero, fmt.Errorf("%s: unknown index %d", what, i)
	}
	return list[i], nil
}

// snapshot turns verified claims back into a snapshot (without the school's
// name and description, which the QR does not carry).
func (c *claims) snapshot(kid string) (*Snapshot, error) {
	id, err := uuid.FromBytes(c.ID)
	if err != nil {
		return nil, fmt.Errorf("cti: %w", err)
	}
	s := &Snapshot{ID: id, IssuerUDISE: c.Issuer, IssuedAt: time.Unix(c.IssuedAt, 0).UTC(), KeyID: kid,
		Name: string(c.Name), Grade: c.Grade, Section: c.Section, LeavingDate: fromDays(c.LeavingDate)}
	if c.FatherName != nil {
		s.FatherName = string(*c.FatherName)
	}
	if c.MotherName != nil {
		s.MotherName = string(*c.MotherName)
	}
	if c.AdmissionNumber != nil {
		s.AdmissionNumber = string(*c.AdmissionNumber)
	}
	if c.DateOfBirth != nil {
		t := fromDays(*c.DateOfBirth)
		s.DateOfBirth = &t
	}
	if c.AdmissionDate != nil {
		t := fromDays(*c.AdmissionDate)
		s.AdmissionDate = &t
	}
	if s.Gender, err = at(student.Genders, c.Gender, "gender"); err != nil {
		return nil, err
	}
	if c.Category != nil {
		if s.Category, err = at(student.Categories, *c.Category, "category"); err != nil {
			return nil, err
		}
	}
	switch v := c.Stream.(type) {
	case nil:
	case uint64:
		if s.Stream, err = at(student.Streams, int(v), "stream"); err != nil {
			return nil, err
		}
	case string:
		s.Stream = v
	default:
		return nil, fmt.Errorf("stream: unexpected %T", v)
	}
	if s.Reason, err = at(Reasons, c.Reason, "reason"); err != nil {
		return nil, err
	}
	return s, nil
}

// text is a name on the wire. Names in Devanagari and Latin letters — the
// only scripts shala's records allow — are "packed": a CBOR byte string
// with one byte per character (0x20–0x7E: ASCII; 0x80–0xFF: U+0900–U+097F,
// the Devanagari block; 0x01: U+200C ZWNJ; 0x02: U+200D ZWJ), a third of
// their UTF-8 size, which is what lets three long Hindi names fit a
// version-16 QR. Any other text goes as a CBOR text string (UTF-8).
type text string

func packText(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		switch {
		case r >= 0x20 && r <= 0x7e:
			out = append(out, byte(r))
		case r >= 0x900 && r <= 0x97f:
			out = append(out, byte(0x80+r-0x900))
		case r == 0x200c:
			out = append(out, 0x01)
		case r == 0x200d:
			out = append(out, 0x02)
		default:
			return nil, false
		}
	}
	return out, true
}

func unpackText(b []byte) (string, error) {
	var sb strings.Builder
	for _, c := range b {
		switch {
		case c >= 0x20 && c <= 0x7e:
			sb.WriteByte(c)
		case c >= 0x80:
			sb.WriteRune(rune(0x900 + int(c) - 0x80))
		case c == 0x01:
			sb.WriteRune(0x200c)
		case c == 0x02:
			sb.WriteRune(0x200d)
		default:
			return "", fmt.Errorf("packed text: byte %#x is not a character", c)
		}
	}
	return sb.String(), nil
}

// MarshalCBOR writes packed text when it can, else UTF-8.
func (t text) MarshalCBOR() ([]byte, error) {
	if b, ok := packText(string(t)); ok {
		return cbor.Marshal(b)
	}
	return cbor.Marshal(string(t))
}

// UnmarshalCBOR reads either form.
func (t *text) UnmarshalCBOR(data []byte) error {
	var v any
	if err := decMode.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case []byte:
		s, err := unpackText(v)
		*t = text(s)
		return err
	case string:
		if !utf8.ValidString(v) {
			return errors.New("text: not UTF-8")
		}
		*t = text(v)
		return nil
	default:
		return fmt.Errorf("text: want a byte or text string, got %T", v)
	}
}

// decMode decodes claims strictly: no duplicate keys, bounded sizes.
var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  4,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
		IndefLength:      cbor.IndefLengthForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// encMode writes deterministic CBOR (RFC 8949 §4.2.1 core deterministic
// encoding: shortest forms, sorted keys).
var encMode = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()
