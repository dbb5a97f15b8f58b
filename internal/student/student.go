// Package student holds what schools do with students: registering a new
// one (with the rules a register needs: names a certificate can carry, a
// date of birth plausible for the class, an Indian mobile, a valid Aadhaar
// enrolled in one school at a time), promoting a class at the end of the
// year, and the trail of everything that happened to a student. Aadhaar
// numbers are stored protected (internal/aadhaar): a keyed hash, the
// ciphertext and the last four digits.
package student

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/aadhaar"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/sms"
)

// Name limits. They keep a leaving certificate's QR code at version ≤ 16
// (level Q) whatever the names say: with names at these lengths the signed
// message is at most 291 bytes, zlib adds at most 16, so the payload is at
// most 466 of version 16's 470 alphanumeric characters (internal/certificate;
// TestQRVersionWithLongestNames measures it with names of random Devanagari syllables,
// the worst to compress).
const (
	MaxNameChars            = 40
	MaxParentNameChars      = 36
	MaxAdmissionNumberChars = 20
)

// Genders, categories and streams in the order a certificate's QR code
// numbers them (append only).
var (
	Genders    = []string{"MALE", "FEMALE", "OTHER"}
	Categories = []string{"GENERAL", "SC", "ST", "OBC", "EWS"}
	Streams    = []string{"SCIENCE_MEDICAL", "SCIENCE_NON_MEDICAL", "COMMERCE", "ARTS", "VOCATIONAL"}
)

// IST is India Standard Time, the zone schools' dates are in.
var IST = time.FixedZone("IST", 5*3600+1800)

