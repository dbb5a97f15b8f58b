package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// CreateGroupInput is the arguments of createGroup.
type CreateGroupInput struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	// Students are display names; an entry may hold several lines (a
	// pasted list). Lines are trimmed, blank ones ignored.
	Students []string `json:"students"`
}

// GroupStudent is the GroupStudent type: a student with the token of their
// personal link.
type GroupStudent struct {
	ID    uuid.UUID `json:"id"`
	Name  string    `json:"name"`
	Token string    `json:"token"`
}

func groupStudents(st []lesson.Student) []GroupStudent {
	out := make([]GroupStudent, len(st))
	for i, s := range st {
		out[i] = GroupStudent{ID: s.ID, Name: s.Name, Token: s.Token}
	}
	return out
}

// caller is the session as the lesson package authorises it.
func caller(s hasura.SessionVariables) lesson.Caller {
	return lesson.Caller{Role: s.Role(), UserID: s.UserID()}
}

// CreateGroupOutput is the CreateGroupOutput type.
type CreateGroupOutput struct {
	ID       uuid.UUID      `json:"id"`
	Students []GroupStudent `json:"students"`
}

// CreateGroup creates a class group with its students and their tokens in
// one transaction (moderator); the caller moderates the new group.
func CreateGroup(log *slog.Logger, groups *lesson.Groups) http.Handler {
	return hasura.NewAction("createGroup", log, func(ctx context.Context, a *hasura.Action[CreateGroupInput]) (CreateGroupOutput, error) {
		if err := a.Session.RequireRole(lesson.RoleModerator); err != nil {
			return CreateGroupOutput{}, err
		}
		g, st, err := groups.CreateGroup(ctx, caller(a.Session), a.Input.Name, a.Input.Region, a.Input.Students)
		if err != nil {
			return CreateGroupOutput{}, err
		}
		return CreateGroupOutput{ID: g.ID, Students: groupStudents(st)}, nil
	})
}
