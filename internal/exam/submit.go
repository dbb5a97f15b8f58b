package exam

import (
	"context"
	"errors"
	"io"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/upload"
)

// Student is a student as their upload code opens them: no names, no
// e-mail.
type Student struct {
	ID          uuid.UUID
	ExamID      uuid.UUID
	ExamTitle   string
	OpensAt     *time.Time
	ClosesAt    *time.Time
	UploadsUsed int
}

// UploadsLeft is how many more uploads the student may make.
func (s Student) UploadsLeft() int { return MaxUploads - s.UploadsUsed }

// unknownCode is the answer for a code that opens nothing. The web edge
// counts these per client (enumeration).
func unknownCode() error {
	return fault.New(fault.NotFound, CodeUnknownCode, "no student has this upload code")
}

// IsUnknownCode reports whether err says a code opens nothing.
func IsUnknownCode(err error) bool {
	f := fault.As(err)
	return f.Kind == fault.NotFound && f.Code == CodeUnknownCode
}

// StudentByCode finds the student an upload code belongs to (404 for an
// unknown, malformed, reset or purged code).
func (s *Store) StudentByCode(ctx context.Context, code string) (Student, error) {
	if !ValidUploadCode(code) {
		return Student{}, unknownCode()
	}
	var st Student
	err := s.pool.QueryRow(ctx, `SELECT st.id, e.id, e.title, e.opens_at, e.closes_at, st.uploads_used
		FROM exam_student st JOIN exam e ON e.id = st.exam_id WHERE st.upload_code = $1`, code).
		Scan(&st.ID, &st.ExamID, &st.ExamTitle, &st.OpensAt, &st.ClosesAt, &st.UploadsUsed)
	if errors.Is(err, pgx.ErrNoRows) {
		return Student{}, unknownCode()
	}
	return st, postgres.Translate(err, "student")
}

// CanUpload checks that st may start an upload at t: the exam is open and
// an upload is left. The limit is held by the schema at acceptance; this
// refuses early (before any bytes are sent, for resumable uploads).
func CanUpload(st Student, t time.Time) error {
	if st.OpensAt != nil && t.Before(*st.OpensAt) {
		return fault.New(fault.Unprocessable, CodeExamNotOpen, "exam: opens at %s", st.OpensAt.UTC().Format(time.RFC3339))
	}
	if st.ClosesAt != nil && !t.Before(*st.ClosesAt) {
		return fault.New(fault.Unprocessable, CodeExamClosed, "exam: closed at %s", st.ClosesAt.UTC().Format(time.RFC3339))
	}
	if st.UploadsUsed >= MaxUploads {
		return limitReached()
	}
	return nil
}

func limitReached() error {
	return fault.New(fault.Unprocessable, CodeUploadLimit, "file: all %d uploads are used", MaxUploads)
}

// Status is what a student sees of their own submission.
type Status struct {
	Student
	// Current is the student's active, unexpired upload, if any.
	Current *Current
}

// Current is the student's current file, without its code or name.
type Current struct {
	Size       int64
	SHA256     string
	UploadedAt time.Time
	ExpiresAt  time.Time
}

// Status is the student's status by upload code.
func (s *Store) Status(ctx context.Context, code string) (Status, error) {
	st, err := s.StudentByCode(ctx, code)
	if err != nil {
		return Status{}, err
	}
	out := Status{Student: st}
	var c Current
	err = s.pool.QueryRow(ctx, `SELECT size, sha256, uploaded_at, expires_at FROM exam_upload
		WHERE student_id = $1 AND state = 'active' AND expires_at > $2`, st.ID, s.now()).
		Scan(&c.Size, &c.SHA256, &c.UploadedAt, &c.ExpiresAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return Status{}, postgres.Translate(err, "exam_upload")
	default:
		out.Current = &c
	}
	return out, nil
}

