package triggers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/inbox"
)

// SubmissionRow is a form_submission row as Hasura sends it.
type SubmissionRow struct {
	ID     uuid.UUID `json:"id"`
	Status string    `json:"status"`
	Source string    `json:"source"`
}

// FormSubmissionCreated handles form_submission_created (insert on
// form_submission). A row apps and adapters insert through Hasura holds
// raw XML: this enqueues its processing. A row a response inserted through
// Hasura with its answers made (source graphql) enqueues the check of its
// rules and receipt. Once per event and once per submission.
func FormSubmissionCreated(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewEvent("form_submission_created", log, func(ctx context.Context, e *hasura.Event[SubmissionRow]) (hasura.Ack, error) {
		var job river.JobArgs
		switch {
		case e.New == nil:
		case e.New.Source == forms.SourceGraphQL:
			job = forms.CheckArgs{SubmissionID: e.New.ID}
		case e.New.Status == forms.StatusReceived:
			job = forms.ProcessArgs{SubmissionID: e.New.ID}
		}
		if job == nil {
			return hasura.Ack{Detail: "nothing to process"}, nil
		}
		dup, err := in.Receive(ctx, forEvent(e), func(ctx context.Context, w *inbox.Work) error {
			w.Enqueue(job, nil)
			return nil
		})
		return hasura.Ack{Duplicate: dup}, err
	})
}
