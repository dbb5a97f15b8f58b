package web

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/fault"
)

// PDFRetryAfter is the Retry-After of a PDF still being prepared, seconds.
const PDFRetryAfter = 5

// CertificatePDF serves GET /certificates/{id}/pdf: the PDF once its job
// has rendered it, 202 "being prepared" with Retry-After before, 422
// PDF_FAILED once its rendering stopped (the reason is on the certificate
// row, not here), 404 for an unknown id, 410 for a revoked certificate.
func CertificatePDF(log *slog.Logger, certs *certificate.Store, bucket *blob.Bucket) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Never stored, by the browser or a proxy: a revocation answers
		// 410 at once, with no cached copy still served, and the child's
		// data stays off shared disks.
		w.Header().Set("Cache-Control", "no-store")
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		rec, err := certs.Get(r.Context(), id)
		switch {
		case fault.KindOf(err) == fault.NotFound:
			http.NotFound(w, r)
			return
		case err != nil:
			log.ErrorContext(r.Context(), "certificate pdf", "err", err)
			http.Error(w, "please try again in a minute", http.StatusServiceUnavailable)
			return
		case rec.RevokedAt != nil:
			http.Error(w, "this certificate was revoked", http.StatusGone)
			return
		case rec.PDFKey == "" && rec.PDFError != "":
			// Not the error itself: this link is public (the admins
			// read why on the certificate).
			writeError(r.Context(), w, log, fault.New(fault.Unprocessable, certificate.CodePDFFailed,
				"the PDF of this certificate could not be made; the issuing school can ask shala's operators to make it again"))
			return
		case rec.PDFKey == "":
			w.Header().Set("Retry-After", strconv.Itoa(PDFRetryAfter))
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte("being prepared: try again in a few seconds\n"))
			return
		}
		rd, err := bucket.NewReader(r.Context(), rec.PDFKey, nil)
		if err != nil {
			if gcerrors.Code(err) == gcerrors.NotFound {
				log.ErrorContext(r.Context(), "certificate pdf missing from storage", "certificate", id, "key", rec.PDFKey)
			} else {
				log.ErrorContext(r.Context(), "certificate pdf", "err", err)
			}
			http.Error(w, "please try again in a minute", http.StatusServiceUnavailable)
			return
		}
		defer rd.Close()
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", `inline; filename="slc-`+id.String()+`.pdf"`)
		if _, err := rd.WriteTo(w); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
			log.DebugContext(r.Context(), "write certificate pdf", "err", err)
		}
	})
}
