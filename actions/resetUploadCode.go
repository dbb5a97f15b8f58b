package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/exam"
)

// ResetUploadCodeInput is the arguments of resetUploadCode.
type ResetUploadCodeInput struct {
	StudentID uuid.UUID `json:"studentId"`
}

// ResetUploadCode gives a student of the calling examiner's exam a new
// upload code (a leaked or lost one); the old code stops working at once.
func ResetUploadCode(log *slog.Logger, exams *exam.Store) http.Handler {
	return hasura.NewAction("resetUploadCode", log, func(ctx context.Context, a *hasura.Action[ResetUploadCodeInput]) (ExamStudentCode, error) {
		if err := a.Session.RequireRole("examiner"); err != nil {
			return ExamStudentCode{}, err
		}
		c, err := exams.ResetUploadCode(ctx, a.Session.UserID(), a.Input.StudentID)
		return ExamStudentCode{ID: c.ID, Nickname: c.Nickname, UploadCode: c.UploadCode}, err
	})
}
