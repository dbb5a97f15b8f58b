package certificate

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/student"
)

// MaxPayloadV16 is the alphanumeric capacity of a version-16 QR code at
// level Q: a payload longer than this would need a bigger code.
const MaxPayloadV16 = 470

// Store issues, revokes, verifies and admits certificates.
type Store struct {
	pool   *pgxpool.Pool
	signer Signer
	queue  queue.Inserter
	// Now is the clock (tests set it).
	Now func() time.Time
}

// NewStore returns a store that signs with signer and enqueues PDF jobs
// through q.
func NewStore(pool *pgxpool.Pool, signer Signer, q queue.Inserter) *Store {
	return &Store{pool: pool, signer: signer, queue: q, Now: time.Now}
}

// Signer is the store's signer (the key set endpoint publishes its keys).
func (s *Store) Signer() Signer { return s.signer }

// Caller is who asks: a school (SchoolID set) or an admin (nil: any school).
type Caller struct {
	SchoolID *uuid.UUID
	UserID   string
}

// IssueInput is issueLeavingCertificate's arguments.
type IssueInput struct {
	StudentID   uuid.UUID `json:"studentId"`
	Reason      Reason    `json:"reason"`
	Description *string   `json:"description"`
	LeavingDate string    `json:"leavingDate"`
}

// Issued is a new certificate.
type Issued struct {
	ID      uuid.UUID
	Payload string
}

func today(now time.Time) time.Time { return student.Today(now) }

// IST is India Standard Time, the zone certificates' dates are in.
var IST = student.IST

