package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// DisableBBBServerInput is the arguments of disableBBBServer.
type DisableBBBServerInput struct {
	ID     uuid.UUID `json:"id"`
	Reason string    `json:"reason"`
}

// DisableBBBServerOutput is the DisableBBBServerOutput type.
type DisableBBBServerOutput struct {
	ID             uuid.UUID `json:"id"`
	Enabled        bool      `json:"enabled"`
	DisabledReason string    `json:"disabledReason"`
	DisabledBy     string    `json:"disabledBy"`
}

// DisableBBBServer takes a server out of the pool (admin only): no new
// lesson goes there, and neither heartbeats nor alerts bring it back.
func DisableBBBServer(log *slog.Logger, servers *lesson.Servers) http.Handler {
	return hasura.NewAction("disableBBBServer", log, func(ctx context.Context, a *hasura.Action[DisableBBBServerInput]) (DisableBBBServerOutput, error) {
		if err := a.Session.RequireRole(lesson.AdminRoles...); err != nil {
			return DisableBBBServerOutput{}, err
		}
		s, err := servers.Disable(ctx, a.Session.UserID(), a.Input.ID, a.Input.Reason)
		if err != nil {
			return DisableBBBServerOutput{}, err
		}
		return DisableBBBServerOutput{ID: s.ID, Enabled: s.Enabled, DisabledReason: s.DisabledReason, DisabledBy: s.DisabledBy}, nil
	})
}
