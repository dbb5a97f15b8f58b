package student

import (
	"context"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/postgres"
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
