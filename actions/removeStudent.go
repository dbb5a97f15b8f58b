package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// RemoveStudentInput is the arguments of removeStudent.
type RemoveStudentInput struct {
	StudentID uuid.UUID `json:"studentId"`
}

// RemoveStudentOutput is the RemoveStudentOutput type.
type RemoveStudentOutput struct {
	StudentID uuid.UUID `json:"studentId"`
}

// RemoveStudent deletes a student of a group the caller moderates (admins:
// any group); the student's link stops working at once.
func RemoveStudent(log *slog.Logger, groups *lesson.Groups) http.Handler {
	return hasura.NewAction("removeStudent", log, func(ctx context.Context, a *hasura.Action[RemoveStudentInput]) (RemoveStudentOutput, error) {
		if err := a.Session.RequireRole(lesson.GroupRoles...); err != nil {
			return RemoveStudentOutput{}, err
		}
		if err := groups.RemoveStudent(ctx, caller(a.Session), a.Input.StudentID); err != nil {
			return RemoveStudentOutput{}, err
		}
		return RemoveStudentOutput{StudentID: a.Input.StudentID}, nil
	})
}
