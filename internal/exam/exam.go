// Package exam holds exam answer files (the exam_depository system):
// examiners create exams and their students; each student gets an upload
// code and hands in answer files without an account; each upload gets a
// verification code that anyone holding it can use to fetch the file for a
// short while; files expire 72 hours after upload and are deleted from
// storage; an exam closed for 30 days can be purged of personal data.
//
// The rules live here and in the schema: at most MaxUploads uploads per
// student ever (a CHECK on the counter the upload's transaction increments,
// so two simultaneous last uploads cannot both win), exactly one active
// upload per student (a partial unique index; the replacement swaps them in
// one transaction), access refused the moment expires_at passes, whether or
// not the sweep has run.
package exam

import (
	"crypto/rand"
	"time"

	"github.com/shala-edu/shala/internal/fault"
)

// Limits of the exam_depository rules.
const (
	// MaxUploads is how many uploads a student may ever make.
	MaxUploads = 5
	// MaxFileBytes is the largest answer file (3 MiB; the cap itself is
	// accepted).
	MaxFileBytes = 3 << 20
	// Lifetime is how long an uploaded file is kept and served.
	Lifetime = 72 * time.Hour
	// LinkLifetime is how long a download link from a verification code
	// works (never past the file's expiry).
	LinkLifetime = 600 * time.Second
	// LateFinishGrace is how long after the exam closes a resumable upload
	// created before the close may still finish: a slow, dropping link
	// needs minutes for 3 MiB (~100 s at 256 kbit/s, ~10 min at 40), but
	// not the 24 h an unfinished upload lives — a placeholder created
	// before the close must not carry answers written after it.
	LateFinishGrace = 30 * time.Minute
	// PurgeAfter is how long after an exam closes its examiner may purge
	// the students' personal data.
	PurgeAfter = 30 * 24 * time.Hour
	// BlobPrefix is where answer files live in the bucket.
	BlobPrefix = "exams/"
)

// Error codes of this package (listed in the README's Errors contract).
const (
	CodeUploadLimit  fault.Code = "UPLOAD_LIMIT_REACHED"
	CodeExamNotOpen  fault.Code = "EXAM_NOT_OPEN"
	CodeExamClosed   fault.Code = "EXAM_CLOSED"
	CodeReplaced     fault.Code = "REPLACED"
	CodeExpired      fault.Code = "EXPIRED"
	CodeDeleted      fault.Code = "DELETED"
	CodeNotPurgeable fault.Code = "NOT_PURGEABLE"
	CodeUnknownCode  fault.Code = "UNKNOWN_CODE"
	CodeExamPurged   fault.Code = "EXAM_PURGED"
)

// Upload states.
const (
	StateActive   = "active"
	StateReplaced = "replaced"
	StateExpired  = "expired"
	StateDeleted  = "deleted"
)

const (
	uploadAlphabet       = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	uploadCodeLen        = 8
	verificationAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	verificationCodeLen  = 9
)

// NewUploadCode is 8 characters of A–Z0–9 from crypto/rand (36⁸ ≈ 2.8·10¹²).
func NewUploadCode() string { return randomCode(uploadAlphabet, uploadCodeLen) }

// NewVerificationCode is 9 characters of a–z0–9 from crypto/rand
// (36⁹ ≈ 1.0·10¹⁴).
func NewVerificationCode() string { return randomCode(verificationAlphabet, verificationCodeLen) }

// randomCode draws n characters of alphabet uniformly (rejection sampling,
// no modulo bias).
func randomCode(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	var buf [32]byte
	for len(out) < n {
		if _, err := rand.Read(buf[:]); err != nil {
			panic("crypto/rand: " + err.Error()) // unreachable: crypto/rand crashes the program itself
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// ValidUploadCode reports whether s has the shape of an upload code, so
// that malformed input is refused without a database round trip.
func ValidUploadCode(s string) bool { return validCode(s, uploadAlphabet, uploadCodeLen) }

// ValidVerificationCode reports whether s has the shape of a verification
// code.
func ValidVerificationCode(s string) bool {
	return validCode(s, verificationAlphabet, verificationCodeLen)
}

func validCode(s, alphabet string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		ok := false
		for j := range len(alphabet) {
			if s[i] == alphabet[j] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Clock tells the time; tests pass a settable one.
type Clock func() time.Time
