package forms

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/postgres"
)

// The largest definition and submission the database stores
// (form_version.xform and form_submission.xml CHECK constraints), in bytes.
const (
	MaxDefinitionBytes = 5 << 20
	MaxSubmissionBytes = 10 << 20
)

// Listed is a form version as the OpenRosa form list offers it.
type Listed struct {
	FormID, Title, Version string
	MD5                    string // hex MD5 of the definition as stored
}

// Latest returns the latest version of every OPEN data-collection form and,
// when builders is true, of every OPEN assessment builder, ordered by form
// id (CLOSING and CLOSED forms are no longer offered, as in ODK Central).
func (c *Catalog) Latest(ctx context.Context, builders bool) ([]Listed, error) {
	rows, err := c.pool.Query(ctx, `SELECT DISTINCT ON (v.form_id) v.form_id, v.title, v.version, md5(v.xform)
		FROM form_version v JOIN form f ON f.id = v.form_id
		WHERE f.state = 'OPEN' AND (f.purpose = 'DATA_COLLECTION' OR (f.purpose = 'ASSESSMENT_BUILDER' AND $1))
		ORDER BY v.form_id, v.registered_at DESC`, builders)
	if err != nil {
		return nil, postgres.Translate(err, "forms")
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Listed, error) {
		var l Listed
		err := row.Scan(&l.FormID, &l.Title, &l.Version, &l.MD5)
		return l, err
	})
	return list, postgres.Translate(err, "forms")
}

// Source returns the definition of form id at version exactly as it was
// registered (fault.NotFound when there is none).
func (c *Catalog) Source(ctx context.Context, id, version string) (string, error) {
	var def string
	err := c.pool.QueryRow(ctx, `SELECT xform FROM form_version WHERE form_id = $1 AND version = $2`, id, version).Scan(&def)
	return def, postgres.Translate(err, "form "+id+" version "+version)
}

// Attachment is a file that came with a submission (an OpenRosa part),
// stored in blob storage under BlobKey.
type Attachment struct {
	SubmissionID uuid.UUID
	Name         string
	ContentType  string
	Size         int64
	BlobKey      string
}

// Attachments records submissions' attachments.
type Attachments struct{ pool *pgxpool.Pool }

// NewAttachments returns the attachment store on pool.
func NewAttachments(pool *pgxpool.Pool) *Attachments { return &Attachments{pool: pool} }

// Record records a; the same name for the same submission again replaces
// the earlier record (its file was overwritten under the same key).
func (s *Attachments) Record(ctx context.Context, a Attachment) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO form_attachment (submission_id, name, content_type, size, blob_key)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (submission_id, name)
		DO UPDATE SET content_type = EXCLUDED.content_type, size = EXCLUDED.size, blob_key = EXCLUDED.blob_key`,
		a.SubmissionID, a.Name, a.ContentType, a.Size, a.BlobKey)
	return postgres.Translate(err, "attachment "+a.Name)
}
