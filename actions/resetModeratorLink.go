package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// ResetModeratorLink replaces a moderator's quick-login link (admin, or the
// moderator for themselves); the old link stops working.
func ResetModeratorLink(log *slog.Logger, groups *lesson.Groups, publicURL string) http.Handler {
	return hasura.NewAction("resetModeratorLink", log, func(ctx context.Context, a *hasura.Action[ModeratorLinkInput]) (ModeratorLinkOutput, error) {
		if err := a.Session.RequireRole(lesson.GroupRoles...); err != nil {
			return ModeratorLinkOutput{}, err
		}
		l, err := groups.ResetModeratorLink(ctx, caller(a.Session), a.Input.ModeratorID)
		if err != nil {
			return ModeratorLinkOutput{}, err
		}
		return moderatorLinkOutput(l, publicURL), nil
	})
}
