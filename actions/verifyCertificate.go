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

// VerifyCertificateInput is the arguments of verifyCertificate.
type VerifyCertificateInput struct {
	QR string `json:"qr"`
}

// VerifyCertificateOutput is the CertificateVerification type. Certificate
// is set when the signature verified (also when revoked or used: the
// receiving school sees what it was shown).
type VerifyCertificateOutput struct {
	Valid       bool                `json:"valid"`
	Reason      *string             `json:"reason"`
	Certificate *CertificateDetails `json:"certificate"`
}

// CertificateDetails is what a certificate states (the CertificateDetails
// type): the prefill of admitTransferredStudent.
type CertificateDetails struct {
	ID              uuid.UUID `json:"id"`
	IssuerUDISE     string    `json:"issuerUdise"`
	IssuerName      *string   `json:"issuerName"`
	Name            string    `json:"name"`
	FatherName      *string   `json:"fatherName"`
	MotherName      *string   `json:"motherName"`
	DateOfBirth     *string   `json:"dateOfBirth"`
	Gender          string    `json:"gender"`
	Category        *string   `json:"category"`
	Grade           int       `json:"grade"`
	Section         *string   `json:"section"`
	Stream          *string   `json:"stream"`
	AdmissionNumber *string   `json:"admissionNumber"`
	AdmissionDate   *string   `json:"admissionDate"`
	LeavingDate     string    `json:"leavingDate"`
	Reason          string    `json:"reason"`
	IssuedAt        time.Time `json:"issuedAt"`
	KeyID           string    `json:"keyId"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optionalDate(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.Format(time.DateOnly)
	return &s
}

func details(s *certificate.Snapshot) *CertificateDetails {
	return &CertificateDetails{ID: s.ID, IssuerUDISE: s.IssuerUDISE, IssuerName: optional(s.IssuerName), Name: s.Name,
		FatherName: optional(s.FatherName), MotherName: optional(s.MotherName), DateOfBirth: optionalDate(s.DateOfBirth),
		Gender: s.Gender, Category: optional(s.Category), Grade: s.Grade, Section: optional(s.Section), Stream: optional(s.Stream),
		AdmissionNumber: optional(s.AdmissionNumber), AdmissionDate: optionalDate(s.AdmissionDate),
		LeavingDate: s.LeavingDate.Format(time.DateOnly), Reason: string(s.Reason), IssuedAt: s.IssuedAt, KeyID: s.KeyID}
}

// VerifyCertificate checks a scanned QR: signature against the published
// keys, then revocation and use here (any school or admin role).
func VerifyCertificate(log *slog.Logger, certs *certificate.Store) http.Handler {
	return hasura.NewAction("verifyCertificate", log, func(ctx context.Context, a *hasura.Action[VerifyCertificateInput]) (VerifyCertificateOutput, error) {
		if err := a.Session.RequireRole(append([]string{"school", "district_admin"}, adminRoles...)...); err != nil {
			return VerifyCertificateOutput{}, err
		}
		v, err := certs.Verify(ctx, a.Input.QR)
		if err != nil {
			return VerifyCertificateOutput{}, err
		}
		out := VerifyCertificateOutput{Valid: v.Valid, Reason: optional(string(v.Problem))}
		switch {
		case v.Record != nil:
			out.Certificate = details(&v.Record.Snapshot)
		case v.Opened.Snapshot != nil:
			out.Certificate = details(v.Opened.Snapshot)
		}
		return out, nil
	})
}
