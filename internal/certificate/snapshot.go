// Package certificate issues, verifies and admits School Leaving
// Certificates (SLC). A certificate is a snapshot of the student as they
// left, stored as a row and carried in a QR code as a signed credential:
// claims as a CBOR map with CWT-style integer keys, signed as a COSE_Sign1
// (RFC 9052) with Ed25519, compressed with zlib and encoded in base45
// (RFC 9285) behind the prefix "SLC1:" — the EU Digital COVID Certificate's
// packing, which keeps the QR small enough (version ≤ 16 at level Q) to scan
// from a printed page. Anyone with the published public keys can verify a
// certificate offline; shala also answers online whether it was revoked or
// already used to admit the child elsewhere.
package certificate

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/student"
)

// Reason is why a student left (GraphQL enum LeavingReason).
type Reason string

// Leaving reasons, in their wire order (the QR carries the index).
const (
	ReasonTransferInState    Reason = "TRANSFER_IN_STATE"
	ReasonTransferOutOfState Reason = "TRANSFER_OUT_OF_STATE"
	ReasonFamilyMigration    Reason = "FAMILY_MIGRATION"
	ReasonCompletedSchooling Reason = "COMPLETED_SCHOOLING"
	ReasonHealth             Reason = "HEALTH"
	ReasonOther              Reason = "OTHER"
)

// Reasons lists every reason in wire order. New reasons are appended, never
// inserted: the QR carries a reason's index.
var Reasons = []Reason{ReasonTransferInState, ReasonTransferOutOfState, ReasonFamilyMigration,
	ReasonCompletedSchooling, ReasonHealth, ReasonOther}

// Valid reports whether r is a known reason.
func (r Reason) Valid() bool { return slices.Contains(Reasons, r) }

// Transfer reports whether the child moves to another school.
func (r Reason) Transfer() bool { return r == ReasonTransferInState || r == ReasonTransferOutOfState }

// Label is the reason in English and Hindi, for the certificate and the
// verification page.
func (r Reason) Label() string {
	switch r {
	case ReasonTransferInState:
		return "Transfer within the state / राज्य के भीतर स्थानांतरण"
	case ReasonTransferOutOfState:
		return "Transfer out of the state / राज्य से बाहर स्थानांतरण"
	case ReasonFamilyMigration:
		return "Family migration / परिवार का प्रवास"
	case ReasonCompletedSchooling:
		return "Completed schooling / विद्यालयी शिक्षा पूर्ण"
	case ReasonHealth:
		return "Health / स्वास्थ्य"
	default:
		return "Other / अन्य"
	}
}

// Snapshot is what a certificate states: the issuing school and the student
// as they left. It is stored with the certificate row, printed on the PDF
// and — all of it but the school's name and the free-text description —
// signed into the QR code.
type Snapshot struct {
	ID              uuid.UUID  `json:"id"`
	IssuerUDISE     string     `json:"issuerUdise"`
	IssuerName      string     `json:"issuerName"`
	Name            string     `json:"name"`
	FatherName      string     `json:"fatherName,omitempty"`
	MotherName      string     `json:"motherName,omitempty"`
	DateOfBirth     *time.Time `json:"dateOfBirth,omitempty"`
	Gender          string     `json:"gender"`
	Category        string     `json:"category,omitempty"`
	Grade           int        `json:"grade"`
	Section         string     `json:"section,omitempty"`
	Stream          string     `json:"stream,omitempty"`
	AdmissionNumber string     `json:"admissionNumber,omitempty"`
	AdmissionDate   *time.Time `json:"admissionDate,omitempty"`
	LeavingDate     time.Time  `json:"leavingDate"`
	Reason          Reason     `json:"reason"`
	Description     string     `json:"description,omitempty"`
	IssuedAt        time.Time  `json:"issuedAt"`
	KeyID           string     `json:"keyId"`
}

// CheckFits reports, naming the field, a snapshot whose names are longer
// than a certificate can carry, or written with characters the register
// does not take (records written before the rules existed): the school
// corrects the record first, while the child is still enrolled, instead of
// issuing a certificate no school could admit the child with.
func (s *Snapshot) CheckFits() error {
	for _, f := range []struct {
		field, v string
		max      int
	}{
		{"name", s.Name, student.MaxNameChars},
		{"fatherName", s.FatherName, student.MaxParentNameChars},
		{"motherName", s.MotherName, student.MaxParentNameChars},
		{"admissionNumber", s.AdmissionNumber, student.MaxAdmissionNumberChars},
	} {
		if n := len([]rune(f.v)); n > f.max {
			return fault.New(fault.Unprocessable, CodeDoesNotFit,
				"%s: %d characters is longer than a certificate can carry (at most %d); correct the student's record first", f.field, n, f.max)
		}
		if admission := f.field == "admissionNumber"; !student.Storable(f.v, admission) {
			alphabet := "Devanagari or Latin letters, digits, spaces, . ' -"
			if admission {
				alphabet = "letters, digits, spaces, / . -"
			}
			return fault.New(fault.Unprocessable, CodeDoesNotFit,
				"%s: written with characters a certificate cannot carry (%s); correct the student's record first", f.field, alphabet)
		}
	}
	return nil
}

// Error codes of this package. admitTransferredStudent also answers a QR
// that does not verify with its Problem as the code (BAD_FORMAT,
// BAD_SIGNATURE, UNKNOWN_KEY).
const (
	CodeDoesNotFit  fault.Code = "DOES_NOT_FIT"
	CodeAlreadyUsed fault.Code = "ALREADY_USED"
	CodeRevoked     fault.Code = "REVOKED"
	CodeNotLeaving  fault.Code = "NOT_ACTIVE"
	// CodePDFFailed answers pdfUrl for a certificate whose PDF could not be
	// made (its rendering stopped, pdf_error on the row).
	CodePDFFailed fault.Code = "PDF_FAILED"
)

func indexOf(list []string, v string) (int, error) {
	i := slices.Index(list, v)
	if i < 0 {
		return 0, fmt.Errorf("unknown value %q", v)
	}
	return i, nil
}
