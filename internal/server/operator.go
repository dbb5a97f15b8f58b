package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"riverqueue.com/riverui"

	"github.com/shala-edu/shala/internal/queue"
)

// OperatorPath is where operators reach River's web UI.
const OperatorPath = "/riverui"

// NewOperatorUI returns River's web UI (riverqueue.com/riverui) for client,
// served under OperatorPath (with operatorAuth in front, see routes.go): jobs by state with their errors, retry, cancel and delete,
// queues paused and resumed. It is how an operator retries a discarded job
// (an SMS whose provider was down for a day, a submission whose processing
// kept failing). Job arguments are hidden in lists by default; they are ids
// and, for direct SMS, phone numbers. Background work stops with ctx.
func NewOperatorUI(ctx context.Context, client *queue.Client, log *slog.Logger) (http.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints:                riverui.NewEndpoints(client, nil),
		Logger:                   log,
		Prefix:                   OperatorPath,
		JobListHideArgsByDefault: true,
	})
	if err != nil {
		return nil, fmt.Errorf("river UI: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("river UI: %w", err)
	}
	return h, nil
}