// Submission is one file handed in.
type Submission struct {
	// Code is the student's upload code.
	Code string
	// FileName is the name the student's device gave; kept for the
	// download, never used as a key.
	FileName string
	// Body is the file's bytes.
	Body io.Reader
	// StartedAt is when the upload began (a resumable upload's creation),
	// for the exam's window; zero means now.
	StartedAt time.Time
	// TusID is the resumable upload the file came from, so that accepting
	// it again (a retried finish) returns the first receipt.
	TusID string
}

// Receipt is what a student gets for an accepted file.
type Receipt struct {
	UploadID         uuid.UUID
	VerificationCode string
	Size             int64
	SHA256           string
	UploadsLeft      int
	ExpiresAt        time.Time
}

// Submit accepts a file: it checks the code, the exam's window (for an
// upload started before the close, that it finishes within
// LateFinishGrace after it) and the limit, streams the file into storage (cap, sniffed type, hash), then in
// one transaction counts the upload (the CHECK on uploads_used refuses a
// sixth), marks the previous active upload replaced — its verification code
// answers 410 from the commit on — records the new one as the only active
// upload and queues the old file's deletion. If the transaction fails the
// new blob is deleted. A failing store answers 503 and is recorded in
// storage_failure.
func (s *Store) Submit(ctx context.Context, sub Submission) (Receipt, error) {
	st, err := s.StudentByCode(ctx, sub.Code)
	if err != nil {
		return Receipt{}, err
	}
	if sub.TusID != "" {
		if r, ok, err := s.receiptForTus(ctx, st, sub.TusID); err != nil || ok {
			return r, err
		}
	}
	started := sub.StartedAt
	if started.IsZero() {
		started = s.now()
	}
	if err := CanUpload(st, started); err != nil {
		return Receipt{}, err
	}
	if now := s.now(); st.ClosesAt != nil && !now.Before(st.ClosesAt.Add(LateFinishGrace)) {
		// Started in time (a resumable upload) but finished too late.
		return Receipt{}, fault.New(fault.Unprocessable, CodeExamClosed,
			"exam: closed at %s; an upload started before then had until %s to finish",
			st.ClosesAt.UTC().Format(time.RFC3339), st.ClosesAt.Add(LateFinishGrace).UTC().Format(time.RFC3339))
	}
	f, err := s.files.Put(ctx, sub.Body)
	if err != nil {
		var se *upload.StorageError
		if errors.As(err, &se) {
			s.storageFailed(ctx, se)
		}
		return Receipt{}, err
	}
	// Every byte is stored. Recording it no longer depends on the client,
	// who may be gone (a phone losing its signal after its last byte): a
	// cancel mid-commit would leave the outcome unknown, and the blob of an
	// upload that did commit would be deleted below as refused.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), acceptTimeout)
	defer cancel()
	// uploaded_at is when the bytes were in (a slow link takes minutes),
	// to the microsecond Postgres keeps, so the receipt says what is stored.
	r, dup, err := s.accept(actx, st, sub, f, s.now().Truncate(time.Microsecond))
	if err != nil || dup {
		s.discard(ctx, f.Key)
	}
	return r, err
}

// acceptTimeout bounds recording a stored file (a few statements in one
// transaction), now that the client's cancellation no longer does.
const acceptTimeout = 30 * time.Second

