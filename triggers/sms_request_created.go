package triggers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/sms"
)

// SMSRequestRow is an sms_request row as Hasura sends it in events.
type SMSRequestRow struct {
	ID       uuid.UUID  `json:"id"`
	SchoolID *uuid.UUID `json:"school_id"`
	Type     string     `json:"type"`
	Status   string     `json:"status"`
}

// SMSRequestCreated handles sms_request_created (insert on sms_request): it
// marks the request PROCESSING and enqueues its expansion, once per event and
// once per request.
func SMSRequestCreated(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewEvent("sms_request_created", log, func(ctx context.Context, e *hasura.Event[SMSRequestRow]) (hasura.Ack, error) {
		if e.New == nil {
			return hasura.Ack{Detail: "no new row"}, nil
		}
		accepted := false
		dup, err := in.Receive(ctx, forEvent(e), func(ctx context.Context, w *inbox.Work) error {
			var err error
			accepted, err = sms.Accept(ctx, w.Tx, w, e.New.ID)
			return err
		})
		ack := hasura.Ack{Duplicate: dup}
		if err == nil && !dup && !accepted {
			ack.Detail = "request already started or gone"
		}
		return ack, err
	})
}
