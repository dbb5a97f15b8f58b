package exam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/upload"
)

// Store is exams, students and their uploads in Postgres, with the answer
// files in blob storage.
type Store struct {
	pool  *pgxpool.Pool
	files *upload.Store
	queue queue.Inserter
	now   Clock
	log   *slog.Logger
}

// Deps are what a Store uses. Files and Queue may be nil for the examiner's
// actions, which store no file.
type Deps struct {
	Pool  *pgxpool.Pool
	Files *upload.Store
	Queue queue.Inserter
	// Now is the clock (time.Now when nil); expiry and exam windows follow it.
	Now Clock
	Log *slog.Logger
}

// New returns a Store.
func New(d Deps) *Store {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Store{pool: d.Pool, files: d.Files, queue: d.Queue, now: d.Now, log: d.Log}
}

// NewFiles is the upload store for answer files: 3 MiB, documents, under
// BlobPrefix in bucket.
func NewFiles(bucket *blob.Bucket) *upload.Store {
	return upload.New(bucket, BlobPrefix, MaxFileBytes)
}

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// Files is where answer files are stored.
func (s *Store) Files() *upload.Store { return s.files }

// CreateExam creates an exam owned by examiner.
func (s *Store) CreateExam(ctx context.Context, examiner, title string, opensAt, closesAt *time.Time) (uuid.UUID, error) {
	title = strings.TrimSpace(title)
	if n := len([]rune(title)); n == 0 || n > 200 {
		return uuid.Nil, fault.Invalidf("title", "must be 1–200 characters")
	}
	if opensAt != nil && closesAt != nil && !closesAt.After(*opensAt) {
		return uuid.Nil, fault.Invalidf("closesAt", "must be after opensAt")
	}
	if examiner == "" {
		return uuid.Nil, fault.New(fault.Forbidden, "", "session has no x-hasura-user-id")
	}
	var id uuid.UUID
	err := s.pool.QueryRow(ctx, `INSERT INTO exam (title, examiner_id, opens_at, closes_at) VALUES ($1, $2, $3, $4) RETURNING id`,
		title, examiner, opensAt, closesAt).Scan(&id)
	return id, postgres.Translate(err, "exam")
}

// CreatedStudent is a student with the upload code to hand them.
type CreatedStudent struct {
	ID         uuid.UUID
	Nickname   string
	UploadCode string
}

// lockExam locks the examiner's exam for the transaction; another
// examiner's exam is not found (its existence is not revealed).
func lockExam(ctx context.Context, tx pgx.Tx, examiner string, examID uuid.UUID) (closesAt, purgedAt *time.Time, err error) {
	err = tx.QueryRow(ctx, `SELECT closes_at, purged_at FROM exam WHERE id = $1 AND examiner_id = $2 FOR UPDATE`,
		examID, examiner).Scan(&closesAt, &purgedAt)
	return closesAt, purgedAt, postgres.Translate(err, "exam "+examID.String())
}

