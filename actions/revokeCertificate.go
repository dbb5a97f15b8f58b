package actions

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/certificate"
)

// RevokeCertificateInput is the arguments of revokeCertificate.
type RevokeCertificateInput struct {
	ID     uuid.UUID `json:"id"`
	Reason string    `json:"reason"`
}

// RevokeCertificateOutput is the CertificateRevoked type.
type RevokeCertificateOutput struct {
	ID        uuid.UUID `json:"id"`
	RevokedAt time.Time `json:"revokedAt"`
}

// RevokeCertificate withdraws a certificate (the issuing school or an
// admin): online it then answers REVOKED and admits nobody.
func RevokeCertificate(log *slog.Logger, certs *certificate.Store) http.Handler {
	return hasura.NewAction("revokeCertificate", log, func(ctx context.Context, a *hasura.Action[RevokeCertificateInput]) (RevokeCertificateOutput, error) {
		scope, err := scopeOf(a.Session)
		if err != nil {
			return RevokeCertificateOutput{}, err
		}
		at, err := certs.Revoke(ctx, certificate.Caller{SchoolID: scope, UserID: a.Session.UserID()}, a.Input.ID, a.Input.Reason)
		if err != nil {
			return RevokeCertificateOutput{}, err
		}
		return RevokeCertificateOutput{ID: a.Input.ID, RevokedAt: at}, nil
	})
}