// Issue removes an ACTIVE student from their school and issues the
// certificate, in one transaction: student → LEFT with reason and date, a
// trail row, the certificate row with its signed payload, and the job that
// renders the PDF. A student who passed out or dropped out gets one too
// (keeping that status), and one who left gets a replacement for a
// certificate revoked before it was used (see mayHaveCertificate).
func (s *Store) Issue(ctx context.Context, c Caller, in IssueInput) (Issued, error) {
	if !in.Reason.Valid() {
		return Issued{}, fault.Invalidf("reason", "one of %s", strings.Join(reasonNames(), ", "))
	}
	leaving, err := time.Parse(time.DateOnly, strings.TrimSpace(in.LeavingDate))
	if err != nil {
		return Issued{}, fault.Invalidf("leavingDate", "a date such as 2026-11-30, got %q", in.LeavingDate)
	}
	now := s.Now()
	if leaving.After(today(now)) {
		return Issued{}, fault.Invalidf("leavingDate", "%s is in the future", in.LeavingDate)
	}
	desc := ""
	if in.Description != nil {
		desc = strings.TrimSpace(*in.Description)
	}
	if utf8.RuneCountInString(desc) > 500 {
		return Issued{}, fault.Invalidf("description", "at most 500 characters")
	}
	var out Issued
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		snap := &Snapshot{ID: uuid.New(), LeavingDate: leaving, Reason: in.Reason, Description: desc,
			IssuedAt: now.UTC().Truncate(time.Second)}
		var schoolID uuid.UUID
		var marked, status, academicYear string
		var father, mother, category, section, stream, admission *string
		// set_config: shala records its own trail rows (student.MarkShala),
		// folded into the locking read to save a round trip.
		err := tx.QueryRow(ctx, `SELECT set_config('shala.trail', 'shala', true), s.school_id, sc.udise, sc.name, s.status, s.name, s.father_name, s.mother_name,
				s.date_of_birth, s.gender, s.category, s.grade, s.section, s.stream, s.admission_number, s.admission_date,
				coalesce(s.academic_year, '')
			FROM student s JOIN school sc ON sc.id = s.school_id
			WHERE s.id = $1 AND ($2::uuid IS NULL OR s.school_id = $2) FOR UPDATE OF s`, in.StudentID, c.SchoolID,
		).Scan(&marked, &schoolID, &snap.IssuerUDISE, &snap.IssuerName, &status, &snap.Name, &father, &mother, &snap.DateOfBirth,
			&snap.Gender, &category, &snap.Grade, &section, &stream, &admission, &snap.AdmissionDate, &academicYear)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.NotFound, "", "studentId: no student %s in your school", in.StudentID)
		}
		if err != nil {
			return err
		}
		snap.FatherName, snap.MotherName, snap.Category = deref(father), deref(mother), deref(category)
		snap.Section, snap.Stream, snap.AdmissionNumber = deref(section), deref(stream), deref(admission)
		if err := mayHaveCertificate(ctx, tx, in.StudentID, status); err != nil {
			return err
		}
		if snap.AdmissionDate != nil && leaving.Before(*snap.AdmissionDate) {
			return fault.Invalidf("leavingDate", "%s is before the admission date %s", in.LeavingDate, snap.AdmissionDate.Format(time.DateOnly))
		}
		// Rows from before admission dates were kept have only the date
		// of birth to hold the leaving date to.
		if snap.DateOfBirth != nil && !leaving.After(*snap.DateOfBirth) {
			return fault.Invalidf("leavingDate", "%s is not after the date of birth %s", in.LeavingDate, snap.DateOfBirth.Format(time.DateOnly))
		}
		if err := snap.CheckFits(); err != nil {
			return err
		}
		payload, err := Seal(ctx, s.signer, snap)
		if err != nil {
			return err
		}
		if len(payload) > MaxPayloadV16 {
			return fault.New(fault.Unprocessable, CodeDoesNotFit,
				"the certificate would need a QR code bigger than version %d (%d characters); shorten the names on the student's record", MaxQRVersion, len(payload))
		}
		kind := student.EventLeft
		if in.Reason.Transfer() {
			kind = student.EventTransferredOut
		}
		event, eventArgs := student.Event{StudentID: in.StudentID, SchoolID: schoolID, Kind: kind,
			AcademicYear: academicYear, Grade: snap.Grade, Section: snap.Section, Actor: c.UserID, CertificateID: &snap.ID,
			Details: map[string]any{"reason": string(in.Reason), "leavingDate": in.LeavingDate}}.Statement()
		// The writes in one round trip. A student who passed out or dropped
		// out keeps that status: the certificate records where they go.
		batch := &pgx.Batch{}
		if status == "ACTIVE" || status == "LEFT" {
			batch.Queue(`UPDATE student SET status = 'LEFT', left_on = $2, left_reason = $3, left_description = nullif($4, '')
				WHERE id = $1`, in.StudentID, leaving, string(in.Reason), desc)
		}
		batch.Queue(`INSERT INTO leaving_certificate (id, student_id, school_id, issuer_udise, issuer_name,
				student_name, father_name, mother_name, date_of_birth, gender, category, grade, section, stream,
				admission_number, admission_date, leaving_date, reason, description, issued_at, issued_by, key_id, payload)
			VALUES ($1, $2, $3, $4, $5, $6, nullif($7, ''), nullif($8, ''), $9, $10, nullif($11, ''), $12, nullif($13, ''),
				nullif($14, ''), nullif($15, ''), $16, $17, $18, nullif($19, ''), $20, nullif($21, ''), $22, $23)`,
			snap.ID, in.StudentID, schoolID, snap.IssuerUDISE, snap.IssuerName, snap.Name, snap.FatherName, snap.MotherName,
			snap.DateOfBirth, snap.Gender, snap.Category, snap.Grade, snap.Section, snap.Stream, snap.AdmissionNumber,
			snap.AdmissionDate, leaving, string(in.Reason), desc, snap.IssuedAt, c.UserID, snap.KeyID, payload)
		batch.Queue(event, eventArgs...)
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return postgres.Translate(err, "certificate")
		}
		if _, err := s.queue.InsertTx(ctx, tx, RenderArgs{CertificateID: snap.ID}, nil); err != nil {
			return fmt.Errorf("enqueue certificate pdf: %w", err)
		}
		if err := analytics.Record(ctx, tx, schoolID.String(), "certificate_issued", map[string]any{
			"certificate_id": snap.ID, "reason": string(in.Reason), "transfer": in.Reason.Transfer(),
		}); err != nil {
			return err
		}
		out = Issued{ID: snap.ID, Payload: payload}
		return nil
	})
	return out, err
}

