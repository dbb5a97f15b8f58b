// Package sheetstest serves the part of Google's Sheets API v4 that shala
// uses, on a local port, in Google's JSON: spreadsheets.get,
// spreadsheets.batchUpdate (addSheet, appendDimension, updateCells),
// values.get, values.append (insertDataOption INSERT_ROWS,
// valueInputOption RAW) and values.batchUpdate (RAW), Google's error bodies, and the OAuth 2.0 token
// endpoint a service account key points at (JWT bearer grant, RS256 checked
// against the key it issued). Faults can be injected per call — 429, 500,
// a dropped connection, a timeout after the append was applied — so the
// real client and exporter are tested against what Google does.
//
// Simplifications, each stricter than or equal to Google: values.append
// appends after the last non-empty row of the tab (Google looks for the
// "table" in the range; with a header row at A1 the two agree); a row wider
// than the grid is refused (widen first); only RAW and INSERT_ROWS are
// accepted.
package sheetstest

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault is what the server does with one call instead of answering it
// normally.
type Fault int

// Faults.
const (
	None Fault = iota
	// TooMany answers 429 RESOURCE_EXHAUSTED without applying the call.
	TooMany
	// ServerError answers 500 without applying the call.
	ServerError
	// ServerErrorAfterApply applies the call, then answers 500.
	ServerErrorAfterApply
	// Drop closes the connection without applying the call or answering.
	Drop
	// DropAfterApply applies the call, then closes the connection without
	// answering.
	DropAfterApply
	// TimeoutAfterApply applies the call, then never answers: the client's
	// deadline ends it.
	TimeoutAfterApply
	// Protected answers 403 PERMISSION_DENIED without applying the call, as
	// Google answers a write to a protected range.
	Protected
)

func (f Fault) String() string {
	return [...]string{"none", "429", "500", "500-after-apply", "drop", "drop-after-apply", "timeout-after-apply", "403-protected"}[f]
}

// Call describes a call for the fault hook.
type Call struct {
	Method        string // "spreadsheets.get", "spreadsheets.batchUpdate", "values.get", "values.append", "values.batchUpdate"
	SpreadsheetID string
	Seq           int // calls received so far, this one included
}

// Server is a running fake of the Sheets API.
type Server struct {
	URL string

	key     *rsa.PrivateKey
	account string

	mu     sync.Mutex
	books  map[string]*book
	tokens map[string]bool
	calls  map[string]int
	seq    int
	fault  func(Call) Fault
	done   chan struct{}
}

type book struct {
	denied bool
	tabs   []*tab
	nextID int64
}

type tab struct {
	id         int64
	title      string
	rows, cols int64
	cells      [][]any // data, row-major; len ≤ rows
}

// New starts a server; it is closed when t ends.
func New(t testing.TB) *Server {
	s, stop, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

// Start starts a server outside a test (benchmarks); stop closes it.
func Start() (s *Server, stop func(), err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	s = &Server{key: key, account: "shala-exporter@shala-test.iam.gserviceaccount.com",
		books: map[string]*book{}, tokens: map[string]bool{}, calls: map[string]int{}, done: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = srv.URL + "/"
	return s, func() {
		close(s.done)
		srv.Close()
	}, nil
}

// CredentialsJSON is a service account key for this server: its token_uri
// is the server's token endpoint and its private key is one the server
// checks signatures against.
func (s *Server) CredentialsJSON() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     "shala-test",
		"private_key_id": "test-key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   s.account,
		"client_id":      "100000000000000000001",
		"auth_uri":       s.URL + "o/oauth2/auth",
		"token_uri":      s.URL + "token",
	})
	if err != nil {
		panic(err)
	}
	return b
}

// Account is the service account's e-mail.
func (s *Server) Account() string { return s.account }

// AddSpreadsheet creates spreadsheet id with one empty tab "Sheet1"
// (1,000 rows × 26 columns, as Google makes them).
func (s *Server) AddSpreadsheet(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.books[id] = &book{tabs: []*tab{{id: 0, title: "Sheet1", rows: 1000, cols: 26}}, nextID: 1}
}

// Deny makes spreadsheet id answer 403, as one not shared with the service
// account does.
func (s *Server) Deny(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.books[id].denied = true
}

// SetCells puts values into a tab directly, as a person editing the sheet
// would (creating the tab if needed).
func (s *Server) SetCells(id, title string, rows [][]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.books[id]
	t := b.find(title)
	if t == nil {
		t = &tab{id: b.nextID, title: title, rows: 1000, cols: 26}
		b.nextID++
		b.tabs = append(b.tabs, t)
	}
	t.cells = rows
}

