package actions

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/certificate"
)

// IssueLeavingCertificateOutput is the LeavingCertificateIssued type.
type IssueLeavingCertificateOutput struct {
	CertificateID uuid.UUID `json:"certificateId"`
	QR            string    `json:"qr"`
	VerifyURL     string    `json:"verifyUrl"`
	PDFURL        string    `json:"pdfUrl"`
}

// PDFURL is where a certificate's PDF is served.
func PDFURL(publicURL string, id uuid.UUID) string {
	return strings.TrimRight(publicURL, "/") + "/certificates/" + id.String() + "/pdf"
}

// IssueLeavingCertificate removes a student from the school and issues the
// signed certificate (school role: its own students; admins: any). The PDF
// renders in a job; pdfUrl answers 202 until it is ready, or 422 PDF_FAILED
// once making it failed (the reason is on the certificate row).
func IssueLeavingCertificate(log *slog.Logger, certs *certificate.Store, publicURL string) http.Handler {
	return hasura.NewAction("issueLeavingCertificate", log, func(ctx context.Context, a *hasura.Action[certificate.IssueInput]) (IssueLeavingCertificateOutput, error) {
		scope, err := scopeOf(a.Session)
		if err != nil {
			return IssueLeavingCertificateOutput{}, err
		}
		c, err := certs.Issue(ctx, certificate.Caller{SchoolID: scope, UserID: a.Session.UserID()}, a.Input)
		if err != nil {
			return IssueLeavingCertificateOutput{}, err
		}
		return IssueLeavingCertificateOutput{CertificateID: c.ID, QR: c.Payload,
			VerifyURL: certificate.VerifyURL(publicURL, c.ID.String()), PDFURL: PDFURL(publicURL, c.ID)}, nil
	})
}
