// Package aadhaar validates Aadhaar numbers: 12 digits, not starting with 0
// or 1, whose last digit is the Verhoeff check digit of the first eleven
// (UIDAI's scheme). Aadhaar numbers are sensitive: callers must not log them.
package aadhaar

var (
	dihedral = [10][10]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
		{2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
		{4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
		{6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
		{8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0},
	}
	permutation = [8][10]byte{
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
		{5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
		{9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
		{2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8},
	}
	inverse = [10]byte{0, 4, 3, 2, 1, 5, 6, 7, 8, 9}
)

// Valid reports whether s is a well-formed Aadhaar number.
func Valid(s string) bool {
	if len(s) != 12 || s[0] < '2' || s[0] > '9' {
		return false
	}
	var c byte
	for i := 0; i < 12; i++ {
		d := s[11-i]
		if d < '0' || d > '9' {
			return false
		}
		c = dihedral[c][permutation[i%8][d-'0']]
	}
	return c == 0
}

// Complete appends the Verhoeff check digit to eleven digits.
func Complete(first11 string) string {
	var c byte
	for i := 0; i < len(first11); i++ {
		d := first11[len(first11)-1-i]
		c = dihedral[c][permutation[(i+1)%8][d-'0']]
	}
	return first11 + string('0'+inverse[c])
}