// mayHaveCertificate checks that a student who is not ACTIVE may still be
// given a certificate: one who passed out or dropped out (a leaving
// certificate is what the next school or college asks for), or one who left
// with a certificate that was revoked before any school used it (its
// replacement). Never a second live certificate, nor one for a child a
// school has admitted with theirs; nor one for a child who left otherwise.
func mayHaveCertificate(ctx context.Context, tx pgx.Tx, studentID uuid.UUID, status string) error {
	if status == "ACTIVE" {
		return nil
	}
	var live, used, revoked bool
	err := tx.QueryRow(ctx, `SELECT coalesce(bool_or(revoked_at IS NULL), false), coalesce(bool_or(admitted_at IS NOT NULL), false),
			coalesce(bool_or(revoked_at IS NOT NULL), false)
		FROM leaving_certificate WHERE student_id = $1`, studentID).Scan(&live, &used, &revoked)
	switch {
	case err != nil:
		return err
	case live:
		return fault.New(fault.Conflict, CodeNotLeaving, "studentId: the student is %s and has a certificate already (revoke it to issue another)", status)
	case used:
		return fault.New(fault.Conflict, CodeNotLeaving, "studentId: a school has admitted the student with their certificate")
	case status == "PASSED_OUT" || status == "DROPPED_OUT" || (status == "LEFT" && revoked):
		return nil
	}
	return fault.New(fault.Conflict, CodeNotLeaving, "studentId: the student is %s, not ACTIVE: only an enrolled student can leave", status)
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Revoke withdraws a certificate (its issuing school, or an admin): it
// verifies by signature still, but online it answers REVOKED and admits
// nobody.
func (s *Store) Revoke(ctx context.Context, c Caller, id uuid.UUID, reason string) (time.Time, error) {
	reason = strings.TrimSpace(reason)
	if n := utf8.RuneCountInString(reason); n == 0 || n > 500 {
		return time.Time{}, fault.Invalidf("reason", "1 to 500 characters")
	}
	var at *time.Time
	var issuer uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT school_id, revoked_at FROM leaving_certificate WHERE id = $1`, id).Scan(&issuer, &at)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && c.SchoolID != nil && *c.SchoolID != issuer) {
		return time.Time{}, fault.New(fault.NotFound, "", "id: no certificate %s issued by your school", id)
	}
	if err != nil {
		return time.Time{}, postgres.Translate(err, "certificate")
	}
	if at != nil {
		return *at, fault.New(fault.Conflict, CodeRevoked, "id: the certificate was revoked on %s", at.In(IST).Format(time.DateOnly))
	}
	var revokedAt time.Time
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE leaving_certificate SET revoked_at = $2, revoked_reason = $3, revoked_by = nullif($4, '')
			WHERE id = $1 AND revoked_at IS NULL RETURNING revoked_at`, id, s.Now().UTC(), reason, c.UserID).Scan(&revokedAt)
		if err != nil {
			return err
		}
		return analytics.Record(ctx, tx, issuer.String(), "certificate_revoked", map[string]any{"certificate_id": id})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fault.New(fault.Conflict, CodeRevoked, "id: the certificate was revoked just now by someone else")
	}
	return revokedAt, postgres.Translate(err, "certificate")
}

// Record is a certificate row as the verification page and the PDF need it.
type Record struct {
	Snapshot
	Payload string
	PDFKey  string
	// PDFError is why the PDF could not be made, once its rendering
	// stopped (see RenderWorker and Reconcile); empty otherwise.
	PDFError   string
	RevokedAt  *time.Time
	AdmittedAt *time.Time
}