// DeleteTab removes a tab, as a person deleting it would.
func (s *Server) DeleteTab(id, title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.books[id]
	for i, t := range b.tabs {
		if t.title == title {
			b.tabs = append(b.tabs[:i], b.tabs[i+1:]...)
			return
		}
	}
}

// DeleteRows removes rows from to through to (1-based, inclusive) of a tab,
// as a person deleting them would: the rows below move up and the grid
// shrinks.
func (s *Server) DeleteRows(id, title string, from, to int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.books[id].find(title)
	if from < 1 || to < from || int64(to) > t.rows {
		panic(fmt.Sprintf("sheetstest: DeleteRows %d–%d of a tab of %d rows", from, to, t.rows))
	}
	if from <= len(t.cells) {
		t.cells = append(t.cells[:from-1], t.cells[min(to, len(t.cells)):]...)
	}
	t.rows -= int64(to - from + 1)
}

// Rows returns a copy of the cells of a tab, trailing empty rows dropped.
func (s *Server) Rows(id, title string) [][]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.books[id].find(title)
	if t == nil {
		return nil
	}
	out := make([][]any, len(t.cells))
	for i, r := range t.cells {
		out[i] = append([]any(nil), r...)
	}
	return out
}

// Calls returns how many calls of each method were received (faulted ones
// included).
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// SetFault installs f, asked for every API call (nil: no faults).
func (s *Server) SetFault(f func(Call) Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

func (b *book) find(title string) *tab {
	for _, t := range b.tabs {
		if t.title == title {
			return t
		}
	}
	return nil
}

// googleError writes Google's error body.
func googleError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

var (
	bookPath    = regexp.MustCompile(`^/v4/spreadsheets/([^/:]+)(:batchUpdate)?$`)
	valuesPath  = regexp.MustCompile(`^/v4/spreadsheets/([^/:]+)/values/([^/]+?)(:append)?$`)
	valuesBatch = regexp.MustCompile(`^/v4/spreadsheets/([^/:]+)/values:batchUpdate$`)
)

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		s.token(w, r)
		return
	}
	if !s.authorized(r) {
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
		return
	}
	p := r.URL.EscapedPath()
	var method, id, a1 string
	if m := bookPath.FindStringSubmatch(p); m != nil {
		id = m[1]
		switch {
		case m[2] == "" && r.Method == http.MethodGet:
			method = "spreadsheets.get"
		case m[2] != "" && r.Method == http.MethodPost:
			method = "spreadsheets.batchUpdate"
		}
	} else if m := valuesBatch.FindStringSubmatch(p); m != nil && r.Method == http.MethodPost {
		id, method = m[1], "values.batchUpdate"
	} else if m := valuesPath.FindStringSubmatch(p); m != nil {
		id = m[1]
		var err error
		if a1, err = url.PathUnescape(m[2]); err != nil {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "bad range encoding")
			return
		}
		switch {
		case m[3] == "" && r.Method == http.MethodGet:
			method = "values.get"
		case m[3] != "" && r.Method == http.MethodPost:
			method = "values.append"
		}
	}
	if method == "" {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "no such method: "+r.Method+" "+p)
		return
	}
	var body []byte
	if r.Body != nil {
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(r.Body); err != nil {
			return
		}
		body = buf.Bytes()
	}

	s.mu.Lock()
	s.seq++
	s.calls[method]++
	f := None
	if s.fault != nil {
		f = s.fault(Call{Method: method, SpreadsheetID: id, Seq: s.seq})
	}
	s.mu.Unlock()

	switch f {
	case TooMany:
		googleError(w, http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
			"Quota exceeded for quota metric 'Write requests' and limit 'Write requests per minute per user'")
		return
	case ServerError:
		googleError(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered.")
		return
	case Protected:
		googleError(w, http.StatusForbidden, "PERMISSION_DENIED",
			"You are trying to edit a protected cell or object. Please contact the spreadsheet owner to remove protection if you need to edit.")
		return
	case Drop:
		s.drop(w)
		return
	}

	rec := httptest.NewRecorder()
	s.mu.Lock()
	s.apply(rec, r, method, id, a1, body)
	s.mu.Unlock()

	switch f {
	case ServerErrorAfterApply:
		googleError(w, http.StatusInternalServerError, "INTERNAL", "Internal error encountered.")
		return
	case DropAfterApply:
		s.drop(w)
		return
	case TimeoutAfterApply:
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

func (s *Server) drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("sheetstest: connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// apply works a call; s.mu is held.
func (s *Server) apply(w http.ResponseWriter, r *http.Request, method, id, a1 string, body []byte) {
	b := s.books[id]
	if b == nil {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.")
		return
	}
	if b.denied {
		googleError(w, http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission")
		return
	}
	switch method {
	case "spreadsheets.get":
		sheets := make([]any, len(b.tabs))
		for i, t := range b.tabs {
			sheets[i] = map[string]any{"properties": t.properties(i)}
		}
		writeJSON(w, map[string]any{"spreadsheetId": id, "properties": map[string]any{"title": id}, "sheets": sheets})
	case "spreadsheets.batchUpdate":
		s.batchUpdate(w, b, id, body)
	case "values.get":
		t, rg, err := b.parseRange(a1)
		if err != nil {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
			return
		}
		if r.URL.Query().Get("majorDimension") == "COLUMNS" {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "sheetstest: only majorDimension=ROWS is implemented")
			return
		}
		writeJSON(w, map[string]any{"range": rg.a1(t), "majorDimension": "ROWS", "values": t.read(rg)})
	case "values.append":
		q := r.URL.Query()
		if q.Get("valueInputOption") != "RAW" {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "sheetstest: valueInputOption must be RAW (got "+strconv.Quote(q.Get("valueInputOption"))+")")
			return
		}
		if q.Get("insertDataOption") != "INSERT_ROWS" {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "sheetstest: insertDataOption must be INSERT_ROWS (OVERWRITE lets concurrent appends overwrite each other)")
			return
		}
		t, _, err := b.parseRange(a1)
		if err != nil {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
			return
		}
		var vr struct {
			MajorDimension string  `json:"majorDimension"`
			Values         [][]any `json:"values"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&vr); err != nil {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
			return
		}
		s.appendRows(w, id, t, vr.Values)
	case "values.batchUpdate":
		s.writeRanges(w, b, id, body)
	}
}

// writeRanges works values.batchUpdate: each range's rows are written over
// the cells from its first cell on (cells beyond a row's values keep
// theirs), within the grid.
func (s *Server) writeRanges(w http.ResponseWriter, b *book, id string, body []byte) {
	var req struct {
		ValueInputOption string `json:"valueInputOption"`
		Data             []struct {
			Range          string  `json:"range"`
			MajorDimension string  `json:"majorDimension"`
			Values         [][]any `json:"values"`
		} `json:"data"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	}
	if req.ValueInputOption != "RAW" {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "sheetstest: valueInputOption must be RAW (got "+strconv.Quote(req.ValueInputOption)+")")
		return
	}
	type write struct {
		t    *tab
		rg   cellRange
		rows [][]any
	}
	var writes []write
	cells := 0
	for i, d := range req.Data {
		if d.MajorDimension != "" && d.MajorDimension != "ROWS" {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "sheetstest: only majorDimension=ROWS is implemented")
			return
		}
		t, rg, err := b.parseRange(d.Range)
		if err != nil {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", err.Error())
			return
		}
		rows, width, msg := cleanCells(d.Values)
		if msg != "" {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg)
			return
		}
		if int64(rg.c0+width) > t.cols || int64(rg.r0+len(rows)) > t.rows {
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT",
				fmt.Sprintf("Invalid data[%d]: Range (%s) exceeds grid limits. Max rows: %d, max columns: %d", i, quote(t.title), t.rows, t.cols))
			return
		}
		writes = append(writes, write{t, rg, rows})
		for _, r := range rows {
			cells += len(r)
		}
	}
	// Checked first, then written: a refused range writes nothing.
	rowsWritten, width := 0, 0
	for _, wr := range writes {
		for i, row := range wr.rows {
			n := wr.rg.r0 + i
			for len(wr.t.cells) <= n {
				wr.t.cells = append(wr.t.cells, nil)
			}
			for len(wr.t.cells[n]) < wr.rg.c0+len(row) {
				wr.t.cells[n] = append(wr.t.cells[n], nil)
			}
			for j, v := range row {
				if v != nil { // Google skips null values
					wr.t.cells[n][wr.rg.c0+j] = v
				}
			}
			rowsWritten, width = rowsWritten+1, max(width, len(row))
		}
	}
	writeJSON(w, map[string]any{"spreadsheetId": id, "totalUpdatedRows": rowsWritten, "totalUpdatedColumns": width,
		"totalUpdatedCells": cells, "totalUpdatedSheets": 1, "responses": []any{}})
}

