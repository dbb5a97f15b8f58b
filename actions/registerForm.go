package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
)

// RegisterFormInput is the arguments of registerForm.
type RegisterFormInput struct {
	XForm   string `json:"xform"`
	Purpose string `json:"purpose"`
}

// Validate checks the arguments before any parsing.
func (in *RegisterFormInput) Validate() error {
	if in.XForm == "" {
		return fault.Invalidf("xform", "must not be empty")
	}
	if in.Purpose != forms.AssessmentBuilder && in.Purpose != forms.DataCollection {
		return fault.Invalidf("purpose", "want ASSESSMENT_BUILDER or DATA_COLLECTION, got %q", in.Purpose)
	}
	return nil
}

// RegisterFormOutput is the RegisterFormOutput type.
type RegisterFormOutput struct {
	FormID            string   `json:"formId"`
	Version           string   `json:"version"`
	Title             string   `json:"title"`
	Purpose           string   `json:"purpose"`
	Questions         int      `json:"questions"`
	Languages         []string `json:"languages"`
	AlreadyRegistered bool     `json:"alreadyRegistered"`
	// WaitingSubmissions arrived before this version was registered and
	// are processed within a minute.
	WaitingSubmissions int `json:"waitingSubmissions"`
	// BuilderLayout names the builder mapping that reads an assessment
	// builder's submissions (shala, samarth, or a saved one); null for
	// data collection.
	BuilderLayout *string `json:"builderLayout"`
}

// RegisterForm registers an XForm definition version (admin only).
func RegisterForm(log *slog.Logger, catalog *forms.Catalog) http.Handler {
	return hasura.NewAction("registerForm", log, func(ctx context.Context, a *hasura.Action[RegisterFormInput]) (RegisterFormOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return RegisterFormOutput{}, err
		}
		r, err := catalog.Register(ctx, []byte(a.Input.XForm), a.Input.Purpose, a.Session.UserID())
		if err != nil {
			return RegisterFormOutput{}, err
		}
		langs := r.Languages
		if langs == nil {
			langs = []string{}
		}
		out := RegisterFormOutput{FormID: r.FormID, Version: r.Version, Title: r.Title, Purpose: r.Purpose,
			Questions: r.Questions, Languages: langs, AlreadyRegistered: r.AlreadyRegistered, WaitingSubmissions: r.Waiting}
		if r.BuilderLayout != "" {
			out.BuilderLayout = &r.BuilderLayout
		}
		return out, nil
	})
}
