package web

import (
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/certificate"
	"github.com/shala-edu/shala/internal/fault"
)

//go:embed templates/verify.html
var pages embed.FS

var verifyPage = template.Must(template.New("verify.html").Funcs(certificate.TemplateFuncs()).ParseFS(pages, "templates/verify.html"))

// verdict is what the page says. A revoked certificate's page shows none of
// the child's personal data — only that it is revoked, when, and by which
// school (Revoked) — so Snapshot is set only for a certificate that is
// valid or was used for an admission.
type verdict struct {
	State    string // valid, revoked, used, invalid, unknown
	Snapshot *certificate.Snapshot
	Revoked  *revocation
}

// revocation is what a revoked certificate's page says about it. Not the
// reason: the issuing school writes it freely ("name misspelt as …") and it
// may name the child.
type revocation struct {
	At                      time.Time
	IssuerName, IssuerUDISE string
	CertificateID           string
}

func render(w http.ResponseWriter, log *slog.Logger, r *http.Request, status int, v verdict) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	if err := verifyPage.Execute(w, v); err != nil {
		log.DebugContext(r.Context(), "write verify page", "err", err)
	}
}

// VerifyByID serves GET /verify/{id}: a small mobile-first page saying
// whether certificate id is valid, revoked or already used, with what the
// certificate shows (for a revoked one only when and by which school);
// 404 and no personal data for an unknown id.
func VerifyByID(log *slog.Logger, certs *certificate.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			render(w, log, r, http.StatusNotFound, verdict{State: "unknown"})
			return
		}
		rec, err := certs.Get(r.Context(), id)
		if fault.KindOf(err) == fault.NotFound {
			render(w, log, r, http.StatusNotFound, verdict{State: "unknown"})
			return
		}
		if err != nil {
			log.ErrorContext(r.Context(), "verify page", "err", err)
			http.Error(w, "please try again in a minute", http.StatusServiceUnavailable)
			return
		}
		render(w, log, r, http.StatusOK, recordVerdict(rec))
	})
}

func recordVerdict(rec *certificate.Record) verdict {
	switch {
	case rec.RevokedAt != nil:
		return verdict{State: "revoked", Revoked: &revocation{At: *rec.RevokedAt, IssuerName: rec.IssuerName,
			IssuerUDISE: rec.IssuerUDISE, CertificateID: rec.ID.String()}}
	case rec.AdmittedAt != nil:
		return verdict{State: "used", Snapshot: &rec.Snapshot}
	}
	return verdict{State: "valid", Snapshot: &rec.Snapshot}
}

// VerifyPayload serves GET /verify?c=<payload>: the page for a scanned QR
// (a camera app opens a URL holding the payload). An invalid payload — bad
// format, unknown key, bad signature — shows no data at all, and a revoked
// one none of the child's, as on /verify/{id}.
func VerifyPayload(log *slog.Logger, certs *certificate.Store) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload := r.URL.Query().Get("c")
		v, err := certs.Verify(r.Context(), payload)
		if err != nil {
			log.ErrorContext(r.Context(), "verify page", "err", err)
			http.Error(w, "please try again in a minute", http.StatusServiceUnavailable)
			return
		}
		switch {
		case v.Record != nil:
			render(w, log, r, http.StatusOK, recordVerdict(v.Record))
		case v.Opened.Snapshot != nil: // signed by us, but no record: not honoured, nothing shown
			render(w, log, r, http.StatusOK, verdict{State: "revoked"})
		default:
			render(w, log, r, http.StatusOK, verdict{State: "invalid"})
		}
	})
}
