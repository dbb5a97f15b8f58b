package aadhaar_test

import (
	"testing"

	"github.com/shala-edu/shala/internal/aadhaar"
)

func TestVerhoeff(t *testing.T) {
	t.Parallel()
	// Known answer: the Verhoeff check digit of 236 is 3 (the standard worked example).
	if got := aadhaar.Complete("236"); got != "2363" {
		t.Errorf("Complete(236) = %s, want 2363", got)
	}
	n := aadhaar.Complete("23456789012")
	if !aadhaar.Valid(n) {
		t.Errorf("Valid(%s) = false for a completed number", n)
	}
	for _, bad := range []string{
		n[:11] + string('0'+(n[11]-'0'+1)%10), // wrong check digit
		"123456789012",                        // starts with 1
		"2345678901",                          // too short
		"23456789O123",                        // letter O
	} {
		if aadhaar.Valid(bad) {
			t.Errorf("Valid(%q) = true", bad)
		}
	}
}