// CreateStudents adds students to the examiner's exam in one transaction:
// all or none. Every problem comes back as a RowError (index and field) and
// then nothing is created. lines, when the rows came from CSV, are their
// line numbers, used in messages.
func (s *Store) CreateStudents(ctx context.Context, examiner string, examID uuid.UUID, rows []StudentInput, lines []int) ([]CreatedStudent, []RowError, error) {
	if len(rows) == 0 {
		return nil, nil, fault.Invalidf("students", "give at least one student (students or csv)")
	}
	if len(rows) > MaxStudentsPerCall {
		return nil, nil, fault.Invalidf("students", "at most %d per call", MaxStudentsPerCall)
	}
	rows, errs := validateStudents(rows)
	var out []CreatedStudent
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, purged, err := lockExam(ctx, tx, examiner, examID)
		if err != nil {
			return err
		}
		if purged != nil {
			return fault.New(fault.Unprocessable, CodeExamPurged, "exam: was purged; create a new exam")
		}
		emails := make([]string, len(rows))
		for i, r := range rows {
			emails[i] = r.Email
		}
		q, err := tx.Query(ctx, `SELECT email FROM exam_student WHERE exam_id = $1 AND email = ANY($2)`, examID, emails)
		if err != nil {
			return err
		}
		taken, err := pgx.CollectRows(q, pgx.RowTo[string])
		if err != nil {
			return err
		}
		takenSet := map[string]bool{}
		for _, e := range taken {
			takenSet[e] = true
		}
		for i, r := range rows {
			if takenSet[r.Email] {
				errs = append(errs, RowError{Index: i, Field: "email", Message: "email: " + r.Email + " is already a student of this exam"})
			}
		}
		if len(errs) > 0 {
			return errRefused
		}
		out = make([]CreatedStudent, len(rows))
		for i, r := range rows {
			out[i] = CreatedStudent{Nickname: r.Nickname}
			err := withFreshCode(ctx, tx, func(tx pgx.Tx, code string) error {
				out[i].UploadCode = code
				return tx.QueryRow(ctx, `INSERT INTO exam_student (exam_id, nickname, first_name, last_name, email, upload_code)
					VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, examID, r.Nickname, r.FirstName, r.LastName, r.Email, code).Scan(&out[i].ID)
			})
			if constraint(err) == "exam_student_email" {
				errs = append(errs, RowError{Index: i, Field: "email", Message: "email: " + r.Email + " was just added to this exam by another request"})
				return errRefused
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errRefused) {
		return nil, onLines(errs, lines), nil
	}
	if err != nil {
		return nil, nil, postgres.Translate(err, "exam_student")
	}
	return out, nil, nil
}

// errRefused rolls back a transaction whose input was refused row by row.
var errRefused = errors.New("refused")

// withFreshCode runs insert with a new upload code, again with another code
// if the first collides with an existing one (one chance in ~10⁸ with 10,000
// students); a savepoint keeps the transaction usable.
func withFreshCode(ctx context.Context, tx pgx.Tx, insert func(tx pgx.Tx, code string) error) error {
	for try := 0; ; try++ {
		err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error { return insert(sp, NewUploadCode()) })
		if err == nil || !strings.HasSuffix(constraint(err), "upload_code_key") || try == 4 {
			return err
		}
	}
}

// ResetUploadCode gives the examiner's student a new upload code; the old
// one stops working at once (a resumable upload in progress continues
// under the new code).
func (s *Store) ResetUploadCode(ctx context.Context, examiner string, studentID uuid.UUID) (CreatedStudent, error) {
	out := CreatedStudent{ID: studentID}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return withFreshCode(ctx, tx, func(tx pgx.Tx, code string) error {
			out.UploadCode = code
			return tx.QueryRow(ctx, `UPDATE exam_student st SET upload_code = $3 FROM exam e
				WHERE st.id = $1 AND e.id = st.exam_id AND e.examiner_id = $2 AND st.purged_at IS NULL
				RETURNING st.nickname`, studentID, examiner, code).Scan(&out.Nickname)
		})
	})
	if err != nil {
		return CreatedStudent{}, postgres.Translate(err, "student "+studentID.String())
	}
	return out, nil
}

// Purged is the outcome of PurgeExam.
type Purged struct {
	ExamID   uuid.UUID
	PurgedAt time.Time
	Students int
}

// PurgeExam removes the students' personal data (names, e-mail, nickname,
// upload code, file names) of an exam closed more than PurgeAfter ago, and
// deletes any file still stored. Counts, sizes and hashes stay. Purging
// again changes nothing.
func (s *Store) PurgeExam(ctx context.Context, examiner string, examID uuid.UUID) (Purged, error) {
	now := s.now()
	out := Purged{ExamID: examID}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		closes, purged, err := lockExam(ctx, tx, examiner, examID)
		if err != nil {
			return err
		}
		if purged != nil {
			out.PurgedAt = *purged
			return tx.QueryRow(ctx, `SELECT count(*) FROM exam_student WHERE exam_id = $1`, examID).Scan(&out.Students)
		}
		if closes == nil {
			return fault.New(fault.Unprocessable, CodeNotPurgeable, "exam: has no closing time; set closesAt and purge %d days after it", int(PurgeAfter.Hours()/24))
		}
		if allowed := closes.Add(PurgeAfter); now.Before(allowed) {
			return fault.New(fault.Unprocessable, CodeNotPurgeable, "exam: closed %s; its students' data can be purged from %s",
				closes.UTC().Format(time.RFC3339), allowed.UTC().Format(time.RFC3339))
		}
		tag, err := tx.Exec(ctx, `UPDATE exam_student SET nickname = NULL, first_name = NULL, last_name = NULL, email = NULL,
			upload_code = NULL, purged_at = $2 WHERE exam_id = $1`, examID, now)
		if err != nil {
			return err
		}
		out.Students = int(tag.RowsAffected())
		rows, err := tx.Query(ctx, `UPDATE exam_upload u SET file_name = NULL,
				state = CASE WHEN u.state = 'active' THEN 'deleted' ELSE u.state END,
				state_changed_at = CASE WHEN u.state = 'active' THEN $2 ELSE u.state_changed_at END
			FROM exam_student st WHERE st.id = u.student_id AND st.exam_id = $1 AND u.deleted_at IS NULL
			RETURNING u.id, u.blob_key`, examID, now)
		if err != nil {
			return err
		}
		pending, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DeleteBlobArgs])
		if err != nil {
			return err
		}
		if err := s.enqueueDeletes(ctx, tx, pending); err != nil {
			return err
		}
		// File names of uploads whose blobs are already gone.
		if _, err := tx.Exec(ctx, `UPDATE exam_upload u SET file_name = NULL FROM exam_student st
			WHERE st.id = u.student_id AND st.exam_id = $1 AND u.file_name IS NOT NULL`, examID); err != nil {
			return err
		}
		out.PurgedAt = now
		_, err = tx.Exec(ctx, `UPDATE exam SET purged_at = $2 WHERE id = $1`, examID, now)
		return err
	})
	if err != nil {
		return Purged{}, postgres.Translate(err, "exam "+examID.String())
	}
	return out, nil
}

// enqueueDeletes queues a blob deletion per upload, in tx.
func (s *Store) enqueueDeletes(ctx context.Context, tx pgx.Tx, uploads []DeleteBlobArgs) error {
	if len(uploads) == 0 {
		return nil
	}
	jobs := make([]river.InsertManyParams, len(uploads))
	for i, a := range uploads {
		jobs[i] = river.InsertManyParams{Args: a}
	}
	if _, err := s.queue.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue blob deletions: %w", err)
	}
	return nil
}

// constraint is the name of the constraint err violated, or "".
func constraint(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}
