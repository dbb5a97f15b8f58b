// Package actions holds one maker per Hasura action: decode → validate →
// authorise from session variables → call the domain → answer. Each file is
// one action; the domain logic lives in internal/<noun>.
package actions

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/ping"
)

// PingInput is the arguments of `ping(message: String!)`.
type PingInput struct {
	Message string `json:"message"`
}

// Validate checks the message: 1–500 characters after trimming.
func (in *PingInput) Validate() error {
	in.Message = strings.TrimSpace(in.Message)
	switch n := utf8.RuneCountInString(in.Message); {
	case n == 0:
		return fault.Invalidf("message", "must not be empty")
	case n > 500:
		return fault.Invalidf("message", "must be at most 500 characters, got %d", n)
	}
	return nil
}

// PingOutput is the PingResult type.
type PingOutput struct {
	ID         uuid.UUID `json:"id"`
	Message    string    `json:"message"`
	ReceivedAt time.Time `json:"receivedAt"`
}

// Ping stores a ping on behalf of any signed-in role. Its insert fires the
// ping_created event trigger like an insert through GraphQL would, so the
// pong appears a moment later: a way to check the whole path from an app.
func Ping(log *slog.Logger, pings *ping.Store) http.Handler {
	return hasura.NewAction("ping", log, func(ctx context.Context, a *hasura.Action[PingInput]) (PingOutput, error) {
		if a.Session.Role() == "" || a.Session.Role() == "anonymous" {
			return PingOutput{}, fault.New(fault.Forbidden, "", "sign in to ping")
		}
		p, err := pings.Create(ctx, a.Input.Message, a.Session.UserID())
		if err != nil {
			return PingOutput{}, err
		}
		return PingOutput{ID: p.ID, Message: p.Message, ReceivedAt: p.CreatedAt}, nil
	})
}
