package triggers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/inbox"
)

// ClassRow is an assessment_class row as Hasura sends it.
type ClassRow struct {
	AssessmentID uuid.UUID `json:"assessment_id"`
	SchoolID     uuid.UUID `json:"school_id"`
	Grade        int       `json:"grade"`
	Section      string    `json:"section"`
	Final        bool      `json:"final"`
	FinalizedBy  *string   `json:"finalized_by"`
}

// AssessmentClassFinalized handles assessment_class_finalized (insert, or
// update of final, on assessment_class; also a console "Invoke", op
// MANUAL): when a class's submission is final, the assessment's result SMS
// goes to that class's parents — once per class, whatever the event id
// (assessment.Announce records it). Classes whose event never comes are
// announced by the sweep.
func AssessmentClassFinalized(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewEvent("assessment_class_finalized", log, func(ctx context.Context, e *hasura.Event[ClassRow]) (hasura.Ack, error) {
		if e.New == nil || !e.New.Final {
			return hasura.Ack{Detail: "not a finalisation"}, nil
		}
		var a assessment.Announcement
		dup, err := in.Receive(ctx, forEvent(e), func(ctx context.Context, w *inbox.Work) error {
			var err error
			a, err = assessment.Announce(ctx, w.Tx, assessment.Class{AssessmentID: e.New.AssessmentID, SchoolID: e.New.SchoolID,
				Grade: e.New.Grade, Section: e.New.Section})
			return err
		})
		ack := hasura.Ack{Duplicate: dup}
		if err == nil && !dup && a.Queued == nil {
			ack.Detail = a.Skipped
		}
		return ack, err
	})
}
