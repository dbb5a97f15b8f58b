package actions

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/fault"
)

// ExportLinkInput is the arguments of exportLink.
type ExportLinkInput struct {
	FormID string     `json:"formId"`
	Since  *time.Time `json:"since"`
}

// ExportLinkOutput is the ExportLinkOutput type.
type ExportLinkOutput struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// ExportLink returns a signed link to a form's responses as CSV (admin,
// state_admin): it opens GET /exports/{formId}.csv without a sign-in, for
// that form and since bound only, until it expires (export.LinkTTL).
func ExportLink(log *slog.Logger, pool *pgxpool.Pool, links *export.Links) http.Handler {
	return hasura.NewAction("exportLink", log, func(ctx context.Context, a *hasura.Action[ExportLinkInput]) (ExportLinkOutput, error) {
		if err := a.Session.RequireRole("admin", "state_admin"); err != nil {
			return ExportLinkOutput{}, err
		}
		ok, err := export.FormExists(ctx, pool, a.Input.FormID)
		if err != nil {
			return ExportLinkOutput{}, err
		}
		if !ok {
			return ExportLinkOutput{}, fault.New(fault.NotFound, "", "formId: no data-collection form %q", a.Input.FormID)
		}
		url, expires := links.Sign(a.Input.FormID, a.Input.Since, time.Now())
		return ExportLinkOutput{URL: url, ExpiresAt: expires}, nil
	})
}
