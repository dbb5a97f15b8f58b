package sms

import (
	"regexp"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Skip reasons for numbers that cannot get an SMS.
const (
	ReasonNoPhone   = "no phone"
	ReasonInvalid   = "invalid number"
	ReasonForeign   = "not an Indian number"
	ReasonNotMobile = "not a mobile number"
)

// Normalize turns a phone as written in a register ("98160 12345",
// "098160-12345", "+91 9816012345") into E.164 (+919816012345). Numbers that
// cannot get an SMS from an Indian DLT sender return "" and the reason.
func Normalize(raw string) (e164, reason string) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", ReasonNoPhone
	}
	n, err := phonenumbers.Parse(raw, "IN")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", ReasonInvalid
	}
	if n.GetCountryCode() != 91 {
		return "", ReasonForeign
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	default:
		return "", ReasonNotMobile
	}
	return phonenumbers.Format(n, phonenumbers.E164), ""
}

// Mask hides all but the last four digits, for logs and errors: phone
// numbers never appear whole in logs, metrics or analytics.
func Mask(phone string) string {
	digits := 0
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			digits++
		}
	}
	var b strings.Builder
	seen := 0
	for _, r := range phone {
		if r >= '0' && r <= '9' {
			seen++
			if seen <= digits-4 {
				b.WriteByte('*')
				continue
			}
		}
		b.WriteRune(r)
	}
	return b.String()
}

var phoneLike = regexp.MustCompile(`\+?[0-9][0-9 ()-]{5,}[0-9]`)

// MaskText masks every phone-like run of digits in s (provider error texts
// quote the number: "The 'To' number +91… is not valid"), for logs.
func MaskText(s string) string {
	return phoneLike.ReplaceAllStringFunc(s, Mask)
}
