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
// update of final, on assessment_class): when a class's submission becomes
// final, the assessment's result SMS goes to that class's parents. A class
// cannot be un-finalised, so this happens once per class (and once per
// event).
func AssessmentClassFinalized(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewEvent("assessment_class_finalized", log, func(ctx context.Context, e *hasura.Event[ClassRow]) (hasura.Ack, error) {
		if e.New == nil || !e.New.Final || (e.Old != nil && e.Old.Final) {
			return hasura.Ack{Detail: "not a finalisation"}, nil
		}
		queued := false
		dup, err := in.Receive(ctx, forEvent(e), func(ctx context.Context, w *inbox.Work) error {
			by := ""
			if e.New.FinalizedBy != nil {
				by = *e.New.FinalizedBy
			}
			var err error
			queued, err = assessment.AnnounceResults(ctx, w.Tx, e.New.AssessmentID, e.New.SchoolID, e.New.Grade, e.New.Section, by)
			return err
		})
		ack := hasura.Ack{Duplicate: dup}
		if err == nil && !dup && !queued {
			ack.Detail = "the assessment has no SMS template"
		}
		return ack, err
	})
}
