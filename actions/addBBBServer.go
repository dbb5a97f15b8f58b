package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// AddBBBServerInput is the arguments of addBBBServer.
type AddBBBServerInput struct {
	// URL is the API base, https://host/bigbluebutton/api/ (as Scalelite
	// and Greenlight take it).
	URL      string `json:"url"`
	Secret   string `json:"secret"`
	Region   string `json:"region"`
	Capacity int    `json:"capacity"`
	CPUCount *int   `json:"cpuCount"`
}

// BBBServerOutput is the BBBServerOutput type.
type BBBServerOutput struct {
	ID      uuid.UUID `json:"id"`
	Enabled bool      `json:"enabled"`
}

// AddBBBServer registers a BigBlueButton server (admin only) after a signed
// getMeetings call succeeds; that check counts as its first heartbeat.
func AddBBBServer(log *slog.Logger, servers *lesson.Servers) http.Handler {
	return hasura.NewAction("addBBBServer", log, func(ctx context.Context, a *hasura.Action[AddBBBServerInput]) (BBBServerOutput, error) {
		if err := a.Session.RequireRole(lesson.AdminRoles...); err != nil {
			return BBBServerOutput{}, err
		}
		in := lesson.NewServer{URL: a.Input.URL, Secret: a.Input.Secret, Region: a.Input.Region, Capacity: a.Input.Capacity}
		if a.Input.CPUCount != nil {
			in.CPUCount = *a.Input.CPUCount
		}
		s, err := servers.Add(ctx, a.Session.UserID(), in)
		if err != nil {
			return BBBServerOutput{}, err
		}
		return BBBServerOutput{ID: s.ID, Enabled: s.Enabled}, nil
	})
}
