package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/queue"
)

// ConnectSheetInput is the arguments of connectSheet.
type ConnectSheetInput struct {
	FormID        string `json:"formId"`
	SpreadsheetID string `json:"spreadsheetId"`
	SheetName     string `json:"sheetName"`
}

// ConnectSheetOutput is the ConnectSheetOutput type.
type ConnectSheetOutput struct {
	ID            uuid.UUID `json:"id"`
	FormID        string    `json:"formId"`
	SpreadsheetID string    `json:"spreadsheetId"`
	SheetName     string    `json:"sheetName"`
	Enabled       bool      `json:"enabled"`
	RowsWritten   int64     `json:"rowsWritten"`
	// ShareWith is the service account the spreadsheet must be shared with,
	// as Editor.
	ShareWith string  `json:"shareWith"`
	LastError *string `json:"lastError"`
}

// ConnectSheet starts (or resumes) appending a form's responses to a Google
// Sheet tab (admin only). account is the Google service account's e-mail;
// empty when none is configured, and then nothing is connected.
func ConnectSheet(log *slog.Logger, pool *pgxpool.Pool, q queue.Inserter, account string) http.Handler {
	return hasura.NewAction("connectSheet", log, func(ctx context.Context, a *hasura.Action[ConnectSheetInput]) (ConnectSheetOutput, error) {
		if err := a.Session.RequireRole("admin"); err != nil {
			return ConnectSheetOutput{}, err
		}
		if account == "" {
			return ConnectSheetOutput{}, fault.New(fault.Unprocessable, export.CodeSheetsNotConfigured,
				"Google Sheets export is not configured on this server (no service account): ask the operator")
		}
		c, err := export.Connect(ctx, pool, q, a.Input.FormID, a.Input.SpreadsheetID, a.Input.SheetName, a.Session.UserID())
		if err != nil {
			return ConnectSheetOutput{}, err
		}
		return ConnectSheetOutput{ID: c.ID, FormID: c.FormID, SpreadsheetID: c.SpreadsheetID, SheetName: c.SheetName,
			Enabled: c.Enabled, RowsWritten: c.RowsWritten, ShareWith: account, LastError: c.LastError}, nil
	})
}
