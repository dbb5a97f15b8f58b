package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/forms"
)

// SaveFormReceiptInput is the arguments of saveFormReceipt.
type SaveFormReceiptInput struct {
	FormID        string   `json:"formId"`
	PhoneField    string   `json:"phoneField"`
	NameField     *string  `json:"nameField"`
	SummaryFields []string `json:"summaryFields"`
	Language      *string  `json:"language"`
	Enabled       *bool    `json:"enabled"`
}

// SaveFormReceiptOutput is the SaveFormReceiptOutput type.
type SaveFormReceiptOutput struct {
	FormID        string   `json:"formId"`
	PhoneField    string   `json:"phoneField"`
	NameField     *string  `json:"nameField"`
	SummaryFields []string `json:"summaryFields"`
	Language      string   `json:"language"`
	Enabled       bool     `json:"enabled"`
}

// SaveFormReceipt stores the receipt SMS of a data-collection form (admin
// only), replacing the one it had; every field an enabled receipt names is
// checked against the form's latest version. enabled left out keeps the
// stored value (true for a new receipt).
func SaveFormReceipt(log *slog.Logger, catalog *forms.Catalog, rules *forms.Rules) http.Handler {
	return hasura.NewAction("saveFormReceipt", log, func(ctx context.Context, a *hasura.Action[SaveFormReceiptInput]) (SaveFormReceiptOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return SaveFormReceiptOutput{}, err
		}
		in := forms.Receipt{FormID: a.Input.FormID, PhoneField: a.Input.PhoneField, SummaryFields: a.Input.SummaryFields, Enabled: a.Input.Enabled}
		if a.Input.NameField != nil {
			in.NameField = *a.Input.NameField
		}
		if a.Input.Language != nil {
			in.Language = *a.Input.Language
		}
		rec, err := rules.SaveReceipt(ctx, catalog, in)
		if err != nil {
			return SaveFormReceiptOutput{}, err
		}
		out := SaveFormReceiptOutput{FormID: rec.FormID, PhoneField: rec.PhoneField, SummaryFields: rec.SummaryFields, Language: rec.Language, Enabled: *rec.Enabled}
		if rec.NameField != "" {
			out.NameField = &rec.NameField
		}
		return out, nil
	})
}
