package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/progress"
)

// SchoolAssessmentsInput is the arguments of schoolAssessments.
type SchoolAssessmentsInput struct {
	// IfNoneMatch is the etag of the listing the app already has.
	IfNoneMatch *string `json:"ifNoneMatch"`
}

// Validate caps the etag's length (ours are 24 characters).
func (in *SchoolAssessmentsInput) Validate() error {
	if in.IfNoneMatch != nil && len(*in.IfNoneMatch) > 200 {
		return fault.Invalidf("ifNoneMatch", "at most 200 characters")
	}
	return nil
}

// SchoolAssessments is the school's assessment home page (school role): the
// assessments open to the caller's school (x-hasura-school-id, never an
// argument) with per-class progress and per-subject completion, and its
// etag. With ifNoneMatch equal to the current etag it answers notModified
// and no assessments after one indexed read.
func SchoolAssessments(log *slog.Logger, listings *progress.Store) http.Handler {
	return hasura.NewAction("schoolAssessments", log, func(ctx context.Context, a *hasura.Action[SchoolAssessmentsInput]) (progress.Listing, error) {
		if err := a.Session.RequireRole("school"); err != nil {
			return progress.Listing{}, err
		}
		school, err := a.Session.SchoolID()
		if err != nil {
			return progress.Listing{}, err
		}
		var match []string
		if in := a.Input.IfNoneMatch; in != nil && *in != "" {
			match = append(match, progress.Opaque(*in))
		}
		l, err := listings.Listing(ctx, school, match...)
		if err != nil {
			return progress.Listing{}, err
		}
		return *l, nil
	})
}