// Today is now's date in India as a date value (midnight UTC): a school's
// "today", for admissions, promotions and leaving.
func Today(now time.Time) time.Time {
	y, m, d := now.In(IST).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Transfer sources (GraphQL enum TransferSource).
const (
	SourceNew        = "NEW"
	SourceInState    = "IN_STATE"
	SourceOtherState = "OTHER_STATE"
)

// Event kinds of the student_event trail.
const (
	EventAdmitted       = "ADMITTED"
	EventPromoted       = "PROMOTED"
	EventRetained       = "RETAINED"
	EventPassedOut      = "PASSED_OUT"
	EventDroppedOut     = "DROPPED_OUT"
	EventLeft           = "LEFT"
	EventTransferredIn  = "TRANSFERRED_IN"
	EventTransferredOut = "TRANSFERRED_OUT"
	EventCorrected      = "CORRECTED"
)

// Error codes of this package.
const (
	CodeAdmissionNumberTaken fault.Code = "ADMISSION_NUMBER_TAKEN"
	CodeAadhaarEnrolled      fault.Code = "AADHAAR_ENROLLED"
	CodeUseCertificate       fault.Code = "USE_CERTIFICATE"
)

// Input is a new student's record (GraphQL input StudentInput).
type Input struct {
	Name            string     `json:"name"`
	FatherName      *string    `json:"fatherName"`
	MotherName      *string    `json:"motherName"`
	GuardianPhone   *string    `json:"guardianPhone"`
	Gender          string     `json:"gender"`
	Category        *string    `json:"category"`
	DateOfBirth     string     `json:"dateOfBirth"`
	AdmissionNumber *string    `json:"admissionNumber"`
	AdmissionDate   *string    `json:"admissionDate"`
	Grade           int        `json:"grade"`
	Section         *string    `json:"section"`
	Stream          *string    `json:"stream"`
	AcademicYear    *string    `json:"academicYear"`
	Aadhaar         *string    `json:"aadhaar"`
	IsCWSN          *bool      `json:"isCwsn"`
	CWSNType        *string    `json:"cwsnType"`
	TransferSource  string     `json:"transferSource"`
	Documents       []Document `json:"documents"`
}

// Document is an uploaded document a student from another state or board
// brings (GraphQL input StudentDocumentInput).
type Document struct {
	ID   uuid.UUID `json:"id"`
	Kind string    `json:"kind"`
}

// DocumentKinds are the kinds of transfer documents.
var DocumentKinds = []string{"TRANSFER_CERTIFICATE", "MARKSHEET", "OTHER"}

// record is a validated Input.
type record struct {
	Name, FatherName, MotherName, Phone, Gender, Category string
	DateOfBirth, AdmissionDate                            time.Time
	AdmissionNumber, Section, Stream, AcademicYear        string
	Grade                                                 int
	Aadhaar                                               string
	IsCWSN                                                bool
	CWSNType, Source                                      string
	Documents                                             []Document
}

// nameChars is what a name may be written with: Devanagari and Latin
// letters, spaces, . ' - and the zero-width (non-)joiners of Hindi
// spelling — the alphabet a certificate's QR packs one byte per character
// (the database has the same rule).
var nameChars = regexp.MustCompile(`^[A-Za-z\x{0900}-\x{097F} .'\x{200C}\x{200D}-]+$`)

var admissionChars = regexp.MustCompile(`^[A-Za-z0-9/ .-]+$`)

// storedName is the database's rule for names (the student_rules trigger):
// nameChars and ASCII digits, which records written before shala checked
// names may hold.
var storedName = regexp.MustCompile(`^[A-Za-z0-9\x{0900}-\x{097F} .'\x{200C}\x{200D}-]*$`)

// Storable reports whether the database takes v on a new student row as a
// name, or with admission as an admission number: what a certificate's
// snapshot must satisfy for the school the child moves to to admit them.
func Storable(v string, admission bool) bool {
	if admission {
		return v == "" || admissionChars.MatchString(v)
	}
	return storedName.MatchString(v)
}

// CheckAdmissionNumber validates an admission number in field (empty: none).
func CheckAdmissionNumber(field, v string) error {
	if v == "" {
		return nil
	}
	if n := utf8.RuneCountInString(v); n > MaxAdmissionNumberChars || !admissionChars.MatchString(v) {
		return fault.Invalidf(field, "at most %d letters, digits and / . - (got %q)", MaxAdmissionNumberChars, v)
	}
	return nil
}

// CheckSection normalises a section named in field (trimmed, upper case:
// "b" is section B) and checks it is one of A to H; "" is none.
func CheckSection(field, v string) (string, error) {
	v = strings.ToUpper(strings.TrimSpace(v))
	if v != "" && (len(v) != 1 || v[0] < 'A' || v[0] > 'H') {
		return "", fault.Invalidf(field, "a section from A to H, got %q", v)
	}
	return v, nil
}

func opt(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

// CheckName validates a person's name in field: required or not, at most
// max characters, written in Devanagari or Latin letters.
func CheckName(field, v string, required bool, max int) error {
	n := utf8.RuneCountInString(v)
	switch {
	case n == 0 && required:
		return fault.Invalidf(field, "is required")
	case n == 0:
		return nil
	case n > max:
		return fault.Invalidf(field, "at most %d characters (a certificate's QR code must hold it), got %d", max, n)
	case !nameChars.MatchString(v) || strings.Trim(v, " .'-\u200c\u200d") == "":
		return fault.Invalidf(field, "write it in Devanagari or Latin letters (spaces, . ' - allowed)")
	}
	return nil
}

// minAge and maxAge bound a child's age on the first day of the academic
// year for grade g: a class-1 child is 5 to 9 (the RTE entry age is 6, late
// and early starters exist), a class-12 student 16 to 20, and so on.
func minAge(g int) int { return g + 4 }
func maxAge(g int) int { return g + 8 }

func ageOn(dob, on time.Time) int {
	age := on.Year() - dob.Year()
	if on.Month() < dob.Month() || (on.Month() == dob.Month() && on.Day() < dob.Day()) {
		age--
	}
	return age
}

// CheckAge checks in field that a child born on dob is of an age for grade
// on yearStart, the first day of the academic year they join it.
func CheckAge(field string, dob, yearStart time.Time, grade int) error {
	if age := ageOn(dob, yearStart); age < minAge(grade) || age > maxAge(grade) {
		return fault.Invalidf(field, "a child born on %s is %d on %s; class %d takes children of %d to %d",
			dob.Format(time.DateOnly), age, yearStart.Format(time.DateOnly), grade, minAge(grade), maxAge(grade))
	}
	return nil
}

// validate checks in and returns the record; yearStart is the first day of
// the academic year the student joins, today the date of the request.
func (in *Input) validate(yearStart, today time.Time) (*record, error) {
	r := &record{Name: strings.TrimSpace(in.Name), FatherName: opt(in.FatherName), MotherName: opt(in.MotherName),
		Gender: in.Gender, Category: opt(in.Category), AdmissionNumber: opt(in.AdmissionNumber),
		Stream: opt(in.Stream), AcademicYear: opt(in.AcademicYear),
		Grade: in.Grade, CWSNType: opt(in.CWSNType), Source: in.TransferSource, Documents: in.Documents}
	if in.IsCWSN != nil {
		r.IsCWSN = *in.IsCWSN
	}
	if err := CheckName("student.name", r.Name, true, MaxNameChars); err != nil {
		return nil, err
	}
	if err := CheckName("student.fatherName", r.FatherName, false, MaxParentNameChars); err != nil {
		return nil, err
	}
	if err := CheckName("student.motherName", r.MotherName, false, MaxParentNameChars); err != nil {
		return nil, err
	}
	if r.FatherName == "" && r.MotherName == "" {
		return nil, fault.Invalidf("student.fatherName", "give the father's or the mother's name (or both)")
	}
	if !slices.Contains(Genders, r.Gender) {
		return nil, fault.Invalidf("student.gender", "one of %s", strings.Join(Genders, ", "))
	}
	if r.Category != "" && !slices.Contains(Categories, r.Category) {
		return nil, fault.Invalidf("student.category", "one of %s", strings.Join(Categories, ", "))
	}
	if r.Grade < 1 || r.Grade > 12 {
		return nil, fault.Invalidf("student.grade", "a class from 1 to 12, got %d", r.Grade)
	}
	section, err := CheckSection("student.section", opt(in.Section))
	if err != nil {
		return nil, err
	}
	r.Section = section
	if r.Stream != "" && r.Grade < 11 {
		return nil, fault.Invalidf("student.stream", "only classes 11 and 12 have a stream")
	}
	dob, err := time.Parse(time.DateOnly, strings.TrimSpace(in.DateOfBirth))
	if err != nil {
		return nil, fault.Invalidf("student.dateOfBirth", "a date such as 2014-06-23, got %q", in.DateOfBirth)
	}
	if err := CheckAge("student.dateOfBirth", dob, yearStart, r.Grade); err != nil {
		return nil, err
	}
	r.DateOfBirth = dob
	r.AdmissionDate = today
	if s := opt(in.AdmissionDate); s != "" {
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, fault.Invalidf("student.admissionDate", "a date such as 2026-04-01, got %q", s)
		}
		if d.After(today) || d.Before(dob) {
			return nil, fault.Invalidf("student.admissionDate", "between the date of birth and today, got %s", s)
		}
		r.AdmissionDate = d
	}
	if err := CheckAdmissionNumber("student.admissionNumber", r.AdmissionNumber); err != nil {
		return nil, err
	}
	if p := opt(in.GuardianPhone); p != "" {
		e164, reason := sms.Normalize(p)
		if e164 == "" {
			return nil, fault.Invalidf("student.guardianPhone", "an Indian mobile number such as 98160 12345 (%s)", reason)
		}
		r.Phone = e164
	}
	if a := strings.ReplaceAll(strings.ReplaceAll(opt(in.Aadhaar), " ", ""), "-", ""); a != "" {
		if !aadhaar.Valid(a) {
			return nil, fault.Invalidf("student.aadhaar", "not a valid Aadhaar number: 12 digits, not starting with 0 or 1, with a correct check digit")
		}
		r.Aadhaar = a
	}
	if utf8.RuneCountInString(r.CWSNType) > 100 {
		return nil, fault.Invalidf("student.cwsnType", "at most 100 characters")
	}
	switch r.Source {
	case SourceNew:
		if len(r.Documents) > 0 {
			return nil, fault.Invalidf("student.documents", "only OTHER_STATE admissions bring documents")
		}
	case SourceInState:
		return nil, fault.New(fault.Invalid, CodeUseCertificate,
			"student.transferSource: a child from a school in the state is admitted with their leaving certificate's QR code (admitTransferredStudent)")
	case SourceOtherState:
		if len(r.Documents) == 0 {
			return nil, fault.Invalidf("student.documents", "a child from another state or board needs their transfer certificate or marksheet uploaded")
		}
		for i, d := range r.Documents {
			if !slices.Contains(DocumentKinds, d.Kind) {
				return nil, fault.Invalidf(fmt.Sprintf("student.documents[%d].kind", i), "one of %s", strings.Join(DocumentKinds, ", "))
			}
		}
	default:
		return nil, fault.Invalidf("student.transferSource", "one of NEW, IN_STATE, OTHER_STATE")
	}
	return r, nil
}
