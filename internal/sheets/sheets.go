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
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
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

// Tab looks up the tab (sheet) called title (spreadsheets.get) and returns
// its id and width in columns; found is false when there is none.
func (c *Client) Tab(ctx context.Context, spreadsheetID, title string) (id, columns int64, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := c.svc.Spreadsheets.Get(spreadsheetID).Fields("sheets.properties").Context(ctx).Do()
	if err != nil {
		return 0, 0, false, wrap("spreadsheets.get", err)
	}
	for _, sh := range s.Sheets {
		if p := sh.Properties; p != nil && p.Title == title {
			id, columns = props(p)
			return id, columns, true, nil
		}
	}
	return 0, 0, false, nil
}

func props(p *gsheets.SheetProperties) (id, columns int64) {
	if p.GridProperties != nil {
		columns = p.GridProperties.ColumnCount
	}
	return p.SheetId, columns
}

// AddTab creates a tab called title (batchUpdate addSheet) and returns its
// id and width.
func (c *Client) AddTab(ctx context.Context, spreadsheetID, title string) (id, columns int64, err error) {
	res, err := c.batchUpdate(ctx, spreadsheetID, &gsheets.Request{AddSheet: &gsheets.AddSheetRequest{
		Properties: &gsheets.SheetProperties{Title: title}}})
	if err != nil {
		return 0, 0, err
	}
	if len(res.Replies) != 1 || res.Replies[0].AddSheet == nil || res.Replies[0].AddSheet.Properties == nil {
		return 0, 0, errors.New("sheets batchUpdate addSheet: reply without the new sheet's properties")
	}
	id, columns = props(res.Replies[0].AddSheet.Properties)
	return id, columns, nil
}

// WriteHeader writes labels into row 1 of tab sheetID from column from
// (0-based) on (updateCells), first widening the tab to width columns when
// it has fewer (appendDimension; have is its width now), in one
// batchUpdate. Writing the same labels again changes nothing, so a retry is
// harmless.
func (c *Client) WriteHeader(ctx context.Context, spreadsheetID string, sheetID, have int64, from int, labels []string, width int) error {
	var reqs []*gsheets.Request
	if int64(width) > have {
		reqs = append(reqs, &gsheets.Request{AppendDimension: &gsheets.AppendDimensionRequest{
			SheetId: sheetID, Dimension: "COLUMNS", Length: int64(width) - have}})
	}
	cells := make([]*gsheets.CellData, len(labels))
	for i := range labels {
		cells[i] = &gsheets.CellData{UserEnteredValue: &gsheets.ExtendedValue{StringValue: &labels[i]}}
	}
	reqs = append(reqs, &gsheets.Request{UpdateCells: &gsheets.UpdateCellsRequest{
		Start:  &gsheets.GridCoordinate{SheetId: sheetID, RowIndex: 0, ColumnIndex: int64(from)},
		Rows:   []*gsheets.RowData{{Values: cells}},
		Fields: "userEnteredValue",
	}})
	_, err := c.batchUpdate(ctx, spreadsheetID, reqs...)
	return err
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

// Read returns the values of cells (A1 notation without the sheet, e.g.
// "A5:A") in tab title (values.get), rows first, unformatted (numbers as
// float64, text as string). Trailing empty rows and cells are absent, as
// Google sends them.
func (c *Client) Read(ctx context.Context, spreadsheetID, title, cells string) ([][]any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v, err := c.svc.Spreadsheets.Values.Get(spreadsheetID, Range(title, cells)).MajorDimension("ROWS").
		ValueRenderOption("UNFORMATTED_VALUE").Context(ctx).Do()
	if err != nil {
		return nil, wrap("values.get", err)
	}
	return v.Values, nil
}

// Rewrite writes rows over the rows of tab title they name
// (values.batchUpdate, valueInputOption RAW: stored as given), each from
// column A. Writing the same values again changes nothing, so a call whose
// outcome is unknown can simply be made again.
func (c *Client) Rewrite(ctx context.Context, spreadsheetID, title string, rows map[int][]any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req := &gsheets.BatchUpdateValuesRequest{ValueInputOption: "RAW"}
	for _, n := range slices.Sorted(maps.Keys(rows)) {
		req.Data = append(req.Data, &gsheets.ValueRange{Range: Range(title, "A"+strconv.Itoa(n)), MajorDimension: "ROWS", Values: [][]any{rows[n]}})
	}
	if _, err := c.svc.Spreadsheets.Values.BatchUpdate(spreadsheetID, req).Context(ctx).Do(); err != nil {
		return wrap("values.batchUpdate", err)
	}
	return nil
}

// Append adds rows after the last row of the table in tab title
// (values.append) with insertDataOption INSERT_ROWS — new rows are
// inserted, so concurrent appends cannot overwrite each other, as the
// default OVERWRITE lets them — and valueInputOption RAW: values are stored
// as given, never parsed as formulas, dates or numbers.
//
// The Sheets API has no idempotency key: when Append fails, the rows may or
// may not be in the sheet (Unknown says whether that is possible), and the
// caller must read the sheet back before sending them again. It returns the
// A1 range the rows landed in.
func (c *Client) Append(ctx context.Context, spreadsheetID, title string, rows [][]any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.svc.Spreadsheets.Values.Append(spreadsheetID, Range(title, "A1"), &gsheets.ValueRange{
		MajorDimension: "ROWS", Values: rows,
	}).ValueInputOption("RAW").InsertDataOption("INSERT_ROWS").Context(ctx).Do()
	if err != nil {
		return "", wrap("values.append", err)
	}
	if res.Updates == nil {
		return "", nil
	}
	return res.Updates.UpdatedRange, nil
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

// Transient reports whether the failure may go away by itself: quota
// (429), server errors (5xx), timeouts and network failures. Anything else
// (403: not shared with the service account; 404: no such spreadsheet; 400:
// a bad range) needs a person.
func (e *Error) Transient() bool {
	return e.Status == 0 || e.Status == http.StatusTooManyRequests || e.Status == http.StatusRequestTimeout || e.Status >= 500
}

// Unknown reports whether the failed call may nevertheless have been
// applied: no answer came (timeout, dropped connection), or the server
// failed while working it (5xx). A 4xx means Google refused it.
func (e *Error) Unknown() bool { return e.Status == 0 || e.Status >= 500 }

// Timeout reports whether the call was cut off by its deadline.
func (e *Error) Timeout() bool {
	var ne net.Error
	return errors.Is(e.Err, context.DeadlineExceeded) || (errors.As(e.Err, &ne) && ne.Timeout())
}
