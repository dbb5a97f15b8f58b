package queue

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"riverqueue.com/riverui"
)

// UIPath is where operators reach River's web UI.
const UIPath = "/riverui"

// NewUI returns River's web UI (riverqueue.com/riverui) for client, served
// under UIPath: jobs by state with their errors, retry, cancel and delete,
// queues paused and resumed. It is how an operator retries a discarded job
// (an SMS whose provider was down for a day, a submission whose processing
// kept failing). Job arguments are hidden in lists by default; they are ids
// and, for direct SMS, phone numbers. Background work stops with ctx.
func NewUI(ctx context.Context, client *Client, log *slog.Logger) (http.Handler, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints:                riverui.NewEndpoints(client, nil),
		Logger:                   log,
		Prefix:                   UIPath,
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
