package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// AddStudentsInput is the arguments of addStudents.
type AddStudentsInput struct {
	GroupID  uuid.UUID `json:"groupId"`
	Students []string  `json:"students"`
}

// AddStudentsOutput is the AddStudentsOutput type: the added students.
type AddStudentsOutput struct {
	GroupID  uuid.UUID      `json:"groupId"`
	Students []GroupStudent `json:"students"`
}

// AddStudents adds students to a group the caller moderates (admins: any
// group) and returns their tokens.
func AddStudents(log *slog.Logger, groups *lesson.Groups) http.Handler {
	return hasura.NewAction("addStudents", log, func(ctx context.Context, a *hasura.Action[AddStudentsInput]) (AddStudentsOutput, error) {
		if err := a.Session.RequireRole(lesson.GroupRoles...); err != nil {
			return AddStudentsOutput{}, err
		}
		st, err := groups.AddStudents(ctx, caller(a.Session), a.Input.GroupID, a.Input.Students)
		if err != nil {
			return AddStudentsOutput{}, err
		}
		return AddStudentsOutput{GroupID: a.Input.GroupID, Students: groupStudents(st)}, nil
	})
}
