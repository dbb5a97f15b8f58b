package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/forms"
)

// SaveFormRuleInput is the arguments of saveFormRule.
type SaveFormRuleInput struct {
	FormID     string `json:"formId"`
	Name       string `json:"name"`
	Expression string `json:"expression"`
	Message    string `json:"message"`
}

// SaveFormRuleOutput is the SaveFormRuleOutput type.
type SaveFormRuleOutput struct {
	ID     uuid.UUID `json:"id"`
	FormID string    `json:"formId"`
	Name   string    `json:"name"`
}

// SaveFormRule stores a business rule for a data-collection form, replacing
// the rule of the same name (admin only). An expression that does not
// compile against the form's fields is refused with the reason.
func SaveFormRule(log *slog.Logger, catalog *forms.Catalog, rules *forms.Rules) http.Handler {
	return hasura.NewAction("saveFormRule", log, func(ctx context.Context, a *hasura.Action[SaveFormRuleInput]) (SaveFormRuleOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return SaveFormRuleOutput{}, err
		}
		id, err := rules.SaveRule(ctx, catalog, a.Input.FormID, a.Input.Name, a.Input.Expression, a.Input.Message, a.Session.UserID())
		if err != nil {
			return SaveFormRuleOutput{}, err
		}
		return SaveFormRuleOutput{ID: id, FormID: a.Input.FormID, Name: a.Input.Name}, nil
	})
}
