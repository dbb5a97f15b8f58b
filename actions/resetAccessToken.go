package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// ResetAccessTokenInput is the arguments of resetAccessToken.
type ResetAccessTokenInput struct {
	StudentID uuid.UUID `json:"studentId"`
}

// ResetAccessToken gives a student a new token (moderator of the group, or
// admin); the old link stops working.
func ResetAccessToken(log *slog.Logger, groups *lesson.Groups) http.Handler {
	return hasura.NewAction("resetAccessToken", log, func(ctx context.Context, a *hasura.Action[ResetAccessTokenInput]) (GroupStudent, error) {
		if err := a.Session.RequireRole(lesson.GroupRoles...); err != nil {
			return GroupStudent{}, err
		}
		s, err := groups.ResetAccessToken(ctx, caller(a.Session), a.Input.StudentID)
		if err != nil {
			return GroupStudent{}, err
		}
		return GroupStudent{ID: s.ID, Name: s.Name, Token: s.Token}, nil
	})
}
