// Package sheets is a thin adapter over Google's official Sheets API v4
// client (google.golang.org/api/sheets/v4): the five calls shala's exporter
// makes, with a per-call deadline and errors classified into what a caller
// can do about them. It authenticates as a Google service account whose JSON
// key comes from Vault; the endpoint is configurable so tests point the real
// client at sheetstest, a local server speaking the same JSON.
package sheets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	gsheets "google.golang.org/api/sheets/v4"
)

// DefaultURL is Google's Sheets API endpoint.
const DefaultURL = "https://sheets.googleapis.com/"

// MaxCellChars is the most characters Google keeps in one cell; a longer
// value makes the whole append fail.
const MaxCellChars = 50000

// Config says how to reach the API.
type Config struct {
	// URL is the API endpoint (DefaultURL in production).
	URL string
	// CredentialsJSON is a Google service account key (JSON).
	CredentialsJSON []byte
	// CallTimeout bounds each call; a call cut off by it has an unknown
	// outcome (Unknown reports true).
	CallTimeout time.Duration
}

// Client makes Sheets API calls as one service account.
type Client struct {
	svc     *gsheets.Service
	timeout time.Duration
	account string
}

// New returns a client for cfg. It checks the key's shape but makes no call.
func New(ctx context.Context, cfg Config) (*Client, error) {
	var key struct {
		Type        string `json:"type"`
		ClientEmail string `json:"client_email"`
		PrivateKey  string `json:"private_key"`
	}
	if err := json.Unmarshal(cfg.CredentialsJSON, &key); err != nil {
		return nil, fmt.Errorf("google service account key: not JSON: %w", err)
	}
	if key.Type != "service_account" || key.ClientEmail == "" || key.PrivateKey == "" {
		return nil, errors.New(`google service account key: want "type": "service_account" with client_email and private_key`)
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 60 * time.Second
	}
	svc, err := gsheets.NewService(ctx, option.WithEndpoint(cfg.URL),
		option.WithAuthCredentialsJSON(option.ServiceAccount, cfg.CredentialsJSON),
		option.WithScopes(gsheets.SpreadsheetsScope))
	if err != nil {
		return nil, fmt.Errorf("sheets client: %w", err)
	}
	return &Client{svc: svc, timeout: cfg.CallTimeout, account: key.ClientEmail}, nil
}

// Account is the service account's e-mail: spreadsheets must be shared with
// it (as Editor) for shala to write them.
func (c *Client) Account() string { return c.account }

// Tab is one sheet (tab) of a spreadsheet.
type Tab struct {
	ID      int64
	Title   string
	Rows    int64 // grid size, not the rows holding data
	Columns int64
}

// ErrNoTab is returned by Tab when the spreadsheet has no tab of that title.
var ErrNoTab = errors.New("no such sheet")

// Tab looks up the tab called title (spreadsheets.get).
func (c *Client) Tab(ctx context.Context, spreadsheetID, title string) (*Tab, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.svc.Spreadsheets.Get(spreadsheetID).Fields("sheets.properties").Context(ctx).Do()
	if err != nil {
		return nil, wrap("spreadsheets.get", err)
	}
	for _, sh := range s.Sheets {
		if p := sh.Properties; p != nil && p.Title == title {
			return tab(p), nil
		}
	}
	return nil, ErrNoTab
}

func tab(p *gsheets.SheetProperties) *Tab {
	t := &Tab{ID: p.SheetId, Title: p.Title}
	if g := p.GridProperties; g != nil {
		t.Rows, t.Columns = g.RowCount, g.ColumnCount
	}
	return t
}

// AddTab creates a tab called title (batchUpdate addSheet).
func (c *Client) AddTab(ctx context.Context, spreadsheetID, title string) (*Tab, error) {
	res, err := c.batchUpdate(ctx, spreadsheetID, &gsheets.Request{AddSheet: &gsheets.AddSheetRequest{
		Properties: &gsheets.SheetProperties{Title: title}}})
	if err != nil {
		return nil, err
	}
	if len(res.Replies) != 1 || res.Replies[0].AddSheet == nil || res.Replies[0].AddSheet.Properties == nil {
		return nil, errors.New("sheets batchUpdate addSheet: reply without the new sheet's properties")
	}
	return tab(res.Replies[0].AddSheet.Properties), nil
}

