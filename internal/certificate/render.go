package certificate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"gocloud.dev/blob"

	"github.com/shala-edu/shala/internal/queue"
)

// Renderer prints a page (its CSS and body) as PDF (internal/pdf's pool).
type Renderer interface {
	Render(ctx context.Context, style, body string) ([]byte, error)
}

// PDFKey is where a certificate's PDF is stored.
func PDFKey(id fmt.Stringer) string { return "certificates/" + id.String() + ".pdf" }

// RenderWorker renders a certificate's PDF and stores it in blob storage;
// from then on its pdfUrl serves it.
type RenderWorker struct {
	river.WorkerDefaults[RenderArgs]
	Pool      *pgxpool.Pool
	Bucket    *blob.Bucket
	Renderer  Renderer
	PublicURL string
}

// Timeout bounds one render: a warm browser takes well under a second, a
// cold start a few; queue.MaxTimeout keeps a killed process's render
// within the rescue bound (README, Guarantees).
func (w *RenderWorker) Timeout(*river.Job[RenderArgs]) time.Duration { return queue.MaxTimeout }

// Work renders and stores the PDF, then records where it is. Done twice
// (a retry after the store but before the record) it writes the same file
// again.
func (w *RenderWorker) Work(ctx context.Context, job *river.Job[RenderArgs]) error {
	if w.Renderer == nil || w.Bucket == nil {
		return errors.New("no PDF renderer or blob storage in this process")
	}
	r, err := get(ctx, w.Pool, job.Args.CertificateID)
	if err != nil {
		return err
	}
	if r.PDFKey != "" {
		return nil
	}
	page, err := Document(r, w.PublicURL)
	if err != nil {
		return err
	}
	pdf, err := w.Renderer.Render(ctx, page.Style, page.Body)
	if err != nil {
		return err
	}
	key := PDFKey(r.ID)
	if err := w.Bucket.WriteAll(ctx, key, pdf, &blob.WriterOptions{ContentType: "application/pdf"}); err != nil {
		return fmt.Errorf("store certificate pdf: %w", err)
	}
	_, err = w.Pool.Exec(ctx, `UPDATE leaving_certificate SET pdf_key = $2, pdf_ready_at = now() WHERE id = $1 AND pdf_key IS NULL`, r.ID, key)
	return err
}
