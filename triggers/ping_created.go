// Package triggers holds one maker per Hasura event trigger and cron
// trigger. Each records the delivery in the inbox and enqueues its jobs in
// one transaction, then acknowledges: webhooks acknowledge, workers work.
package triggers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/ping"
)

// PingRow is a ping row as Hasura serialises it in events.
type PingRow struct {
	ID        uuid.UUID    `json:"id"`
	Message   string       `json:"message"`
	SentBy    *string      `json:"sent_by"`
	CreatedAt *hasura.Time `json:"created_at"`
}

// PingCreated handles the ping_created trigger (insert on ping): it enqueues
// the pong job, once per event and once per ping.
func PingCreated(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewEvent("ping_created", log, func(ctx context.Context, e *hasura.Event[PingRow]) (hasura.Ack, error) {
		row := e.New
		if row == nil { // DELETE delivered by a misconfigured trigger: nothing to answer
			return hasura.Ack{Detail: "no new row"}, nil
		}
		dup, err := in.Receive(ctx, forEvent(e), func(ctx context.Context, w *inbox.Work) error {
			w.Enqueue(ping.PongArgs{PingID: row.ID, EventID: &e.ID}, nil)
			return nil
		})
		return hasura.Ack{Duplicate: dup}, err
	})
}
