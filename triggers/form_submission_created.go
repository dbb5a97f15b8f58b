package triggers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/inbox"
)

// SubmissionRow is a form_submission row as Hasura sends it.
type SubmissionRow struct {
	ID     uuid.UUID `json:"id"`
	Status string    `json:"status"`
}

// FormSubmissionCreated handles form_submission_created (insert on
// form_submission, the path apps and adapters use through Hasura): the raw
// XML is already stored; this enqueues its processing, once per event and
// once per submission.
func FormSubmissionCreated(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewEvent("form_submission_created", log, func(ctx context.Context, e *hasura.Event[SubmissionRow]) (hasura.Ack, error) {
		if e.New == nil || e.New.Status != forms.StatusReceived {
			return hasura.Ack{Detail: "nothing to process"}, nil
		}
		dup, err := in.Receive(ctx, forEvent(e), func(ctx context.Context, w *inbox.Work) error {
			w.Enqueue(forms.ProcessArgs{SubmissionID: e.New.ID}, nil)
			return nil
		})
		return hasura.Ack{Duplicate: dup}, err
	})
}
