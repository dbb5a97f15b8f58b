package student

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"gocloud.dev/blob"

	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/upload"
)

// DocumentMaxBytes is the largest transfer document a school may upload:
// the same cap as exam answer files (3 MiB), with the same sniffed types
// (upload.Documents: PDF, photos of paper, text, office documents).
const DocumentMaxBytes = 3 << 20

// DocumentPrefix is where transfer documents are kept in blob storage.
const DocumentPrefix = "students/documents/"

// UploadedDocument is a stored transfer document not yet (or already)
// attached to a student (GraphQL-free: the upload endpoint's answer).
type UploadedDocument struct {
	ID          uuid.UUID `json:"id"`
	ContentType string    `json:"contentType"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
}

// AddDocument records a file uploads.Put stored for school; registerStudent
// attaches it to an OTHER_STATE student by its id. Until then its kind is
// OTHER (the registration says what it is).
func (s *Store) AddDocument(ctx context.Context, schoolID uuid.UUID, actor string, f upload.File) (UploadedDocument, error) {
	d := UploadedDocument{ContentType: f.ContentType, Size: f.Size, SHA256: f.SHA256}
	err := s.pool.QueryRow(ctx, `INSERT INTO student_document (school_id, kind, blob_key, content_type, size_bytes, sha256, uploaded_by)
		VALUES ($1, 'OTHER', $2, $3, $4, $5, nullif($6, '')) RETURNING id`,
		schoolID, f.Key, f.ContentType, f.Size, f.SHA256, actor).Scan(&d.ID)
	return d, postgres.Translate(err, "document")
}

// DocumentRetention is how long an uploaded transfer document may wait to
// be attached to a student (registerStudent names it by id within minutes
// of the upload, in practice). Past it, the sweep deletes the file and its
// row: a school that uploaded and never registered leaves nothing behind.
const DocumentRetention = 7 * 24 * time.Hour

// documentSweepBatch is how many unattached documents one sweep deletes:
// a blob delete each, well within queue.MaxTimeout; the rest waits for the
// next run.
const documentSweepBatch = 200

// SweepUnattachedDocuments deletes, from bucket and from the table, up to
// documentSweepBatch documents never attached to a student and uploaded
// more than DocumentRetention ago. The rows stay locked while their files
// are deleted, so a registration attaching one waits and then finds it
// gone (a clear "no unattached document" refusal). A file already gone is
// no error; a failed delete leaves its row (and the rest of the batch) for
// the next run.
func (s *Store) SweepUnattachedDocuments(ctx context.Context, bucket *blob.Bucket) (int, error) {
	cutoff := s.Now().Add(-DocumentRetention)
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, blob_key FROM student_document
			WHERE student_id IS NULL AND uploaded_at < $1
			ORDER BY uploaded_at LIMIT $2 FOR UPDATE SKIP LOCKED`, cutoff, documentSweepBatch)
		if err != nil {
			return err
		}
		ids, keys := []uuid.UUID{}, []string{}
		for rows.Next() {
			var id uuid.UUID
			var key string
			if err := rows.Scan(&id, &key); err != nil {
				rows.Close()
				return err
			}
			ids, keys = append(ids, id), append(keys, key)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, key := range keys {
			if err := upload.Delete(ctx, bucket, key); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM student_document WHERE id = ANY($1) AND student_id IS NULL`, ids)
		n = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// SweepDocumentsArgs is the hourly sweep of unattached documents.
type SweepDocumentsArgs struct{ queue.PerMinute }

// Kind is the job kind.
func (SweepDocumentsArgs) Kind() string { return "student.document_sweep" }

// SweepDocumentsWorker works SweepDocumentsArgs.
type SweepDocumentsWorker struct {
	river.WorkerDefaults[SweepDocumentsArgs]
	Store  *Store
	Bucket *blob.Bucket
}

// Timeout: one batch of blob deletes and a transaction.
func (w *SweepDocumentsWorker) Timeout(*river.Job[SweepDocumentsArgs]) time.Duration {
	return queue.MaxTimeout
}

// Work runs one sweep.
func (w *SweepDocumentsWorker) Work(ctx context.Context, _ *river.Job[SweepDocumentsArgs]) error {
	_, err := w.Store.SweepUnattachedDocuments(ctx, w.Bucket)
	return err
}