// cleanCells turns values as decoded (numbers as json.Number) into cells, or
// says why Google would refuse them.
func cleanCells(rows [][]any) (out [][]any, width int, refused string) {
	out = make([][]any, len(rows))
	for i, row := range rows {
		out[i] = make([]any, len(row))
		for j, v := range row {
			switch x := v.(type) {
			case json.Number:
				f, err := x.Float64()
				if err != nil {
					return nil, 0, "Invalid value at 'data.values' " + x.String()
				}
				out[i][j] = f
			case string:
				if n := len([]rune(x)); n > 50000 {
					return nil, 0, "Your input contains more than the maximum of 50000 characters in a single cell."
				}
				out[i][j] = x
			case bool, nil:
				out[i][j] = x
			default:
				return nil, 0, fmt.Sprintf("Invalid value at 'data.values' (%T)", v)
			}
		}
		width = max(width, len(row))
	}
	return out, width, ""
}

func (t *tab) properties(index int) map[string]any {
	return map[string]any{"sheetId": t.id, "title": t.title, "index": index, "sheetType": "GRID",
		"gridProperties": map[string]any{"rowCount": t.rows, "columnCount": t.cols}}
}

func (s *Server) appendRows(w http.ResponseWriter, id string, t *tab, rows [][]any) {
	clean, width, refused := cleanCells(rows)
	if refused != "" {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", refused)
		return
	}
	if int64(width) > t.cols {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT",
			fmt.Sprintf("Range (%s) exceeds grid limits. Max rows: %d, max columns: %d", quote(t.title), t.rows, t.cols))
		return
	}
	last := len(t.cells)
	for last > 0 && empty(t.cells[last-1]) {
		last--
	}
	t.cells = append(t.cells[:last], clean...)
	t.rows += int64(len(clean)) // INSERT_ROWS: new rows are inserted
	first := last + 1
	updated := fmt.Sprintf("%s!A%d:%s%d", quote(t.title), first, column(max(width, 1)-1), first+len(clean)-1)
	cells := 0
	for _, r := range clean {
		cells += len(r)
	}
	writeJSON(w, map[string]any{"spreadsheetId": id, "tableRange": fmt.Sprintf("%s!A1:%s%d", quote(t.title), column(max(width, 1)-1), max(last, 1)),
		"updates": map[string]any{"spreadsheetId": id, "updatedRange": updated, "updatedRows": len(clean),
			"updatedColumns": width, "updatedCells": cells}})
}