// accept records an uploaded file as the student's one active upload. dup
// says a concurrent finish of the same resumable upload won: r is its
// receipt and f is not needed.
func (s *Store) accept(ctx context.Context, st Student, sub Submission, f upload.File, now time.Time) (r Receipt, dup bool, err error) {
	r = Receipt{Size: f.Size, SHA256: f.SHA256, ExpiresAt: now.Add(Lifetime)}
	var tusID *string
	if sub.TusID != "" {
		tusID = &sub.TusID
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var used int
		err := tx.QueryRow(ctx, `UPDATE exam_student SET uploads_used = uploads_used + 1
			WHERE id = $1 AND upload_code = $2 RETURNING uploads_used`, st.ID, sub.Code).Scan(&used)
		if errors.Is(err, pgx.ErrNoRows) {
			return unknownCode() // reset or purged meanwhile
		}
		if constraint(err) == "exam_student_uploads_used_check" {
			return limitReached()
		}
		if err != nil {
			return err
		}
		r.UploadsLeft = MaxUploads - used
		rows, err := tx.Query(ctx, `UPDATE exam_upload SET state = 'replaced', state_changed_at = $2
			WHERE student_id = $1 AND state = 'active' RETURNING id, blob_key`, st.ID, now)
		if err != nil {
			return err
		}
		replaced, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DeleteBlobArgs])
		if err != nil {
			return err
		}
		for try := 0; ; try++ {
			r.VerificationCode = NewVerificationCode()
			err = pgx.BeginFunc(ctx, tx, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `INSERT INTO exam_upload (student_id, attempt, blob_key, file_name, content_type, size, sha256,
						verification_code, uploaded_at, expires_at, state_changed_at, tus_id)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $11) RETURNING id`,
					st.ID, used, f.Key, cleanFileName(sub.FileName), f.ContentType, f.Size, f.SHA256,
					r.VerificationCode, now, r.ExpiresAt, tusID).Scan(&r.UploadID)
			})
			if constraint(err) != "exam_upload_verification_code_key" || try == 4 {
				break
			}
		}
		if err != nil {
			return err
		}
		return s.enqueueDeletes(ctx, tx, replaced)
	})
	if err != nil {
		if c := constraint(err); c == "exam_upload_tus_id_key" || c == "exam_upload_student_id_attempt_key" {
			// A concurrent finish of the same resumable upload, or a
			// concurrent upload that took this attempt number.
			if sub.TusID != "" {
				if first, ok, rerr := s.receiptForTus(ctx, st, sub.TusID); rerr == nil && ok {
					return first, true, nil
				}
			}
			return Receipt{}, false, limitReached()
		}
		return Receipt{}, false, postgres.Translate(err, "exam_upload")
	}
	return r, false, nil
}

// receiptForTus returns the receipt of a resumable upload accepted before.
func (s *Store) receiptForTus(ctx context.Context, st Student, tusID string) (Receipt, bool, error) {
	r := Receipt{}
	var used int
	err := s.pool.QueryRow(ctx, `SELECT u.id, u.verification_code, u.size, u.sha256, u.expires_at, st.uploads_used
		FROM exam_upload u JOIN exam_student st ON st.id = u.student_id WHERE u.tus_id = $1 AND u.student_id = $2`, tusID, st.ID).
		Scan(&r.UploadID, &r.VerificationCode, &r.Size, &r.SHA256, &r.ExpiresAt, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return Receipt{}, false, nil
	}
	if err != nil {
		return Receipt{}, false, postgres.Translate(err, "exam_upload")
	}
	r.UploadsLeft = MaxUploads - used
	return r, true, nil
}

// storageFailed records a failed write and queues the deletion of whatever
// part of it the store may hold; the student is told to try again.
func (s *Store) storageFailed(ctx context.Context, se *upload.StorageError) {
	ctx = context.WithoutCancel(ctx)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := upload.RecordFailure(ctx, tx, se.Op, se.Key, se.Err); err != nil {
			return err
		}
		_, err := s.queue.InsertTx(ctx, tx, DeleteBlobArgs{Key: se.Key}, nil)
		return err
	})
	if err != nil {
		s.log.ErrorContext(ctx, "storage failure not recorded", "op", se.Op, "key", se.Key, "cause", se.Err, "err", err)
		return
	}
	s.log.WarnContext(ctx, "blob store failed; recorded for retry", "op", se.Op, "key", se.Key, "err", se.Err)
}

// discard deletes a blob whose upload was refused after it was stored; if
// the store fails, the deletion becomes a job that retries.
func (s *Store) discard(ctx context.Context, key string) {
	ctx = context.WithoutCancel(ctx)
	err := s.files.Delete(ctx, key)
	if err == nil {
		return
	}
	var se *upload.StorageError
	if errors.As(err, &se) {
		s.storageFailed(ctx, se)
		return
	}
	s.log.ErrorContext(ctx, "discard refused upload", "key", key, "err", err)
}

