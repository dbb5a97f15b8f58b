package actions

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// ModeratorLinkInput is the arguments of createModeratorLink and
// resetModeratorLink: the moderator (an admin must name one; a moderator may
// omit it for their own link).
type ModeratorLinkInput struct {
	ModeratorID *uuid.UUID `json:"moderatorId"`
}

// ModeratorLinkOutput is the ModeratorLinkOutput type. The token is shown
// here once; shala keeps only its hash.
type ModeratorLinkOutput struct {
	ModeratorID uuid.UUID `json:"moderatorId"`
	Token       string    `json:"token"`
	URL         string    `json:"url"`
	CreatedAt   time.Time `json:"createdAt"`
}

func moderatorLinkOutput(l lesson.ModeratorLink, publicURL string) ModeratorLinkOutput {
	return ModeratorLinkOutput{ModeratorID: l.ModeratorID, Token: l.Token, CreatedAt: l.CreatedAt,
		URL: strings.TrimRight(publicURL, "/") + "/m/" + l.Token}
}

// CreateModeratorLink makes a moderator's quick-login link (admin, or the
// moderator for themselves); LINK_EXISTS when there is one already.
func CreateModeratorLink(log *slog.Logger, groups *lesson.Groups, publicURL string) http.Handler {
	return hasura.NewAction("createModeratorLink", log, func(ctx context.Context, a *hasura.Action[ModeratorLinkInput]) (ModeratorLinkOutput, error) {
		if err := a.Session.RequireRole(lesson.GroupRoles...); err != nil {
			return ModeratorLinkOutput{}, err
		}
		l, err := groups.CreateModeratorLink(ctx, caller(a.Session), a.Input.ModeratorID)
		if err != nil {
			return ModeratorLinkOutput{}, err
		}
		return moderatorLinkOutput(l, publicURL), nil
	})
}