func empty(row []any) bool {
	for _, v := range row {
		if v != nil && v != "" {
			return false
		}
	}
	return true
}

func (s *Server) batchUpdate(w http.ResponseWriter, b *book, id string, body []byte) {
	var req struct {
		Requests []struct {
			AddSheet *struct {
				Properties struct {
					Title string `json:"title"`
				} `json:"properties"`
			} `json:"addSheet"`
			AppendDimension *struct {
				SheetID   int64  `json:"sheetId"`
				Dimension string `json:"dimension"`
				Length    int64  `json:"length"`
			} `json:"appendDimension"`
			UpdateCells *struct {
				Start struct {
					SheetID     int64 `json:"sheetId"`
					RowIndex    int64 `json:"rowIndex"`
					ColumnIndex int64 `json:"columnIndex"`
				} `json:"start"`
				Rows []struct {
					Values []struct {
						UserEnteredValue struct {
							StringValue *string  `json:"stringValue"`
							NumberValue *float64 `json:"numberValue"`
						} `json:"userEnteredValue"`
					} `json:"values"`
				} `json:"rows"`
				Fields string `json:"fields"`
			} `json:"updateCells"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error())
		return
	}
	// Google applies a batchUpdate atomically: check everything first.
	byID := func(sid int64) *tab {
		for _, t := range b.tabs {
			if t.id == sid {
				return t
			}
		}
		return nil
	}
	for i, rq := range req.Requests {
		switch {
		case rq.AddSheet != nil:
			if rq.AddSheet.Properties.Title == "" || b.find(rq.AddSheet.Properties.Title) != nil {
				googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf(
					"Invalid requests[%d].addSheet: A sheet with the name %q already exists. Please enter another name.", i, rq.AddSheet.Properties.Title))
				return
			}
		case rq.AppendDimension != nil:
			if byID(rq.AppendDimension.SheetID) == nil || rq.AppendDimension.Length <= 0 {
				googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid requests[%d].appendDimension", i))
				return
			}
		case rq.UpdateCells != nil:
			u := rq.UpdateCells
			if byID(u.Start.SheetID) == nil || u.Fields == "" {
				googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("Invalid requests[%d].updateCells", i))
				return
			}
		default:
			googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("sheetstest: requests[%d] is not implemented", i))
			return
		}
	}
	replies := make([]any, len(req.Requests))
	for i, rq := range req.Requests {
		replies[i] = map[string]any{}
		switch {
		case rq.AddSheet != nil:
			t := &tab{id: b.nextID, title: rq.AddSheet.Properties.Title, rows: 1000, cols: 26}
			b.nextID++
			b.tabs = append(b.tabs, t)
			replies[i] = map[string]any{"addSheet": map[string]any{"properties": t.properties(len(b.tabs) - 1)}}
		case rq.AppendDimension != nil:
			t := byID(rq.AppendDimension.SheetID)
			if rq.AppendDimension.Dimension == "COLUMNS" {
				t.cols += rq.AppendDimension.Length
			} else {
				t.rows += rq.AppendDimension.Length
			}
		case rq.UpdateCells != nil:
			u := rq.UpdateCells
			t := byID(u.Start.SheetID)
			for ri, row := range u.Rows {
				rIdx := int(u.Start.RowIndex) + ri
				for ci, cell := range row.Values {
					cIdx := int(u.Start.ColumnIndex) + ci
					if int64(cIdx) >= t.cols || int64(rIdx) >= t.rows {
						// Google refuses the whole batch; checked late here
						// only because widening may come first in it.
						googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf(
							"Invalid requests[%d].updateCells: GridCoordinate.columnIndex[%d] is after last column in grid[%d]", i, cIdx, t.cols-1))
						return
					}
					for len(t.cells) <= rIdx {
						t.cells = append(t.cells, nil)
					}
					for len(t.cells[rIdx]) <= cIdx {
						t.cells[rIdx] = append(t.cells[rIdx], nil)
					}
					var v any
					if sv := cell.UserEnteredValue.StringValue; sv != nil {
						v = *sv
					} else if nv := cell.UserEnteredValue.NumberValue; nv != nil {
						v = *nv
					}
					t.cells[rIdx][cIdx] = v
				}
			}
		}
	}
	writeJSON(w, map[string]any{"spreadsheetId": id, "replies": replies})
}

// rangeError is a range Google refuses, in Google's words.
type rangeError string

func (e rangeError) Error() string { return string(e) }

// cellRange is a parsed A1 range: 0-based, end exclusive; -1 = unbounded.
type cellRange struct{ r0, c0, r1, c1 int }

var a1Cell = regexp.MustCompile(`^([A-Z]*)([0-9]*)$`)

func (b *book) parseRange(a1 string) (*tab, cellRange, error) {
	title, cells := a1, ""
	if strings.HasPrefix(a1, "'") {
		end := -1
		for i := 1; i < len(a1); i++ {
			if a1[i] == '\'' {
				if i+1 < len(a1) && a1[i+1] == '\'' {
					i++
					continue
				}
				end = i
				break
			}
		}
		if end < 0 {
			return nil, cellRange{}, rangeError("Unable to parse range: " + a1)
		}
		title = strings.ReplaceAll(a1[1:end], "''", "'")
		rest := a1[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, "!") {
				return nil, cellRange{}, rangeError("Unable to parse range: " + a1)
			}
			cells = rest[1:]
		}
	} else if i := strings.LastIndex(a1, "!"); i >= 0 {
		title, cells = a1[:i], a1[i+1:]
	}
	t := b.find(title)
	if t == nil {
		return nil, cellRange{}, rangeError("Unable to parse range: " + a1)
	}
	rg := cellRange{0, 0, -1, -1}
	if cells == "" {
		return t, rg, nil
	}
	from, to, two := strings.Cut(cells, ":")
	m := a1Cell.FindStringSubmatch(from)
	if m == nil || (m[1] == "" && m[2] == "") {
		return nil, cellRange{}, rangeError("Unable to parse range: " + a1)
	}
	if m[1] != "" {
		rg.c0 = colIndex(m[1])
	}
	if m[2] != "" {
		n, _ := strconv.Atoi(m[2])
		if n < 1 {
			return nil, cellRange{}, rangeError("Unable to parse range: " + a1)
		}
		rg.r0 = n - 1
	}
	if !two {
		rg.r1, rg.c1 = rg.r0+1, rg.c0+1
		if m[2] == "" { // "A" alone is not A1 notation
			return nil, cellRange{}, rangeError("Unable to parse range: " + a1)
		}
		return t, rg, nil
	}
	m2 := a1Cell.FindStringSubmatch(to)
	if m2 == nil || (m2[1] == "" && m2[2] == "") {
		return nil, cellRange{}, rangeError("Unable to parse range: " + a1)
	}
	if m2[1] != "" {
		rg.c1 = colIndex(m2[1]) + 1
	}
	if m2[2] != "" {
		n, _ := strconv.Atoi(m2[2])
		rg.r1 = n
	}
	if int64(rg.c0) >= t.cols || (rg.c1 > 0 && int64(rg.c1) > t.cols) || int64(rg.r0) >= t.rows {
		return nil, cellRange{}, rangeError(fmt.Sprintf("Range (%s) exceeds grid limits. Max rows: %d, max columns: %d", a1, t.rows, t.cols))
	}
	return t, rg, nil
}

func (rg cellRange) a1(t *tab) string {
	r1, c1 := rg.r1, rg.c1
	if r1 < 0 {
		r1 = int(t.rows)
	}
	if c1 < 0 {
		c1 = int(t.cols)
	}
	return fmt.Sprintf("%s!%s%d:%s%d", quote(t.title), column(rg.c0), rg.r0+1, column(c1-1), r1)
}

// read returns the values in rg, trailing empty cells and rows dropped.
func (t *tab) read(rg cellRange) [][]any {
	out := [][]any{}
	for r := rg.r0; r < len(t.cells) && (rg.r1 < 0 || r < rg.r1); r++ {
		row := t.cells[r]
		var vals []any
		for c := rg.c0; c < len(row) && (rg.c1 < 0 || c < rg.c1); c++ {
			v := row[c]
			if v == nil {
				v = ""
			}
			vals = append(vals, v)
		}
		for len(vals) > 0 && vals[len(vals)-1] == "" {
			vals = vals[:len(vals)-1]
		}
		out = append(out, vals)
	}
	for len(out) > 0 && len(out[len(out)-1]) == 0 {
		out = out[:len(out)-1]
	}
	for i := range out {
		if out[i] == nil {
			out[i] = []any{}
		}
	}
	return out
}

func quote(title string) string { return "'" + strings.ReplaceAll(title, "'", "''") + "'" }

func colIndex(letters string) int {
	n := 0
	for _, c := range letters {
		n = n*26 + int(c-'A'+1)
	}
	return n - 1
}

func column(i int) string {
	s := ""
	for i++; i > 0; i = (i - 1) / 26 {
		s = string(rune('A'+(i-1)%26)) + s
	}
	return s
}

// token is the OAuth 2.0 token endpoint: a JWT bearer grant signed with the
// service account's key gets an access token.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
		http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
		return
	}
	if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	claims, err := s.verifyJWT(r.PostForm.Get("assertion"))
	if err != nil || claims.Aud != s.URL+"token" || claims.Scope == "" {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]string{"error": "invalid_grant", "error_description": fmt.Sprint("Invalid JWT: ", err)})
		return
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	tok := "ya29.test-" + hex.EncodeToString(raw[:])
	s.mu.Lock()
	s.tokens[tok] = true
	s.mu.Unlock()
	writeJSON(w, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

type jwtClaims struct {
	Iss   string `json:"iss"`
	Aud   string `json:"aud"`
	Scope string `json:"scope"`
	Exp   int64  `json:"exp"`
}

// verifyJWT checks an RS256 JWT signed with the service account's key.
func (s *Server) verifyJWT(tok string) (*jwtClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT")
	}
	var hdr struct {
		Alg string `json:"alg"`
	}
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(h, &hdr) != nil || hdr.Alg != "RS256" {
		return nil, fmt.Errorf("header: want alg RS256")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	var c jwtClaims
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(p, &c) != nil {
		return nil, fmt.Errorf("claims")
	}
	if c.Iss != s.account {
		return nil, fmt.Errorf("iss %q is not the service account", c.Iss)
	}
	if time.Unix(c.Exp, 0).Before(time.Now()) {
		return nil, fmt.Errorf("expired")
	}
	return &c, nil
}

// authorized accepts an access token from the token endpoint, or a JWT
// self-signed with the service account's key (Google accepts both).
func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	known := s.tokens[tok]
	s.mu.Unlock()
	if known {
		return true
	}
	_, err := s.verifyJWT(tok)
	return err == nil
}