// WriteHeader widens the tab to at least width columns when it has fewer
// (appendDimension) and writes labels into row 1 from column from (0-based)
// on (updateCells), in one batchUpdate. Writing the same labels again
// changes nothing, so a retry is harmless.
func (c *Client) WriteHeader(ctx context.Context, spreadsheetID string, t *Tab, from int, labels []string, width int) error {
	var reqs []*gsheets.Request
	if int64(width) > t.Columns {
		reqs = append(reqs, &gsheets.Request{AppendDimension: &gsheets.AppendDimensionRequest{
			SheetId: t.ID, Dimension: "COLUMNS", Length: int64(width) - t.Columns}})
	}
	cells := make([]*gsheets.CellData, len(labels))
	for i, l := range labels {
		l := l
		cells[i] = &gsheets.CellData{UserEnteredValue: &gsheets.ExtendedValue{StringValue: &l}}
	}
	reqs = append(reqs, &gsheets.Request{UpdateCells: &gsheets.UpdateCellsRequest{
		Start:  &gsheets.GridCoordinate{SheetId: t.ID, RowIndex: 0, ColumnIndex: int64(from)},
		Rows:   []*gsheets.RowData{{Values: cells}},
		Fields: "userEnteredValue",
	}})
	if _, err := c.batchUpdate(ctx, spreadsheetID, reqs...); err != nil {
		return err
	}
	t.Columns = max(t.Columns, int64(width))
	return nil
}

func (c *Client) batchUpdate(ctx context.Context, spreadsheetID string, reqs ...*gsheets.Request) (*gsheets.BatchUpdateSpreadsheetResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.svc.Spreadsheets.BatchUpdate(spreadsheetID, &gsheets.BatchUpdateSpreadsheetRequest{Requests: reqs}).Context(ctx).Do()
	if err != nil {
		return nil, wrap("spreadsheets.batchUpdate", err)
	}
	return res, nil
}

// Read returns the values of range a1 (values.get), rows first, unformatted
// (numbers as float64, text as string). Trailing empty rows and cells are
// absent, as Google sends them.
func (c *Client) Read(ctx context.Context, spreadsheetID, a1 string) ([][]any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, err := c.svc.Spreadsheets.Values.Get(spreadsheetID, a1).MajorDimension("ROWS").
		ValueRenderOption("UNFORMATTED_VALUE").Context(ctx).Do()
	if err != nil {
		return nil, wrap("values.get", err)
	}
	return v.Values, nil
}

// Appended is where an append landed.
type Appended struct {
	Range string // A1 range of the new rows, e.g. "Responses!A2:F501"
	Rows  int64
}

// Append adds rows after the last row of the table in tab title
// (values.append) with insertDataOption INSERT_ROWS — new rows are
// inserted, so concurrent appends cannot overwrite each other, as the
// default OVERWRITE lets them — and valueInputOption RAW: values are stored
// as given, never parsed as formulas, dates or numbers.
//
// The Sheets API has no idempotency key: when Append fails, the rows may or
// may not be in the sheet (Unknown says whether that is possible), and the
// caller must read the sheet back before sending them again.
func (c *Client) Append(ctx context.Context, spreadsheetID, title string, rows [][]any) (*Appended, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.svc.Spreadsheets.Values.Append(spreadsheetID, Range(title, "A1"), &gsheets.ValueRange{
		MajorDimension: "ROWS", Values: rows,
	}).ValueInputOption("RAW").InsertDataOption("INSERT_ROWS").Context(ctx).Do()
	if err != nil {
		return nil, wrap("values.append", err)
	}
	out := &Appended{}
	if res.Updates != nil {
		out.Range, out.Rows = res.Updates.UpdatedRange, res.Updates.UpdatedRows
	}
	return out, nil
}

// Range is the A1 notation of cells in tab title: the title quoted (quotes
// doubled) so any title works.
func Range(title, cells string) string {
	r := "'" + strings.ReplaceAll(title, "'", "''") + "'"
	if cells != "" {
		r += "!" + cells
	}
	return r
}

// Error is a failed call.
type Error struct {
	Call   string // e.g. "values.append"
	Status int    // HTTP status; 0 when no response came
	Err    error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("sheets %s: HTTP %d: %v", e.Call, e.Status, e.Err)
	}
	return fmt.Sprintf("sheets %s: %v", e.Call, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func wrap(call string, err error) error {
	e := &Error{Call: call, Err: err}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		e.Status = ge.Code
		if ge.Message != "" {
			e.Err = errors.New(ge.Message)
		}
	}
	return e
}

// Transient reports whether err may go away by itself: quota (429), server
// errors (5xx), timeouts and network failures. Anything else (403: not
// shared with the service account; 404: no such spreadsheet; 400: a bad
// range) needs a person.
func Transient(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Status == 0 {
		return true
	}
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// Unknown reports whether a failed call may nevertheless have been applied:
// no answer came (timeout, dropped connection), or the server failed while
// working it (5xx). A 4xx means Google refused it.
func Unknown(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return true
	}
	return e.Status == 0 || e.Status >= 500
}

// IsTimeout reports whether err is a call cut off by its deadline.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
