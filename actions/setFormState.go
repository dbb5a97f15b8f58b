package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/forms"
)

// SetFormStateInput is the arguments of setFormState.
type SetFormStateInput struct {
	FormID string `json:"formId"`
	State  string `json:"state"`
}

// SetFormStateOutput is the SetFormStateOutput type.
type SetFormStateOutput struct {
	FormID        string `json:"formId"`
	State         string `json:"state"`
	PreviousState string `json:"previousState"`
	// WaitingSubmissions were refused while the form was closed and are
	// processed within a minute, now that it is open again.
	WaitingSubmissions int `json:"waitingSubmissions"`
}

// SetFormState opens, closes or winds down a form (admin only; the
// arguments are checked by forms.Catalog.SetState, naming the field): CLOSING
// and CLOSED forms leave the collectors' form list; CLOSED forms refuse
// submissions (FORM_CLOSED, the XML kept) until they open again.
func SetFormState(log *slog.Logger, catalog *forms.Catalog) http.Handler {
	return hasura.NewAction("setFormState", log, func(ctx context.Context, a *hasura.Action[SetFormStateInput]) (SetFormStateOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return SetFormStateOutput{}, err
		}
		ch, err := catalog.SetState(ctx, a.Input.FormID, a.Input.State)
		if err != nil {
			return SetFormStateOutput{}, err
		}
		return SetFormStateOutput{FormID: ch.FormID, State: ch.State, PreviousState: ch.Previous, WaitingSubmissions: ch.Waiting}, nil
	})
}
