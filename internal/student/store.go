package student

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/aadhaar"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
)

// Student is a registered student as the actions return it. The Aadhaar
// number appears only as its last four digits.
type Student struct {
	ID              uuid.UUID `json:"id"`
	SchoolID        uuid.UUID `json:"schoolId"`
	Name            string    `json:"name"`
	Grade           int       `json:"grade"`
	Section         *string   `json:"section"`
	AdmissionNumber *string   `json:"admissionNumber"`
	AcademicYear    *string   `json:"academicYear"`
	Status          string    `json:"status"`
	TransferSource  string    `json:"transferSource"`
	AadhaarLast4    *string   `json:"aadhaarLast4"`
}

// Store reads and writes students.
type Store struct {
	pool    *pgxpool.Pool
	protect *aadhaar.Protector
	// Now is the clock (tests set it).
	Now func() time.Time
}

// NewStore returns a store on pool protecting Aadhaar numbers with p.
func NewStore(pool *pgxpool.Pool, p *aadhaar.Protector) *Store {
	return &Store{pool: pool, protect: p, Now: time.Now}
}

// Pool is the store's pool (the certificate store shares transactions).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Protector is the Aadhaar protector.
func (s *Store) Protector() *aadhaar.Protector { return s.protect }

// MarkShala makes the trail trigger skip tx's updates: shala records its
// own, more precise, events.
func MarkShala(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT set_config('shala.trail', 'shala', true)`)
	return err
}

// academicYear resolves the year a student joins: the one named, else the
// current one; and its first day (today when there is no year table row).
func academicYear(ctx context.Context, tx pgx.Tx, named string, today time.Time) (string, time.Time, error) {
	var id string
	var start time.Time
	q := `SELECT id, starts_on FROM academic_year WHERE is_current`
	args := []any{}
	if named != "" {
		q, args = `SELECT id, starts_on FROM academic_year WHERE id = $1`, []any{named}
	}
	err := tx.QueryRow(ctx, q, args...).Scan(&id, &start)
	if errors.Is(err, pgx.ErrNoRows) {
		if named != "" {
			return "", time.Time{}, fault.Invalidf("student.academicYear", "no academic year %q", named)
		}
		return "", today, nil
	}
	return id, start, err
}

// Register adds a new student to school (NEW, or OTHER_STATE with its
// uploaded documents) and records ADMITTED in the trail, in one transaction.
func (s *Store) Register(ctx context.Context, schoolID uuid.UUID, actor string, in Input) (Student, error) {
	var out Student
	today := Today(s.Now())
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := MarkShala(ctx, tx); err != nil {
			return err
		}
		year, start, err := academicYear(ctx, tx, opt(in.AcademicYear), today)
		if err != nil {
			return err
		}
		r, err := in.validate(start, today)
		if err != nil {
			return err
		}
		r.AcademicYear = year
		var prot aadhaar.Protected
		if r.Aadhaar != "" {
			if prot, err = s.protect.Protect(r.Aadhaar); err != nil {
				return fault.Invalidf("student.aadhaar", "%v", err)
			}
			if err := s.checkAadhaarFree(ctx, tx, schoolID, prot.Hash); err != nil {
				return err
			}
		}
		if r.AdmissionNumber != "" {
			if err := checkAdmissionNumberFree(ctx, tx, schoolID, r.AdmissionNumber); err != nil {
				return err
			}
		}
		err = tx.QueryRow(ctx, `INSERT INTO student (school_id, name, father_name, mother_name, guardian_phone, gender,
				category, date_of_birth, admission_number, admission_date, grade, section, stream, academic_year,
				aadhaar_hash, aadhaar_ciphertext, aadhaar_last4, is_cwsn, cwsn_type, transfer_source)
			VALUES ($1, $2, nullif($3, ''), nullif($4, ''), nullif($5, ''), $6, nullif($7, ''), $8, nullif($9, ''), $10,
				$11, nullif($12, ''), nullif($13, ''), nullif($14, ''), $15, $16, nullif($17, ''), $18, nullif($19, ''), $20)
			RETURNING id, school_id, name, grade, section, admission_number, academic_year, status, transfer_source, aadhaar_last4`,
			schoolID, r.Name, r.FatherName, r.MotherName, r.Phone, r.Gender, r.Category, r.DateOfBirth, r.AdmissionNumber,
			r.AdmissionDate, r.Grade, r.Section, r.Stream, r.AcademicYear, orNull(prot.Hash), orNull(prot.Ciphertext), prot.Last4,
			r.IsCWSN, r.CWSNType, r.Source,
		).Scan(&out.ID, &out.SchoolID, &out.Name, &out.Grade, &out.Section, &out.AdmissionNumber, &out.AcademicYear,
			&out.Status, &out.TransferSource, &out.AadhaarLast4)
		if err != nil {
			return translate(err)
		}
		for i, d := range r.Documents {
			tag, err := tx.Exec(ctx, `UPDATE student_document SET student_id = $1, kind = $2
				WHERE id = $3 AND school_id = $4 AND student_id IS NULL`, out.ID, d.Kind, d.ID, schoolID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fault.Invalidf(fmt.Sprintf("student.documents[%d].id", i), "no unattached document %s uploaded by this school", d.ID)
			}
		}
		kind := EventAdmitted
		return AddEvent(ctx, tx, Event{StudentID: out.ID, SchoolID: schoolID, Kind: kind, AcademicYear: r.AcademicYear,
			Grade: r.Grade, Section: r.Section, Actor: actor, Details: map[string]any{"transferSource": r.Source}})
	})
	return out, err
}

// checkAadhaarFree fails when an ACTIVE student already has this Aadhaar.
// The answer never names another school: a school learns only that the
// child is enrolled somewhere (which the rule itself implies); its own
// students it can see anyway.
func (s *Store) checkAadhaarFree(ctx context.Context, tx pgx.Tx, schoolID uuid.UUID, hash []byte) error {
	var other uuid.UUID
	var number *string
	err := tx.QueryRow(ctx, `SELECT school_id, admission_number FROM student
		WHERE aadhaar_hash = $1 AND status = 'ACTIVE'`, hash).Scan(&other, &number)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return aadhaarClash(other == schoolID, number)
}

func aadhaarClash(ownSchool bool, number *string) error {
	if ownSchool {
		n := "without an admission number"
		if number != nil {
			n = "as admission number " + *number
		}
		return &fault.Error{Kind: fault.Conflict, Code: CodeAadhaarEnrolled, Field: "student.aadhaar",
			Message: "student.aadhaar: this child is already enrolled in your school (" + n + ")"}
	}
	return &fault.Error{Kind: fault.Conflict, Code: CodeAadhaarEnrolled, Field: "student.aadhaar",
		Message: "student.aadhaar: this child is enrolled in another school; that school must issue a leaving certificate before the child can be admitted"}
}

func checkAdmissionNumberFree(ctx context.Context, tx pgx.Tx, schoolID uuid.UUID, number string) error {
	var taken bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM student WHERE school_id = $1 AND admission_number = $2)`,
		schoolID, number).Scan(&taken); err != nil {
		return err
	}
	if taken {
		return admissionTaken(number)
	}
	return nil
}

