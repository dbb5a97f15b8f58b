package actions

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
)

// SaveBuilderMappingInput is the arguments of saveBuilderMapping.
type SaveBuilderMappingInput struct {
	FormID string `json:"formId"`
	// Mapping is the builder mapping (README: "Builder mappings").
	Mapping json.RawMessage `json:"mapping"`
}

// Validate refuses a missing mapping before it is read.
func (in *SaveBuilderMappingInput) Validate() error {
	if len(in.Mapping) == 0 || string(in.Mapping) == "null" {
		return fault.Invalidf("mapping", "must not be empty")
	}
	return nil
}

// SaveBuilderMappingOutput is the SaveBuilderMappingOutput type.
type SaveBuilderMappingOutput struct {
	FormID string `json:"formId"`
	Layout string `json:"layout"`
	// CheckedAgainstVersion is the registered version the mapping was
	// checked against; null when the form is not registered yet.
	CheckedAgainstVersion *string `json:"checkedAgainstVersion"`
}

// SaveBuilderMapping stores an assessment-builder layout's mapping for a
// form (admin only): the form's next registered versions are read with it.
func SaveBuilderMapping(log *slog.Logger, catalog *forms.Catalog) http.Handler {
	return hasura.NewAction("saveBuilderMapping", log, func(ctx context.Context, a *hasura.Action[SaveBuilderMappingInput]) (SaveBuilderMappingOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return SaveBuilderMappingOutput{}, err
		}
		s, err := catalog.SaveMapping(ctx, a.Input.FormID, a.Input.Mapping, a.Session.UserID())
		if err != nil {
			return SaveBuilderMappingOutput{}, err
		}
		return SaveBuilderMappingOutput{FormID: s.FormID, Layout: s.Layout, CheckedAgainstVersion: s.CheckedAgainst}, nil
	})
}
