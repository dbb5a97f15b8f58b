package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/student"
)

// StudentAadhaarInput is the arguments of studentAadhaar.
type StudentAadhaarInput struct {
	StudentID uuid.UUID `json:"studentId"`
}

// StudentAadhaarOutput is the StudentAadhaar type: the whole number, or
// null when the student has none.
type StudentAadhaarOutput struct {
	Aadhaar *string `json:"aadhaar"`
}

// StudentAadhaar decrypts a student's Aadhaar number for the admin role
// only; every other role sees aadhaar_last4 through Hasura.
func StudentAadhaar(log *slog.Logger, students *student.Store) http.Handler {
	return hasura.NewAction("studentAadhaar", log, func(ctx context.Context, a *hasura.Action[StudentAadhaarInput]) (StudentAadhaarOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return StudentAadhaarOutput{}, err
		}
		n, err := students.RevealAadhaar(ctx, a.Input.StudentID)
		if err != nil || n == "" {
			return StudentAadhaarOutput{}, err
		}
		return StudentAadhaarOutput{Aadhaar: &n}, nil
	})
}
