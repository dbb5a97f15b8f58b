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

// CreateExamInput is the arguments of createExam.
type CreateExamInput struct {
	Title    string     `json:"title"`
	OpensAt  *time.Time `json:"opensAt"`
	ClosesAt *time.Time `json:"closesAt"`
}

// CreateExamOutput is the CreateExamOutput type.
type CreateExamOutput struct {
	ID uuid.UUID `json:"id"`
}

// CreateExam creates an exam owned by the calling examiner. Students upload
// only between opensAt and closesAt (either may be left open).
func CreateExam(log *slog.Logger, exams *exam.Store) http.Handler {
	return hasura.NewAction("createExam", log, func(ctx context.Context, a *hasura.Action[CreateExamInput]) (CreateExamOutput, error) {
		if err := a.Session.RequireRole("examiner"); err != nil {
			return CreateExamOutput{}, err
		}
		id, err := exams.CreateExam(ctx, a.Session.UserID(), a.Input.Title, a.Input.OpensAt, a.Input.ClosesAt)
		return CreateExamOutput{ID: id}, err
	})
}
