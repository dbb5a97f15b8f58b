package certificate

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
// again. Its last attempt, failing, records why on the certificate
// (pdf_error, which the admins read; pdf_failed_at): pdfUrl answers PDF_FAILED instead
// of "being prepared", and Reconcile does not queue the render again. The
// job still ends discarded, with its errors, in River.
func (w *RenderWorker) Work(ctx context.Context, job *river.Job[RenderArgs]) error {
	err := w.work(ctx, job)
	if err == nil || job.Attempt < job.MaxAttempts {
		return err
	}
	// Recorded even when the render ran out of time.
	gctx, cancel := queue.WithGrace(ctx)
	defer cancel()
	// Text Postgres takes (valid UTF-8, no NUL), whatever the error says.
	msg := strings.ReplaceAll(strings.ToValidUTF8(fmt.Sprintf("%d attempts failed; the last: %v", job.Attempt, err), "?"), "\x00", "?")
	if r := []rune(msg); len(r) > maxPDFError {
		msg = string(r[:maxPDFError-1]) + "…"
	}
	if _, rerr := w.Pool.Exec(gctx, `UPDATE leaving_certificate SET pdf_error = $2, pdf_failed_at = now()
		WHERE id = $1 AND pdf_key IS NULL`, job.Args.CertificateID, msg); rerr != nil {
		return fmt.Errorf("%w (and recording the failure on the certificate: %v)", err, rerr)
	}
	return err
}

// maxPDFError is the longest pdf_error (characters) the table takes.
const maxPDFError = 1000

func (w *RenderWorker) work(ctx context.Context, job *river.Job[RenderArgs]) error {
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
	// A render an operator retried after a failure clears it.
	_, err = w.Pool.Exec(ctx, `UPDATE leaving_certificate SET pdf_key = $2, pdf_ready_at = now(), pdf_error = NULL, pdf_failed_at = NULL
		WHERE id = $1 AND pdf_key IS NULL`, r.ID, key)
	return err
}
