package actions

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/collector"
)

// RevokeCollectorInput is the arguments of revokeCollector.
type RevokeCollectorInput struct {
	ID uuid.UUID `json:"id"`
}

// RevokeCollectorOutput is the RevokeCollectorOutput type.
type RevokeCollectorOutput struct {
	ID        uuid.UUID `json:"id"`
	RevokedAt time.Time `json:"revokedAt"`
}

// RevokeCollector disables a collector's token (admin only); the OpenRosa
// endpoint then answers 403.
func RevokeCollector(log *slog.Logger, collectors *collector.Store) http.Handler {
	return hasura.NewAction("revokeCollector", log, func(ctx context.Context, a *hasura.Action[RevokeCollectorInput]) (RevokeCollectorOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return RevokeCollectorOutput{}, err
		}
		at, err := collectors.Revoke(ctx, a.Input.ID)
		if err != nil {
			return RevokeCollectorOutput{}, err
		}
		return RevokeCollectorOutput{ID: a.Input.ID, RevokedAt: at}, nil
	})
}
