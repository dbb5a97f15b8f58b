package actions

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/collector"
)

// CreateCollectorInput is the arguments of createCollector.
type CreateCollectorInput struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
	// BuildsAssessments lets the collector submit assessment-builder forms
	// (an admin filling the builder in Enketo); optional, false by default.
	BuildsAssessments *bool `json:"buildsAssessments"`
}

// CreateCollectorOutput is the CreateCollectorOutput type. The token is
// shown here once; shala keeps only its hash.
type CreateCollectorOutput struct {
	ID            uuid.UUID `json:"id"`
	Name          string    `json:"name"`
	Phone         string    `json:"phone"`
	Token         string    `json:"token"`
	SubmissionURL string    `json:"submissionUrl"`
}

// CreateCollector adds a field collector (admin only) and returns the token
// and the server URL to configure in ODK Collect or Enketo.
func CreateCollector(log *slog.Logger, collectors *collector.Store, publicURL string) http.Handler {
	return hasura.NewAction("createCollector", log, func(ctx context.Context, a *hasura.Action[CreateCollectorInput]) (CreateCollectorOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return CreateCollectorOutput{}, err
		}
		create := collectors.Create
		if a.Input.BuildsAssessments != nil && *a.Input.BuildsAssessments {
			create = collectors.CreateBuilder
		}
		c, token, err := create(ctx, a.Input.Name, a.Input.Phone, a.Session.UserID())
		if err != nil {
			return CreateCollectorOutput{}, err
		}
		return CreateCollectorOutput{ID: c.ID, Name: c.Name, Phone: c.Phone, Token: token,
			SubmissionURL: strings.TrimRight(publicURL, "/") + "/openrosa/key/" + url.PathEscape(token)}, nil
	})
}