func admissionTaken(number string) error {
	return &fault.Error{Kind: fault.Conflict, Code: CodeAdmissionNumberTaken, Field: "student.admissionNumber",
		Message: fmt.Sprintf("student.admissionNumber: %s is already the admission number of another student of this school", number)}
}

// translate turns the constraint violations a concurrent writer can still
// cause (the checks above run first) into the same field-named errors.
func translate(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.ConstraintName {
		case "student_school_id_admission_number_key":
			return admissionTaken("this number")
		case "student_aadhaar_active":
			return aadhaarClash(false, nil)
		case "student_stream_fkey":
			return fault.Invalidf("student.stream", "no such stream")
		case "student_section_fkey":
			return fault.Invalidf("student.section", "no such section")
		}
		if strings.HasPrefix(pgErr.ConstraintName, "student_") && pgErr.Code == "23514" {
			return fault.Invalidf("student", "refused by the rule %s", pgErr.ConstraintName)
		}
	}
	return postgres.Translate(err, "student")
}

// Event is one row of the trail.
type Event struct {
	StudentID, SchoolID uuid.UUID
	Kind                string
	AcademicYear        string
	Grade               int
	Section             string
	Details             map[string]any
	Actor               string
	CertificateID       *uuid.UUID
}

// AddEvent records e in tx.
func AddEvent(ctx context.Context, tx pgx.Tx, e Event) error {
	q, args := e.Statement()
	_, err := tx.Exec(ctx, q, args...)
	return err
}

// Statement is the INSERT that records e, for callers that batch it with
// their own writes.
func (e Event) Statement() (string, []any) {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	return `INSERT INTO student_event (student_id, school_id, kind, academic_year, grade, section,
			details, actor, certificate_id)
		VALUES ($1, $2, $3, nullif($4, ''), nullif($5, 0), nullif($6, ''), $7, nullif($8, ''), $9)`,
		[]any{e.StudentID, e.SchoolID, e.Kind, e.AcademicYear, e.Grade, e.Section, e.Details, e.Actor, e.CertificateID}
}

