package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/certificate"
)

// AdmitTransferredStudentOutput is the TransferredStudent type.
type AdmitTransferredStudentOutput struct {
	StudentID uuid.UUID `json:"studentId"`
}

// AdmitTransferredStudent admits a child from another school of the state
// into the caller's school with their certificate's QR; a certificate
// admits once.
func AdmitTransferredStudent(log *slog.Logger, certs *certificate.Store) http.Handler {
	return hasura.NewAction("admitTransferredStudent", log, func(ctx context.Context, a *hasura.Action[certificate.AdmitInput]) (AdmitTransferredStudentOutput, error) {
		if err := a.Session.RequireRole("school"); err != nil {
			return AdmitTransferredStudentOutput{}, err
		}
		school, err := a.Session.SchoolID()
		if err != nil {
			return AdmitTransferredStudentOutput{}, err
		}
		id, err := certs.Admit(ctx, school, a.Session.UserID(), a.Input)
		return AdmitTransferredStudentOutput{StudentID: id}, err
	})
}
