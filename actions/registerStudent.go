package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/student"
)

// RegisterStudentInput is the arguments of registerStudent.
type RegisterStudentInput struct {
	Student student.Input `json:"student"`
	// SchoolID names the school for admins; the school role registers in
	// its own.
	SchoolID *uuid.UUID `json:"schoolId"`
}

// RegisterStudent registers a new student (NEW, or OTHER_STATE with its
// uploaded documents); IN_STATE children come with a certificate through
// admitTransferredStudent.
func RegisterStudent(log *slog.Logger, students *student.Store) http.Handler {
	return hasura.NewAction("registerStudent", log, func(ctx context.Context, a *hasura.Action[RegisterStudentInput]) (student.Student, error) {
		school, err := schoolFor(a.Session, a.Input.SchoolID)
		if err != nil {
			return student.Student{}, err
		}
		return students.Register(ctx, school, a.Session.UserID(), a.Input.Student)
	})
}
