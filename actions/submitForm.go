package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
)

// SubmitFormInput is the arguments of submitForm.
type SubmitFormInput struct {
	XML string `json:"xml"`
}

// Validate refuses an empty document.
func (in *SubmitFormInput) Validate() error {
	if in.XML == "" {
		return fault.Invalidf("xml", "must not be empty")
	}
	return nil
}

// SubmissionError is one value that did not fit its field.
type SubmissionError struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// SubmitFormOutput is the SubmitFormOutput type.
type SubmitFormOutput struct {
	SubmissionID uuid.UUID         `json:"submissionId"`
	Status       string            `json:"status"`
	InstanceID   string            `json:"instanceId"`
	AssessmentID *uuid.UUID        `json:"assessmentId"`
	ResponseID   *uuid.UUID        `json:"responseId"`
	Flags        []string          `json:"flags"`
	Errors       []SubmissionError `json:"errors"`
	Duplicate    bool              `json:"duplicate"`
}

// SubmitForm takes a submission's XML (the old POST /api/v4/form/submit):
// stored raw, then parsed into a response or an assessment. Assessment
// builders are for admin and state_admin (the pipeline refuses them from
// other roles, keeping the XML as rejected); data-collection forms for any
// signed-in staff role.
func SubmitForm(log *slog.Logger, pipeline *forms.Pipeline) http.Handler {
	return hasura.NewAction("submitForm", log, func(ctx context.Context, a *hasura.Action[SubmitFormInput]) (SubmitFormOutput, error) {
		if err := a.Session.RequireRole("admin", "state_admin", "district_admin", "school"); err != nil {
			return SubmitFormOutput{}, err
		}
		res, err := pipeline.Receive(ctx, forms.Input{XML: []byte(a.Input.XML), Source: "action", SubmittedBy: a.Session.UserID(),
			Role: a.Session.Role()})
		if err != nil {
			return SubmitFormOutput{}, err
		}
		out := SubmitFormOutput{SubmissionID: res.SubmissionID, Status: res.Status, InstanceID: res.InstanceID,
			AssessmentID: res.AssessmentID, ResponseID: res.ResponseID, Flags: res.Flags, Errors: []SubmissionError{}, Duplicate: res.Duplicate}
		if out.Flags == nil {
			out.Flags = []string{}
		}
		for _, e := range res.Errors {
			out.Errors = append(out.Errors, SubmissionError{Path: e.Path, Reason: e.Reason})
		}
		return out, nil
	})
}