// cleanFileName keeps the last path element of a device's file name,
// without control characters, at most 255 bytes of valid UTF-8; "" becomes
// NULL.
func cleanFileName(name string) *string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = path.Base(strings.ToValidUTF8(name, ""))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '"' {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == "/" {
		return nil
	}
	return &name
}

// File is an upload as a verification code or a download link opens it.
type File struct {
	UploadID         uuid.UUID
	BlobKey          string
	VerificationCode string
	FileName         string
	ContentType      string
	Size             int64
	SHA256           string
	UploadedAt       time.Time
	ExpiresAt        time.Time
	ExamTitle        string
	Nickname         string
}

const fileColumns = `u.id, u.blob_key, u.verification_code, coalesce(u.file_name, ''), u.content_type, u.size, u.sha256,
	u.uploaded_at, u.expires_at, e.title, coalesce(st.nickname, ''), u.state`

// Verify opens a file by its verification code: 404 for an unknown code,
// 410 saying why for a replaced, expired or deleted file. A file is expired
// the moment expires_at passes, swept or not.
func (s *Store) Verify(ctx context.Context, code string) (File, error) {
	notFound := fault.New(fault.NotFound, CodeUnknownCode, "no file has this verification code")
	if !ValidVerificationCode(code) {
		return File{}, notFound
	}
	f, state, err := s.file(ctx, `u.verification_code = $1`, code)
	if errors.Is(err, pgx.ErrNoRows) {
		return File{}, notFound
	}
	if err != nil {
		return File{}, err
	}
	return f, s.Available(f, state)
}

// FileByID reads an upload and its state, available or not (Available
// says); 404 if there is none. Download links use it: their signature
// covers the blob key, so it is read before anything else is said.
func (s *Store) FileByID(ctx context.Context, id uuid.UUID) (File, string, error) {
	f, state, err := s.file(ctx, `u.id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return File{}, "", fault.New(fault.NotFound, "", "file not found")
	}
	return f, state, err
}

// Available is nil for an active, unexpired upload, else the 410 saying
// why: replaced (a link issued before the replacement stops working at
// once), deleted, or expired (the moment expires_at passes).
func (s *Store) Available(f File, state string) error {
	switch {
	case state == StateReplaced:
		return fault.New(fault.Gone, CodeReplaced, "file: was replaced by a newer upload of the same student")
	case state == StateDeleted:
		return fault.New(fault.Gone, CodeDeleted, "file: was deleted with the exam's data")
	case state == StateExpired || !s.now().Before(f.ExpiresAt):
		return fault.New(fault.Gone, CodeExpired, "file: expired at %s (files are kept %d hours)",
			f.ExpiresAt.UTC().Format(time.RFC3339), int(Lifetime.Hours()))
	}
	return nil
}

func (s *Store) file(ctx context.Context, where string, args ...any) (File, string, error) {
	var f File
	var state string
	err := s.pool.QueryRow(ctx, `SELECT `+fileColumns+` FROM exam_upload u
		JOIN exam_student st ON st.id = u.student_id JOIN exam e ON e.id = st.exam_id WHERE `+where, args...).
		Scan(&f.UploadID, &f.BlobKey, &f.VerificationCode, &f.FileName, &f.ContentType, &f.Size, &f.SHA256,
			&f.UploadedAt, &f.ExpiresAt, &f.ExamTitle, &f.Nickname, &state)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		err = postgres.Translate(err, "exam_upload")
	}
	return f, state, err
}

// DeleteBlobArgs is the job that deletes an answer file from storage: a
// replaced, expired or purged upload's (UploadID set), or the remains of a
// write that failed or was refused (UploadID zero). Unique by its
// arguments while queued.
type DeleteBlobArgs struct {
	UploadID uuid.UUID `json:"upload_id"`
	Key      string    `json:"key"`
}

// Kind is the job kind.
func (DeleteBlobArgs) Kind() string { return "exam_blob_delete" }

// InsertOpts: one job per blob while one is queued.
func (DeleteBlobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}
