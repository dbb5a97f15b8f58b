package actions

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/exam"
)

// PurgeExamInput is the arguments of purgeExam.
type PurgeExamInput struct {
	ExamID uuid.UUID `json:"examId"`
}

// PurgeExamOutput is the PurgeExamOutput type.
type PurgeExamOutput struct {
	ID       uuid.UUID `json:"id"`
	PurgedAt time.Time `json:"purgedAt"`
	Students int       `json:"students"`
}

// PurgeExam removes the personal data of an exam's students (names, e-mail,
// nickname, upload code, file names) once the exam has been closed for 30
// days; files still stored are deleted. Purging again changes nothing.
func PurgeExam(log *slog.Logger, exams *exam.Store) http.Handler {
	return hasura.NewAction("purgeExam", log, func(ctx context.Context, a *hasura.Action[PurgeExamInput]) (PurgeExamOutput, error) {
		if err := a.Session.RequireRole("examiner"); err != nil {
			return PurgeExamOutput{}, err
		}
		p, err := exams.PurgeExam(ctx, a.Session.UserID(), a.Input.ExamID)
		return PurgeExamOutput{ID: p.ExamID, PurgedAt: p.PurgedAt, Students: p.Students}, err
	})
}
