package export

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
)

// Error codes of this package.
const (
	// CodeSheetInUse: the tab already receives another form's responses.
	CodeSheetInUse fault.Code = "SHEET_IN_USE"
	// CodeSheetsNotConfigured: no Google service account is configured.
	CodeSheetsNotConfigured fault.Code = "SHEETS_NOT_CONFIGURED"
)

// Connection is a sheet export as connectSheet reports it.
type Connection struct {
	ID            uuid.UUID
	FormID        string
	SpreadsheetID string
	SheetName     string
	Enabled       bool
	RowsWritten   int64
	LastError     *string
}

var (
	spreadsheetURL = regexp.MustCompile(`/spreadsheets/d/([A-Za-z0-9_-]+)`)
	spreadsheetID  = regexp.MustCompile(`^[A-Za-z0-9_-]{10,200}$`)
)

// SpreadsheetID accepts a spreadsheet's id or its URL as copied from the
// browser (https://docs.google.com/spreadsheets/d/<id>/edit#gid=0).
func SpreadsheetID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if m := spreadsheetURL.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	if !spreadsheetID.MatchString(s) {
		return "", fault.Invalidf("spreadsheetId", "want the spreadsheet's id (the part after /spreadsheets/d/ in its URL) or its URL, got %q", s)
	}
	return s, nil
}

// SheetName checks a tab name: 1–100 characters, no control characters.
func SheetName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n == 0 || n > 100 {
		return "", fault.Invalidf("sheetName", "want 1 to 100 characters, got %d", n)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "", fault.Invalidf("sheetName", "must not contain control characters")
	}
	return s, nil
}

// Connect starts exporting formID's responses to tab sheet of spreadsheet
// (created if missing), and queues the first run in the same transaction.
// Connecting the same form to the same tab again re-enables it and clears
// its error, keeping its cursor; its next run looks at the tab again, and
// starts over if the tab no longer holds its rows. A tab another form uses
// is refused.
func Connect(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, formID, spreadsheet, sheet, by string) (*Connection, error) {
	sid, err := SpreadsheetID(spreadsheet)
	if err != nil {
		return nil, err
	}
	if sheet, err = SheetName(sheet); err != nil {
		return nil, err
	}
	c := &Connection{}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var purpose string
		err := tx.QueryRow(ctx, `SELECT purpose FROM form WHERE id = $1`, formID).Scan(&purpose)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && purpose != "DATA_COLLECTION") {
			return fault.New(fault.NotFound, "", "formId: no data-collection form %q", formID)
		}
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO sheet_export (form_id, spreadsheet_id, sheet_name, created_by)
			VALUES ($1, $2, $3, nullif($4, ''))
			ON CONFLICT (spreadsheet_id, sheet_name) DO UPDATE SET enabled = true, last_error = NULL, last_error_at = NULL,
			  sheet_id = NULL -- the next run looks at the tab again (deleted? emptied?)
			  WHERE sheet_export.form_id = EXCLUDED.form_id
			RETURNING id, form_id, spreadsheet_id, sheet_name, enabled, rows_written, last_error`, formID, sid, sheet, by).
			Scan(&c.ID, &c.FormID, &c.SpreadsheetID, &c.SheetName, &c.Enabled, &c.RowsWritten, &c.LastError)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.Conflict, CodeSheetInUse, "sheetName: sheet %q of spreadsheet %s already receives another form's responses", sheet, sid)
		}
		if err != nil {
			return err
		}
		if q == nil {
			return nil
		}
		_, err = q.InsertTx(ctx, tx, ExportArgs{ExportID: c.ID}, nil)
		return err
	})
	if err != nil {
		return nil, postgres.Translate(err, "sheet export")
	}
	return c, nil
}

// FormExists reports whether formID is a registered data-collection form.
func FormExists(ctx context.Context, pool *pgxpool.Pool, formID string) (bool, error) {
	var ok bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM form WHERE id = $1 AND purpose = 'DATA_COLLECTION')`, formID).Scan(&ok)
	return ok, err
}

// Sweep queues a run for every enabled export with something to do: a
// pending batch to check, responses after its cursor, a header never
// written, a form version registered since the header was last checked
// (it may rename a label), or a response edited after its row reached the
// sheet. The River job of each is unique, so a running
// export is not queued twice.
func Sweep(ctx context.Context, pool *pgxpool.Pool, q queue.Inserter, _ time.Duration) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		n, err = queue.EnqueueEach(ctx, tx, q, func(id uuid.UUID) river.JobArgs { return ExportArgs{ExportID: id} }, `
			SELECT e.id FROM sheet_export e
			WHERE e.enabled AND (e.pending_response_id IS NOT NULL OR e.header_columns = 0 OR EXISTS (
			  SELECT 1 FROM form_version v WHERE v.form_id = e.form_id AND v.registered_at > coalesce(e.header_layout_at, '-infinity')
			) OR EXISTS (
			  SELECT 1 FROM response r WHERE r.form_id = e.form_id
			    AND (r.created_at, r.id) > (coalesce(e.cursor_submitted_at, '-infinity'), coalesce(e.cursor_response_id, '00000000-0000-0000-0000-000000000000'))
			) OR EXISTS (
			  SELECT 1 FROM response r WHERE r.form_id = e.form_id AND r.edited_at IS NOT NULL
			    AND (r.edited_at, r.id) > (coalesce(e.edits_edited_at, '-infinity'), coalesce(e.edits_response_id, '00000000-0000-0000-0000-000000000000'))
			    AND (r.created_at, r.id) <= (e.cursor_submitted_at, e.cursor_response_id)))
			ORDER BY e.last_run_at NULLS FIRST LIMIT 1000`)
		return err
	})
	return n, err
}