// Get reads certificate id (fault.NotFound when there is none).
func (s *Store) Get(ctx context.Context, id uuid.UUID) (*Record, error) {
	return get(ctx, s.pool, id)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func get(ctx context.Context, q querier, id uuid.UUID) (*Record, error) {
	r := &Record{}
	var father, mother, category, section, stream, admission, desc, pdf, pdfError *string
	var reason string
	err := q.QueryRow(ctx, `SELECT id, issuer_udise, issuer_name, student_name, father_name, mother_name, date_of_birth,
			gender, category, grade, section, stream, admission_number, admission_date, leaving_date, reason, description,
			issued_at, key_id, payload, pdf_key, pdf_error, revoked_at, admitted_at
		FROM leaving_certificate WHERE id = $1`, id).Scan(&r.ID, &r.IssuerUDISE, &r.IssuerName, &r.Name, &father, &mother,
		&r.DateOfBirth, &r.Gender, &category, &r.Grade, &section, &stream, &admission, &r.AdmissionDate, &r.LeavingDate,
		&reason, &desc, &r.IssuedAt, &r.KeyID, &r.Payload, &pdf, &pdfError, &r.RevokedAt, &r.AdmittedAt)
	if err != nil {
		return nil, postgres.Translate(err, "certificate "+id.String())
	}
	r.FatherName, r.MotherName, r.Category, r.Section = deref(father), deref(mother), deref(category), deref(section)
	r.Stream, r.AdmissionNumber, r.Description, r.PDFKey = deref(stream), deref(admission), deref(desc), deref(pdf)
	r.PDFError = deref(pdfError)
	r.Reason = Reason(reason)
	return r, nil
}

// Verification is what verifyCertificate answers.
type Verification struct {
	Valid   bool
	Problem Problem
	Record  *Record // nil unless the signature verified and the certificate is known
	Opened  Opened
}

// Verify checks payload's signature against the published keys and then
// its state here: revoked, or already used to admit the child. A payload
// whose signature verifies but which shala has no record of is answered
// REVOKED (it cannot be honoured online).
func (s *Store) Verify(ctx context.Context, payload string) (Verification, error) {
	o, err := openWith(ctx, s.signer, payload)
	if err != nil {
		return Verification{}, err
	}
	if o.Problem != "" {
		return Verification{Problem: o.Problem, Opened: o}, nil
	}
	r, err := s.Get(ctx, o.Snapshot.ID)
	if fault.KindOf(err) == fault.NotFound {
		return Verification{Problem: Revoked, Opened: o}, nil
	}
	if err != nil {
		return Verification{}, err
	}
	v := Verification{Valid: true, Record: r, Opened: o}
	switch {
	case r.RevokedAt != nil:
		v.Valid, v.Problem = false, Revoked
	case r.AdmittedAt != nil:
		v.Valid, v.Problem = false, AlreadyUsed
	}
	return v, nil
}

// openWith opens payload with signer's keys. A kid they lack may be a
// version another replica has read first (a rotation in Vault): a signer
// that can read its versions again (TransitSigner.ReRead) is asked to, and
// the payload opened once more.
func openWith(ctx context.Context, signer Signer, payload string) (Opened, error) {
	keys, err := signer.Keys(ctx)
	if err != nil {
		return Opened{}, fmt.Errorf("certificate keys: %w", err)
	}
	o := Open(payload, keys)
	if r, ok := signer.(interface{ ReRead() bool }); ok && o.Problem == UnknownKey && r.ReRead() {
		if keys, err = signer.Keys(ctx); err != nil {
			return Opened{}, fmt.Errorf("certificate keys: %w", err)
		}
		o = Open(payload, keys)
	}
	return o, nil
}

// AdmitInput is admitTransferredStudent's arguments.
type AdmitInput struct {
	QR              string  `json:"qr"`
	Grade           int     `json:"grade"`
	Section         *string `json:"section"`
	AdmissionNumber *string `json:"admissionNumber"`
}

// Admit creates a student in school from a valid certificate's snapshot,
// linked to the certificate, which it uses up: of any number of concurrent
// admissions with one certificate exactly one succeeds (the certificate row
// is locked, then checked, then claimed, in the transaction that creates the
// student). The child's Aadhaar follows them. The receiving school's
// choices are held to registerStudent's rules: the admission number, the
// section, and a class that fits the child's age.
func (s *Store) Admit(ctx context.Context, schoolID uuid.UUID, actor string, in AdmitInput) (uuid.UUID, error) {
	if in.Grade < 1 || in.Grade > 12 {
		return uuid.Nil, fault.Invalidf("grade", "a class from 1 to 12, got %d", in.Grade)
	}
	section, err := student.CheckSection("section", deref(in.Section))
	if err != nil {
		return uuid.Nil, err
	}
	number := strings.TrimSpace(deref(in.AdmissionNumber))
	if err := student.CheckAdmissionNumber("admissionNumber", number); err != nil {
		return uuid.Nil, err
	}
	o, err := openWith(ctx, s.signer, in.QR)
	if err != nil {
		return uuid.Nil, err
	}
	if o.Problem != "" {
		return uuid.Nil, &fault.Error{Kind: fault.Unprocessable, Code: fault.Code(o.Problem), Field: "qr",
			Message: "qr: not a valid leaving certificate (" + string(o.Problem) + ")"}
	}
	certID := o.Snapshot.ID
	newID := uuid.New()
	now := s.Now().UTC()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := student.MarkShala(ctx, tx); err != nil {
			return err
		}
		var oldStudent uuid.UUID
		var revoked, admitted *time.Time
		err := tx.QueryRow(ctx, `SELECT student_id, revoked_at, admitted_at FROM leaving_certificate WHERE id = $1 FOR UPDATE`,
			certID).Scan(&oldStudent, &revoked, &admitted)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fault.New(fault.Unprocessable, CodeRevoked, "qr: this certificate is not honoured (no record of it)")
		case err != nil:
			return err
		case revoked != nil:
			return fault.New(fault.Unprocessable, CodeRevoked, "qr: this certificate was revoked by the school that issued it")
		case admitted != nil:
			return fault.New(fault.Conflict, CodeAlreadyUsed, "qr: this certificate has already been used to admit the child")
		}
		var year *string
		yearStart := today(now)
		if err := tx.QueryRow(ctx, `SELECT id, starts_on FROM academic_year WHERE is_current`).Scan(&year, &yearStart); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		// registerStudent's rule: the class fits the child's age.
		if dob := o.Snapshot.DateOfBirth; dob != nil {
			if err := student.CheckAge("grade", *dob, yearStart, in.Grade); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO student (id, school_id, name, father_name, mother_name, guardian_phone, gender,
				category, date_of_birth, admission_number, admission_date, grade, section, stream, academic_year,
				aadhaar_hash, aadhaar_ciphertext, aadhaar_last4, is_cwsn, cwsn_type, transfer_source, admitted_from_certificate)
			SELECT $1, $2, c.student_name, c.father_name, c.mother_name, old.guardian_phone, c.gender, c.category,
				c.date_of_birth, nullif($3, ''), $4, $5::smallint, nullif($6, ''), CASE WHEN $5::smallint >= 11 THEN c.stream END, $7,
				old.aadhaar_hash, old.aadhaar_ciphertext, old.aadhaar_last4, old.is_cwsn, old.cwsn_type, 'IN_STATE', c.id
			FROM leaving_certificate c JOIN student old ON old.id = c.student_id
			WHERE c.id = $8`, newID, schoolID, number, today(now), in.Grade, section, year, certID)
		if err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) {
				switch pgErr.ConstraintName {
				case "student_school_id_admission_number_key":
					return &fault.Error{Kind: fault.Conflict, Code: student.CodeAdmissionNumberTaken, Field: "admissionNumber",
						Message: "admissionNumber: " + number + " is already the admission number of another student of this school"}
				case "student_aadhaar_active":
					return &fault.Error{Kind: fault.Conflict, Code: student.CodeAadhaarEnrolled, Field: "qr",
						Message: "qr: this child is enrolled in another school already"}
				}
			}
			return postgres.Translate(err, "student")
		}
		if _, err := tx.Exec(ctx, `UPDATE leaving_certificate SET admitted_student_id = $2, admitted_school_id = $3, admitted_at = $4
			WHERE id = $1`, certID, newID, schoolID, now); err != nil {
			return err
		}
		return student.AddEvent(ctx, tx, student.Event{StudentID: newID, SchoolID: schoolID, Kind: student.EventTransferredIn,
			AcademicYear: deref(year), Grade: in.Grade, Section: section, Actor: actor, CertificateID: &certID,
			Details: map[string]any{"fromUdise": o.Snapshot.IssuerUDISE}})
	})
	return newID, err
}

// RenderArgs asks for the PDF of a certificate. Unique by certificate.
type RenderArgs struct {
	CertificateID uuid.UUID `json:"certificate_id" river:"unique"`
}

// Kind is the River job kind.
func (RenderArgs) Kind() string { return "certificate.render" }

// InsertOpts makes the job unique by certificate.
func (RenderArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}, MaxAttempts: 10}
}

// ReconcileArgs asks for a sweep of certificates whose PDF job is missing.
type ReconcileArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (ReconcileArgs) Kind() string { return "certificate.reconcile" }

// ReconcileAfter is how old a certificate without a PDF must be before the
// sweep enqueues its job again.
const ReconcileAfter = 2 * time.Minute

// MaxRenderRequeues is how many times Reconcile queues again the render of
// a certificate whose render jobs ended discarded without recording why
// (counted since its last recorded failure, while River keeps discarded
// jobs: 7 days); the next time, it records the failure instead.
const MaxRenderRequeues = 3

// Reconcile enqueues render jobs for certificates older than minAge that
// have no PDF, no recorded failure and no job waiting or running (their
// job was lost or ended discarded): the 500 it takes are all ones that
// need it, so a backlog of queued renders never hides a lost one. A render
// job whose last attempt fails records its error on the certificate
// (RenderWorker), which ends its rendering; one that ends discarded with
// nothing recorded — River's rescuer discards the job of a process killed
// in its last attempt — is queued again MaxRenderRequeues times, and then
// the sweep records the failure itself, so no certificate is rendered for
// ever. It is the queue.Sweep of ReconcileArgs.
func Reconcile(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, minAge time.Duration) (n int, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// Discarded jobs count from the last recorded failure: an
		// operator who clears pdf_error gives the render new rounds.
		rows, err := tx.Query(ctx, `SELECT c.id,
				(SELECT count(*) FROM river_job j WHERE j.kind = $2 AND j.args ->> 'certificate_id' = c.id::text
				   AND j.state = 'discarded' AND j.created_at > coalesce(c.pdf_failed_at, '-infinity'))
			FROM leaving_certificate c
			WHERE c.pdf_key IS NULL AND c.pdf_error IS NULL AND c.issued_at < now() - make_interval(secs => $1)
			  AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.kind = $2
			        AND j.args ->> 'certificate_id' = c.id::text
			        AND j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled'))
			ORDER BY c.issued_at LIMIT 500`, minAge.Seconds(), RenderArgs{}.Kind())
		if err != nil {
			return err
		}
		var again, abandoned []uuid.UUID
		var discarded []int64
		var id uuid.UUID
		var d int64
		if _, err := pgx.ForEachRow(rows, []any{&id, &d}, func() error {
			if d > MaxRenderRequeues {
				abandoned, discarded = append(abandoned, id), append(discarded, d)
			} else {
				again = append(again, id)
			}
			return nil
		}); err != nil {
			return err
		}
		if len(abandoned) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE leaving_certificate c
				SET pdf_error = format('rendering stopped after %s render jobs ended discarded with no failure recorded here (a process stopped during a last attempt?); their errors are in River UI', a.discarded),
				    pdf_failed_at = now()
				FROM unnest($1::uuid[], $2::bigint[]) AS a (id, discarded)
				WHERE c.id = a.id AND c.pdf_key IS NULL AND c.pdf_error IS NULL`, abandoned, discarded); err != nil {
				return fmt.Errorf("record abandoned certificate pdfs: %w", err)
			}
		}
		if len(again) == 0 {
			return nil
		}
		n, err = queue.EnqueueEach(ctx, tx, q, func(id uuid.UUID) river.JobArgs { return RenderArgs{CertificateID: id} },
			`SELECT unnest($1::uuid[])`, again)
		return err
	})
	return n, err
}