// legacyCleared is the trail's note on a student whose old Aadhaar number
// ProtectLegacy cleared.
const legacyCleared = "the Aadhaar number stored before encryption was not valid (wrong check digit, or a second active enrolment) and was cleared: enter it again"

// ProtectLegacy encrypts Aadhaar numbers written before they were protected
// (the aadhaar_legacy column), 500 rows per transaction, and clears the
// plaintext. Numbers that fail the Verhoeff check, or that would make a
// second ACTIVE enrolment, are cleared, counted in dropped and marked in
// the trail (CORRECTED, field aadhaar) so the school knows whose to enter
// again. A row a check refuses keeps its plaintext and is counted
// in stuck (the name rules judge only what a write sets, so an old name
// does not hold its row's Aadhaar in plaintext). Safe to run on every
// start: it does nothing when nothing is left.
func ProtectLegacy(ctx context.Context, pool *pgxpool.Pool, p *aadhaar.Protector) (protected, dropped, stuck int, err error) {
	after := uuid.Nil
	for {
		n := 0
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if err := MarkShala(ctx, tx); err != nil {
				return err
			}
			rows, err := tx.Query(ctx, `SELECT id, aadhaar_legacy, status = 'ACTIVE' FROM student
				WHERE aadhaar_legacy IS NOT NULL AND id > $1 ORDER BY id LIMIT 500 FOR UPDATE`, after)
			if err != nil {
				return err
			}
			type legacy struct {
				id     uuid.UUID
				number string
				active bool
			}
			var batch []legacy
			for rows.Next() {
				var l legacy
				if err := rows.Scan(&l.id, &l.number, &l.active); err != nil {
					return err
				}
				batch = append(batch, l)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			n = len(batch)
			for _, l := range batch {
				after = l.id
				prot, perr := p.Protect(l.number)
				if perr == nil && l.active {
					var clash bool
					if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM student WHERE aadhaar_hash = $1 AND status = 'ACTIVE' AND id <> $2)`,
						prot.Hash, l.id).Scan(&clash); err != nil {
						return err
					}
					if clash {
						perr = errors.New("second active enrolment")
					}
				}
				q, args := `UPDATE student SET aadhaar_legacy = NULL, aadhaar_hash = $2, aadhaar_ciphertext = $3,
					aadhaar_last4 = $4 WHERE id = $1`, []any{l.id, prot.Hash, prot.Ciphertext, prot.Last4}
				if perr != nil {
					q, args = `UPDATE student SET aadhaar_legacy = NULL WHERE id = $1`, []any{l.id}
				}
				// A savepoint per row: a row the newer checks refuse stays as it is.
				err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
					_, err := sp.Exec(ctx, q, args...)
					return err
				})
				var pgErr *pgconn.PgError
				switch {
				case errors.As(err, &pgErr) && pgErr.Code == "23514":
					stuck++
				case err != nil:
					return err
				case perr != nil:
					dropped++
					// The school learns whose number to enter again (a trail
					// row naming the field, never the number).
					if _, err := tx.Exec(ctx, `INSERT INTO student_event (student_id, school_id, kind, academic_year, grade, section, details, actor)
						SELECT id, school_id, 'CORRECTED', academic_year, grade, section,
							jsonb_build_object('fields', jsonb_build_array('aadhaar'), 'note', $2::text), 'shala'
						FROM student WHERE id = $1`, l.id, legacyCleared); err != nil {
						return err
					}
				default:
					protected++
				}
			}
			return nil
		})
		if err != nil || n == 0 {
			return protected, dropped, stuck, err
		}
	}
}

// RevealAadhaar decrypts a student's Aadhaar number (the admin role's
// path); "" when the student has none.
func (s *Store) RevealAadhaar(ctx context.Context, id uuid.UUID) (string, error) {
	var ct []byte
	err := s.pool.QueryRow(ctx, `SELECT aadhaar_ciphertext FROM student WHERE id = $1`, id).Scan(&ct)
	if err != nil {
		return "", postgres.Translate(err, "student "+id.String())
	}
	if ct == nil {
		return "", nil
	}
	return s.protect.Reveal(ct)
}

// orNull is b, or SQL NULL when b is empty: a student registered without
// an Aadhaar number has no hash or ciphertext.
func orNull(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
