package export

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/queue"
)

// Sheets is the Google Sheets API as the exporter uses it
// (internal/sheets.Client implements it). Errors it returns may say what
// they mean through methods Transient() bool (may go away by itself) and
// Unknown() bool (the call may have been applied although it failed);
// errors without them count as permanent and known not applied.
type Sheets interface {
	// Tab returns the id and width of the tab called title.
	Tab(ctx context.Context, spreadsheetID, title string) (id, columns int64, found bool, err error)
	// AddTab creates a tab called title.
	AddTab(ctx context.Context, spreadsheetID, title string) (id, columns int64, err error)
	// WriteHeader writes labels into row 1 from column from on, widening
	// the tab (now have columns wide) to width columns first if needed.
	WriteHeader(ctx context.Context, spreadsheetID string, sheetID, have int64, from int, labels []string, width int) error
	// Read returns the values of cells (A1 without the sheet) of tab title.
	Read(ctx context.Context, spreadsheetID, title, cells string) ([][]any, error)
	// Append inserts rows after the tab's last row, values stored as given
	// (INSERT_ROWS, RAW), and returns the A1 range they landed in.
	Append(ctx context.Context, spreadsheetID, title string, rows [][]any) (string, error)
	// Rewrite writes rows (by row number) over those rows of tab title,
	// values stored as given (RAW).
	Rewrite(ctx context.Context, spreadsheetID, title string, rows map[int][]any) error
}

// MaxCellChars is the longest cell Google Sheets keeps.
const MaxCellChars = 50000

// CallTimeout is the longest one Sheets API call may take: the client
// (internal/sheets, Config.CallTimeout) cuts calls off by then, and a run
// starts a call only while this much of its job's time is left (else it
// ends and the job comes straight back), so a run fits queue.MaxTimeout.
const CallTimeout = 10 * time.Second

// errOutOfTime ends a run with too little of its job's time left to start
// another call; the job comes back at once (Outcome.More).
var errOutOfTime = errors.New("sheet export: too little time left for another call")

// room says whether a call (after waiting up to wait first) can start and
// finish before ctx's deadline.
func room(ctx context.Context, wait time.Duration) error {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < CallTimeout+wait {
		return errOutOfTime
	}
	return nil
}

// Exporter appends a form's responses to its Google Sheet, one row per
// response in (submitted_at, id) order, and guarantees that, whatever fails
// — a timeout after Google applied an append, a 5xx, a dropped connection,
// the process killed between any two steps — the sheet ends with exactly one
// row per response:
//
//   - No missing row: the cursor (the last response known to be in the
//     sheet) moves only after Google confirmed the append, or after the
//     sheet was read back and showed the rows. Responses are taken only
//     below a horizon that no transaction still writing can insert below
//     (see horizon), so a response committed late never lands behind the
//     cursor.
//   - No duplicate: the Sheets API has no idempotency key, so before each
//     append the batch is recorded as pending. A run that finds a pending
//     batch does not send anything until it has read the sheet's tail back
//     (column A holds the response ids) and moved the cursor past the rows
//     that landed; only the rest is sent again.
//   - One writer per export: a session advisory lock, and every write of a
//     run goes through the connection holding it, so a run that lost its
//     lock cannot record anything.
type Exporter struct {
	Pool   *pgxpool.Pool
	Sheets Sheets
	Langs  *Languages
	// Pace spaces writes under Google's per-minute quota (nil: no pacing).
	Pace *Pacer
	// Settle leaves responses younger than this for the next run: they may
	// belong to a transaction that began but has not written yet.
	Settle time.Duration
	// UnknownWait is how long after an append of unknown outcome the sheet
	// is read back: long enough for a request Google is still working on to
	// land first.
	UnknownWait time.Duration
	// BatchRows and BatchBytes bound one append (rows, approximate JSON
	// bytes); at least one row is always sent.
	BatchRows, BatchBytes int
	// Budget is how long one run appends before handing over to the next
	// job (Outcome.More).
	Budget time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Hook, if set, is called at each step (the fault-injection test kills
	// the exporter there by panicking).
	Hook    func(step string)
	Log     *slog.Logger
	Metrics *Metrics
}

// NewExporter returns an exporter with production settings: up to 5,000
// rows or 2 MB per append (Google recommends payloads of at most 2 MB), five
// seconds of appending per run (a run fits queue.MaxTimeout; the job comes
// back at once for more), responses left to settle for 5 s, and an
// append of unknown outcome checked 2 minutes later (Google may still be
// working on a request the client gave up on; it must land before the
// read-back, or the read-back would miss it and the rows be sent twice).
func NewExporter(pool *pgxpool.Pool, s Sheets, langs *Languages, pace *Pacer, log *slog.Logger, m *Metrics) *Exporter {
	return &Exporter{Pool: pool, Sheets: s, Langs: langs, Pace: pace, Settle: 5 * time.Second, UnknownWait: 2 * time.Minute,
		BatchRows: 5000, BatchBytes: 2 << 20, Budget: 5 * time.Second, Log: log, Metrics: m}
}

// Steps passed to Exporter.Hook.
const (
	StepLocked    = "locked"
	StepPending   = "pending-recorded"
	StepAppended  = "appended"
	StepCommitted = "committed"
	StepResolved  = "pending-resolved"
	StepHeader    = "header-written"
	StepRewritten = "edits-rewritten"
)

// Outcome is what one run did.
type Outcome struct {
	Rows      int           // rows appended (or found landed) by this run
	Rewritten int           // rows written over with the responses' edits
	More      bool          // the budget ran out with responses or edits left: run again now
	Wait      time.Duration // run again after this (pacing, or a pending batch to check later)
	Busy      bool          // another run holds the export
	Disabled  bool          // the export is disabled (now or before); see last_error
}

// export is a sheet_export row.
type export struct {
	ID                   uuid.UUID
	FormID               string
	SpreadsheetID, Sheet string
	Enabled              bool
	SheetID              *int64
	Columns              []string
	HeaderColumns        int
	Header               []string   // labels written to row 1; empty when not known
	HeaderLayoutAt       *time.Time // Layout.Newest the header was checked against
	EditsAt              *time.Time // the edits cursor: edited_at of the last edit dealt with …
	EditsID              uuid.UUID  // … and its response's id
	RewriteUnknownAt     *time.Time // when a rewrite of unknown outcome was sent
	Cursor               Cursor
	Pending              *Cursor
	PendingRows          int
	PendingAt            time.Time
	RowsWritten          int64
}

// permanent is a failure a person must fix; the export is disabled with it.
type permanent struct{ msg string }

func (p *permanent) Error() string { return p.msg }

func (e *Exporter) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Exporter) hook(step string) {
	if e.Hook != nil {
		e.Hook(step)
	}
}

// lockKey is the export's advisory lock: (class, hash of the id), the
// two-int form, which never collides with one-bigint locks.
func lockKey(id uuid.UUID) (int32, int32) {
	h := fnv.New32a()
	h.Write(id[:])                      // a hash's Write never fails
	return 0x53485454, int32(h.Sum32()) // "SHTT"
}

// Run appends what is new for export id.
func (e *Exporter) Run(ctx context.Context, id uuid.UUID) (out Outcome, err error) {
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := e.Pool.Acquire(ctx)
	if err != nil {
		return out, err
	}
	defer conn.Release()
	class, key := lockKey(id)
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, class, key).Scan(&locked); err != nil {
		return out, err
	}
	if !locked {
		return Outcome{Busy: true}, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, $2)`, class, key); uerr != nil {
			// A session we cannot unlock must not go back to the pool with
			// the lock: closing it releases the lock.
			log.WarnContext(uctx, "unlock sheet export: closing the connection", "export_id", id, "err", uerr)
			if cerr := conn.Hijack().Close(uctx); cerr != nil {
				log.WarnContext(uctx, "close connection", "err", cerr)
			}
		}
	}()
	e.hook(StepLocked)

	x, err := loadExport(ctx, conn, id)
	if err != nil || !x.Enabled {
		return Outcome{Disabled: err == nil}, err
	}
	out, err = e.run(ctx, conn, x)
	if errors.Is(err, errOutOfTime) {
		out.More, err = true, nil
	}
	var p *permanent
	switch {
	case errors.As(err, &p):
		log.WarnContext(ctx, "sheet export disabled", "export_id", id, "err", p.msg)
		if _, derr := conn.Exec(ctx, `UPDATE sheet_export SET enabled = false, last_error = left($2, 2000), last_error_at = now(),
			last_run_at = now() WHERE id = $1`, id, p.msg); derr != nil {
			return out, derr
		}
		out.Disabled = true
		return out, nil
	case err != nil:
		if ctx.Err() == nil {
			if _, rerr := conn.Exec(ctx, `UPDATE sheet_export SET last_error = left($2, 2000), last_error_at = now(), last_run_at = now()
				WHERE id = $1`, id, err.Error()); rerr != nil {
				log.WarnContext(ctx, "record sheet export error", "export_id", id, "err", rerr)
			}
		}
		return out, err
	}
	_, err = conn.Exec(ctx, `UPDATE sheet_export SET last_run_at = now() WHERE id = $1`, id)
	return out, err
}

func (e *Exporter) run(ctx context.Context, conn querier, x *export) (Outcome, error) {
	var out Outcome
	tabCols := int64(-1) // the tab's width when just looked up
	if x.SheetID == nil {
		// First run, or connected again: find (or make) the tab and check
		// what it holds before anything is read back or appended.
		var err error
		if tabCols, err = e.adopt(ctx, conn, x); err != nil {
			return out, err
		}
	}
	if x.Pending != nil {
		wait := x.PendingAt.Add(e.UnknownWait).Sub(e.now())
		if wait > 0 {
			return Outcome{Wait: wait}, nil
		}
		n, err := e.resolve(ctx, conn, x)
		if err != nil {
			return out, err
		}
		out.Rows += n
		e.hook(StepResolved)
	}
	start := e.now()
	for reloads := 0; ; reloads++ {
		l, err := e.prepare(ctx, conn, x, tabCols)
		if err != nil {
			return out, err
		}
		tabCols = -1
		n, more, err := e.rewrite(ctx, conn, x, l)
		if errors.Is(err, ErrUnknownQuestion) && reloads == 0 {
			continue // an edit answers a version registered meanwhile
		}
		if errors.Is(err, errRewriteLater) {
			err = nil // the sweep brings the export back for its edits
		}
		if end, err := ends(err, &out); end {
			return out, err
		}
		out.Rewritten += n
		for {
			if e.Budget > 0 && e.now().Sub(start) > e.Budget {
				out.More = true
				return out, nil
			}
			n, err := e.batch(ctx, conn, x, l)
			if errors.Is(err, ErrUnknownQuestion) && reloads == 0 {
				break // a version registered meanwhile: read the layout again, once
			}
			if end, err := ends(err, &out); end {
				return out, err
			}
			if n == 0 {
				out.More = out.More || more // edits left: run again for them
				return out, nil
			}
			out.Rows += n
		}
	}
}

// ends says whether a step's err ends the run: a wait (recorded in out,
// not an error) or a failure.
func ends(err error, out *Outcome) (bool, error) {
	var w waitErr
	if errors.As(err, &w) {
		out.Wait = time.Duration(w)
		return true, nil
	}
	return err != nil, err
}

// waitErr asks the caller to come back after a pause (write pacing).
type waitErr time.Duration

func (w waitErr) Error() string { return fmt.Sprintf("wait %s", time.Duration(w)) }

// prepare makes sure the layout is current and row 1 holds its header:
// every column, each under its current label (a later version may have
// renamed one); tabCols is the tab's width if it was just looked up (else
// -1). Only the cells from the first that differs are written.
func (e *Exporter) prepare(ctx context.Context, conn querier, x *export, tabCols int64) (*Layout, error) {
	l, err := LoadLayout(ctx, conn, e.Langs, x.FormID, x.Columns)
	if err != nil {
		return nil, err
	}
	if names := l.Names(); len(names) != len(x.Columns) {
		if _, err := conn.Exec(ctx, `UPDATE sheet_export SET columns = $2 WHERE id = $1`, x.ID, names); err != nil {
			return nil, err
		}
		x.Columns = names
	}
	header := l.Header(func(s string) string { return s })
	from := firstChange(header, x.Header, x.HeaderColumns)
	if from == len(header) {
		if l.Newest != nil && (x.HeaderLayoutAt == nil || l.Newest.After(*x.HeaderLayoutAt)) {
			if _, err := conn.Exec(ctx, `UPDATE sheet_export SET header_layout_at = $2 WHERE id = $1`, x.ID, l.Newest); err != nil {
				return nil, err
			}
			x.HeaderLayoutAt = l.Newest
		}
		return l, nil
	}
	if err := room(ctx, e.Pace.maxWait()); err != nil {
		return nil, err
	}
	if tabCols < 0 {
		_, cols, found, err := e.Sheets.Tab(ctx, x.SpreadsheetID, x.Sheet)
		if err != nil {
			return nil, e.sheetsErr(err)
		}
		if !found {
			return nil, &permanent{fmt.Sprintf("sheet %q was deleted or renamed in spreadsheet %s", x.Sheet, x.SpreadsheetID)}
		}
		tabCols = cols
	}
	if err := room(ctx, e.Pace.maxWait()); err != nil {
		return nil, err
	}
	if err := e.paced(ctx, conn); err != nil {
		return nil, err
	}
	if err := room(ctx, 0); err != nil {
		return nil, err
	}
	if err := e.Sheets.WriteHeader(ctx, x.SpreadsheetID, *x.SheetID, tabCols, from, header[from:], len(header)); err != nil {
		return nil, e.sheetsErr(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE sheet_export SET header_columns = $2, header = $3, header_layout_at = $4 WHERE id = $1`,
		x.ID, len(header), header, l.Newest); err != nil {
		return nil, err
	}
	x.HeaderColumns, x.Header, x.HeaderLayoutAt = len(header), header, l.Newest
	e.hook(StepHeader)
	return l, nil
}

// firstChange is the first column of header that row 1 does not hold yet:
// written holds the labels of its first n cells, or is empty when they are
// not known (then all are written again).
func firstChange(header, written []string, n int) int {
	if len(written) != n {
		return 0
	}
	for i := range min(n, len(header)) {
		if header[i] != written[i] {
			return i
		}
	}
	return min(n, len(header))
}

// adopt finds or creates the export's tab, records its id and returns its
// width. A tab of someone else's is refused: row 1 must be the header (KEY
// first), and no rows may follow unless this export wrote them. A tab that
// holds none of the rows this export wrote — deleted (and made again), or
// emptied, before the export was connected again — gets every response
// again: the export starts over.
func (e *Exporter) adopt(ctx context.Context, conn querier, x *export) (int64, error) {
	if err := room(ctx, 0); err != nil {
		return 0, err
	}
	id, cols, found, err := e.Sheets.Tab(ctx, x.SpreadsheetID, x.Sheet)
	if err != nil {
		return 0, e.sheetsErr(err)
	}
	var top [][]any
	if found {
		if err := room(ctx, 0); err != nil {
			return 0, err
		}
		if top, err = e.Sheets.Read(ctx, x.SpreadsheetID, x.Sheet, "A1:C100"); err != nil {
			return 0, e.sheetsErr(err)
		}
	}
	if len(top) > 0 && (len(top[0]) == 0 || top[0][0] != Fixed[0]) {
		first := ""
		if len(top[0]) > 0 {
			first = fmt.Sprint(top[0][0])
		}
		return 0, &permanent{fmt.Sprintf("sheet %q already holds other data (A1 is %q, not %s): connect an empty or new sheet", x.Sheet, first, Fixed[0])}
	}
	if len(top) > 1 && x.RowsWritten == 0 && x.Pending == nil {
		return 0, &permanent{fmt.Sprintf("sheet %q already holds rows this export did not write: connect an empty or new sheet", x.Sheet)}
	}
	progress := x.RowsWritten > 0 || x.Pending != nil || x.HeaderColumns > 0
	if progress && (len(top) == 0 || (len(top) == 1 && x.RowsWritten > 0)) {
		if e.Log != nil {
			e.Log.WarnContext(ctx, "sheet export starts over: its tab holds none of its rows", "export_id", x.ID, "rows_written", x.RowsWritten)
		}
		if _, err := conn.Exec(ctx, `UPDATE sheet_export SET cursor_submitted_at = NULL, cursor_response_id = NULL, rows_written = 0,
			header_columns = 0, header = '{}', pending_submitted_at = NULL, pending_response_id = NULL, pending_rows = NULL, pending_at = NULL
			WHERE id = $1`, x.ID); err != nil {
			return 0, err
		}
		x.Cursor, x.RowsWritten, x.HeaderColumns, x.Header, x.Pending = Cursor{}, 0, 0, nil, nil
	}
	if !found {
		if err := room(ctx, 0); err != nil {
			return 0, err
		}
		if id, cols, err = e.Sheets.AddTab(ctx, x.SpreadsheetID, x.Sheet); err != nil {
			return 0, e.sheetsErr(err)
		}
	}
	if _, err := conn.Exec(ctx, `UPDATE sheet_export SET sheet_id = $2 WHERE id = $1`, x.ID, id); err != nil {
		return 0, err
	}
	x.SheetID = &id
	return cols, nil
}

// batch appends the next batch, returning how many rows; 0 when there is
// nothing new below the horizon.
func (e *Exporter) batch(ctx context.Context, conn querier, x *export, l *Layout) (int, error) {
	if err := room(ctx, e.Pace.maxWait()); err != nil {
		return 0, err
	}
	horizon, err := e.horizon(ctx, conn)
	if err != nil {
		return 0, err
	}
	page, err := readPage(ctx, conn, x.FormID, x.Cursor, &horizon, e.BatchRows)
	if err != nil {
		return 0, err
	}
	if len(page) == 0 {
		// Responses above the horizon are settling (or wait for an open
		// transaction): come back for them instead of at the next sweep.
		var newer bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM response WHERE form_id = $1 AND (created_at, id) > ($2, $3))`,
			x.FormID, x.Cursor.SubmittedAt, x.Cursor.ID).Scan(&newer); err != nil || !newer {
			return 0, err
		}
		return 0, waitErr(max(e.Settle, time.Second))
	}
	rows := make([][]any, 0, len(page))
	size := 0
	for i := range page {
		row, err := l.Row(&page[i], RowOptions{Numbers: true, MaxCell: MaxCellChars})
		if err != nil {
			return 0, err
		}
		n := rowSize(row)
		if len(rows) > 0 && e.BatchBytes > 0 && size+n > e.BatchBytes {
			break
		}
		rows, size = append(rows, row), size+n
	}
	last := page[len(rows)-1].Cursor()
	if err := e.paced(ctx, conn); err != nil {
		return 0, err
	}
	if err := room(ctx, 0); err != nil {
		return 0, err // the pacer slept longer than it should have
	}
	// The first rows of an export (or of a tab that starts over) were read
	// with every edit below the horizon: the edits cursor starts there, in
	// the same statement, so no edit made before is written again.
	var editsFrom *time.Time
	if x.Cursor.ID == uuid.Nil {
		editsFrom = &horizon
	}
	tag, err := conn.Exec(ctx, `UPDATE sheet_export SET pending_submitted_at = $2, pending_response_id = $3, pending_rows = $4,
		pending_at = $5,
		edits_response_id = CASE WHEN $6::timestamptz > coalesce(edits_edited_at, '-infinity') THEN $7 ELSE edits_response_id END,
		edits_edited_at = CASE WHEN $6::timestamptz > coalesce(edits_edited_at, '-infinity') THEN $6 ELSE edits_edited_at END
		WHERE id = $1 AND pending_response_id IS NULL`, x.ID, last.SubmittedAt, last.ID, len(rows), e.now(), editsFrom, uuid.Nil)
	if err != nil {
		return 0, err
	}
	if tag.RowsAffected() != 1 {
		return 0, fmt.Errorf("sheet export %s: a pending batch appeared under the lock", x.ID)
	}
	x.Pending, x.PendingRows, x.PendingAt = &last, len(rows), e.now()
	if editsFrom != nil && (x.EditsAt == nil || editsFrom.After(*x.EditsAt)) {
		x.EditsAt, x.EditsID = editsFrom, uuid.Nil
	}
	e.hook(StepPending)
	landed, err := e.Sheets.Append(ctx, x.SpreadsheetID, x.Sheet, rows)
	e.Metrics.call("values.append", err)
	e.hook(StepAppended)
	// What Google answered is recorded even if the job's time ran out
	// while it answered.
	gctx, cancel := queue.WithGrace(ctx)
	defer cancel()
	if err != nil {
		var u interface{ Unknown() bool }
		if errors.As(err, &u) && !u.Unknown() {
			// Refused (429, 4xx): nothing landed, nothing to check.
			if _, cerr := conn.Exec(gctx, `UPDATE sheet_export SET pending_submitted_at = NULL, pending_response_id = NULL,
				pending_rows = NULL, pending_at = NULL WHERE id = $1`, x.ID); cerr != nil {
				return 0, cerr
			}
			x.Pending = nil
		}
		// Otherwise the batch stays pending: the next run reads the sheet
		// back before sending anything.
		return 0, e.sheetsErr(err)
	}
	if err := e.commit(gctx, conn, x, last, len(rows)); err != nil {
		return 0, err
	}
	e.Metrics.rows(len(rows))
	e.hook(StepCommitted)
	if firstRow(landed) == 1 {
		// No header above them: the tab was emptied, or deleted and made
		// again, since the last run, and the rows before are not in it.
		return len(rows), &permanent{fmt.Sprintf("sheet %q lost its header and earlier rows (emptied, or deleted and made again): "+
			"empty it (or delete it) and connect again to write every response into it", x.Sheet)}
	}
	return len(rows), nil
}

// EditBatch caps the edited responses one run writes over their rows.
const EditBatch = 500

// rewrite writes the current values of responses edited (ODK deprecatedID)
// after their rows reached the sheet over those rows, found by KEY in
// column A; a row someone deleted is skipped, and so is an edit of a
// response not in the sheet yet (it is appended as it now is). Edits are
// taken in order of edited_at below the horizon, as appends are (an edit
// is stamped with its transaction's start). more says edits are left for
// another run.
//
// A rewrite that fails transiently does not stop the appends: it is left
// for the next run (the sweep queues the export while its edits cursor is
// behind), and one of unknown outcome holds off every rewrite of the export
// for UnknownWait, as it may still land and would then put back older
// values over newer ones. One Google refuses (403: no longer an editor, a
// protected range) stops the export as a refused append does, the edits
// cursor kept.
func (e *Exporter) rewrite(ctx context.Context, conn querier, x *export, l *Layout) (n int, more bool, err error) {
	if x.Cursor.ID == uuid.Nil {
		return 0, false, nil // nothing in the sheet yet
	}
	if x.RewriteUnknownAt != nil && e.now().Before(x.RewriteUnknownAt.Add(e.UnknownWait)) {
		return 0, false, nil
	}
	if err := room(ctx, e.Pace.maxWait()); err != nil {
		return 0, false, err
	}
	horizon, err := e.horizon(ctx, conn)
	if err != nil {
		return 0, false, err
	}
	type edit struct {
		id      uuid.UUID
		at      time.Time
		inSheet bool
	}
	found, err := conn.Query(ctx, `SELECT id, edited_at, (created_at, id) <= ($5, $6) FROM response
		WHERE form_id = $1 AND edited_at IS NOT NULL AND (edited_at, id) > (coalesce($2::timestamptz, '-infinity'), $3)
		  AND edited_at < $4
		ORDER BY edited_at, id LIMIT $7`, x.FormID, x.EditsAt, x.EditsID, horizon, x.Cursor.SubmittedAt, x.Cursor.ID, EditBatch)
	if err != nil {
		return 0, false, err
	}
	edits, err := pgx.CollectRows(found, func(row pgx.CollectableRow) (edit, error) {
		var ed edit
		return ed, row.Scan(&ed.id, &ed.at, &ed.inSheet)
	})
	if err != nil || len(edits) == 0 {
		return 0, false, err
	}
	var ids []uuid.UUID
	for _, ed := range edits {
		if ed.inSheet {
			ids = append(ids, ed.id)
		}
	}
	byID := map[uuid.UUID]*Response{}
	var keys [][]any
	if len(ids) > 0 {
		responses, err := readByID(ctx, conn, ids)
		if err != nil {
			return 0, false, err
		}
		for i := range responses {
			byID[responses[i].ID] = &responses[i]
		}
		// The write slot first, then the read: the rows found are written
		// at once (someone sorting the tab in between would move them).
		if err := e.paced(ctx, conn); err != nil {
			return 0, false, err
		}
		if err := room(ctx, 0); err != nil {
			return 0, false, err
		}
		keys, err = e.Sheets.Read(ctx, x.SpreadsheetID, x.Sheet, "A:A")
		e.Metrics.call("values.get", err)
		if err != nil {
			return 0, false, e.rewriteErr(ctx, x, "read column A", err)
		}
	}
	rowsOf := map[string][]int{}
	for i, cells := range keys {
		if len(cells) > 0 {
			if key, ok := cells[0].(string); ok {
				rowsOf[key] = append(rowsOf[key], i+1)
			}
		}
	}
	updates := map[int][]any{}
	taken, size := 0, 0
	for _, ed := range edits {
		r := byID[ed.id]
		if r == nil {
			taken++ // not in the sheet yet, or deleted since: nothing to write
			continue
		}
		row, err := l.Row(r, RowOptions{Numbers: true, MaxCell: MaxCellChars})
		if err != nil {
			return 0, false, err
		}
		at := rowsOf[r.ID.String()]
		sz := rowSize(row) * len(at)
		if len(updates) > 0 && e.BatchBytes > 0 && size+sz > e.BatchBytes {
			break
		}
		size += sz
		for _, n := range at {
			updates[n] = row
		}
		taken++
	}
	if len(updates) > 0 {
		err := e.Sheets.Rewrite(ctx, x.SpreadsheetID, x.Sheet, updates)
		e.Metrics.call("values.batchUpdate", err)
		var u interface{ Unknown() bool }
		switch {
		case err != nil && errors.As(err, &u) && u.Unknown():
			now := e.now()
			gctx, cancel := queue.WithGrace(ctx)
			defer cancel()
			if _, uerr := conn.Exec(gctx, `UPDATE sheet_export SET rewrite_unknown_at = $2 WHERE id = $1`, x.ID, now); uerr != nil {
				return 0, false, uerr
			}
			x.RewriteUnknownAt = &now
			return 0, false, e.rewriteErr(ctx, x, "rewrite edited rows (outcome unknown)", err)
		case err != nil:
			return 0, false, e.rewriteErr(ctx, x, "rewrite edited rows", err)
		}
	}
	last := edits[taken-1]
	gctx, cancel := queue.WithGrace(ctx)
	defer cancel()
	if _, err := conn.Exec(gctx, `UPDATE sheet_export SET edits_edited_at = $2, edits_response_id = $3, rewrite_unknown_at = NULL WHERE id = $1`,
		x.ID, last.at, last.id); err != nil {
		return 0, false, err
	}
	x.EditsAt, x.EditsID, x.RewriteUnknownAt = &last.at, last.id, nil
	e.hook(StepRewritten)
	return len(updates), taken < len(edits) || len(edits) == EditBatch, nil
}

// rewriteErr is what a failed call of a rewrite does to the run: nothing
// (logged; the appends go on, and the sweep brings the export back) when
// it may go away by itself, and what a refused append does otherwise — the
// export stops with the reason in last_error, its edits cursor kept, and
// connecting again tries again.
func (e *Exporter) rewriteErr(ctx context.Context, x *export, what string, err error) error {
	var t interface{ Transient() bool }
	if !errors.As(err, &t) || !t.Transient() {
		return e.sheetsErr(err)
	}
	if e.Log != nil {
		e.Log.WarnContext(ctx, "sheet export: "+what+": will try again", "export_id", x.ID, "err", err)
	}
	return errRewriteLater
}

// errRewriteLater ends a rewrite that failed transiently; the run goes on
// with the appends.
var errRewriteLater = errors.New("rewrite later")

// firstRow is the row number where an A1 range ("'Responses'!A5:L9")
// starts; 0 when it names none.
func firstRow(a1 string) int {
	cells := a1[strings.LastIndexByte(a1, '!')+1:]
	cells, _, _ = strings.Cut(cells, ":")
	n, err := strconv.Atoi(strings.TrimLeft(cells, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
	if err != nil {
		return 0
	}
	return n
}

// commit moves the cursor past n more rows and clears the pending batch.
func (e *Exporter) commit(ctx context.Context, conn querier, x *export, to Cursor, n int) error {
	if _, err := conn.Exec(ctx, `UPDATE sheet_export SET cursor_submitted_at = $2, cursor_response_id = $3,
		rows_written = rows_written + $4, pending_submitted_at = NULL, pending_response_id = NULL, pending_rows = NULL,
		pending_at = NULL, last_error = NULL, last_error_at = NULL WHERE id = $1`, x.ID, to.SubmittedAt, to.ID, n); err != nil {
		return err
	}
	x.Cursor, x.RowsWritten, x.Pending = to, x.RowsWritten+int64(n), nil
	return nil
}

// resolve settles a pending batch from the sheet itself: it reads column A
// from the last row known written on (the whole column if that row is not
// where it should be — someone edited the sheet) and counts the batch's
// rows that are there. Rows are appended in order, so the batch landed up
// to its last response present; the cursor moves there and the rest will
// be sent again.
func (e *Exporter) resolve(ctx context.Context, conn querier, x *export) (int, error) {
	anchor := Fixed[0]
	if x.RowsWritten > 0 {
		anchor = x.Cursor.ID.String()
	}
	if err := room(ctx, 0); err != nil {
		return 0, err
	}
	vals, err := e.Sheets.Read(ctx, x.SpreadsheetID, x.Sheet, fmt.Sprintf("A%d:A", 1+x.RowsWritten))
	e.Metrics.call("values.get", err)
	var t interface{ Transient() bool }
	if err != nil && errors.As(err, &t) && t.Transient() {
		return 0, err
	}
	// A refused read (rows deleted: the tab is now shorter than the rows
	// written, and Google refuses a range starting below its grid) reads
	// the whole column, as a tail that moved does.
	if err != nil || len(vals) == 0 || len(vals[0]) == 0 || vals[0][0] != anchor {
		if err := room(ctx, 0); err != nil {
			return 0, err
		}
		if vals, err = e.Sheets.Read(ctx, x.SpreadsheetID, x.Sheet, "A:A"); err != nil {
			return 0, e.sheetsErr(err)
		}
	}
	there := make(map[string]bool, len(vals))
	for _, v := range vals {
		if len(v) > 0 {
			if s, ok := v[0].(string); ok {
				there[s] = true
			}
		}
	}
	rows, err := conn.Query(ctx, `SELECT id, created_at FROM response
		WHERE form_id = $1 AND (created_at, id) > ($2, $3) AND (created_at, id) <= ($4, $5)
		ORDER BY created_at, id`, x.FormID, x.Cursor.SubmittedAt, x.Cursor.ID, x.Pending.SubmittedAt, x.Pending.ID)
	if err != nil {
		return 0, err
	}
	batch, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Cursor, error) {
		var c Cursor
		err := r.Scan(&c.ID, &c.SubmittedAt)
		return c, err
	})
	if err != nil {
		return 0, err
	}
	landed := 0
	for i, c := range batch {
		if there[c.ID.String()] {
			landed = i + 1
		}
	}
	e.Metrics.resolved(landed > 0)
	if landed == 0 {
		_, err := conn.Exec(ctx, `UPDATE sheet_export SET pending_submitted_at = NULL, pending_response_id = NULL,
			pending_rows = NULL, pending_at = NULL WHERE id = $1`, x.ID)
		x.Pending = nil
		return 0, err
	}
	return landed, e.commit(ctx, conn, x, batch[landed-1], landed)
}

// horizon is the newest submitted_at a run may take: responses are stamped
// with their transaction's start time, so one still being written can
// commit with a time below responses already visible. Nothing at or after
// the start of the oldest open transaction that has written, or that waits
// for a lock (the forms pipeline locks the instanceID before it writes; a
// wait can outlast Settle), is taken, nor anything younger than Settle (a
// transaction that began but has not written yet). Reading other sessions'
// xact_start needs the database role to own them or have
// pg_read_all_stats; without it only Settle protects.
func (e *Exporter) horizon(ctx context.Context, q querier) (time.Time, error) {
	var h time.Time
	err := q.QueryRow(ctx, `SELECT least(clock_timestamp() - make_interval(secs => $1),
		(SELECT min(xact_start) FROM pg_stat_activity
		 WHERE datname = current_database() AND backend_type = 'client backend'
		   AND (backend_xid IS NOT NULL OR wait_event_type = 'Lock') AND pid <> pg_backend_pid()))`, e.Settle.Seconds()).Scan(&h)
	return h, err
}

// paced waits for the next write slot, or asks to be run later when it is
// far off.
func (e *Exporter) paced(ctx context.Context, q querier) error {
	if e.Pace == nil {
		return nil
	}
	return e.Pace.Wait(ctx, q)
}

// sheetsErr turns a Sheets failure into a permanent one (the export is
// disabled) unless it may go away by itself.
func (e *Exporter) sheetsErr(err error) error {
	var t interface{ Transient() bool }
	if errors.As(err, &t) && t.Transient() {
		return err
	}
	return &permanent{err.Error()}
}

func rowSize(row []any) int {
	n := 2
	for _, v := range row {
		switch c := v.(type) {
		case string:
			n += len(c) + 3 + strings.Count(c, "\"") + strings.Count(c, "\n")
		default:
			n += 24
		}
	}
	return n
}

func loadExport(ctx context.Context, q querier, id uuid.UUID) (*export, error) {
	x := &export{ID: id}
	var (
		curAt, penAt, pendingAt *time.Time
		curID, penID            *uuid.UUID
		penRows                 *int
	)
	var editsID *uuid.UUID
	err := q.QueryRow(ctx, `SELECT form_id, spreadsheet_id, sheet_name, enabled, sheet_id, columns, header_columns, header, header_layout_at,
			cursor_submitted_at, cursor_response_id, pending_submitted_at, pending_response_id, pending_rows, pending_at, rows_written,
			edits_edited_at, edits_response_id, rewrite_unknown_at
		FROM sheet_export WHERE id = $1`, id).Scan(&x.FormID, &x.SpreadsheetID, &x.Sheet, &x.Enabled, &x.SheetID, &x.Columns,
		&x.HeaderColumns, &x.Header, &x.HeaderLayoutAt, &curAt, &curID, &penAt, &penID, &penRows, &pendingAt, &x.RowsWritten,
		&x.EditsAt, &editsID, &x.RewriteUnknownAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return &export{ID: id}, nil // deleted: nothing to do (Enabled false)
	}
	if err != nil {
		return nil, err
	}
	if curID != nil {
		x.Cursor = Cursor{SubmittedAt: *curAt, ID: *curID}
	}
	if editsID != nil {
		x.EditsID = *editsID
	}
	if penID != nil {
		x.Pending, x.PendingRows, x.PendingAt = &Cursor{SubmittedAt: *penAt, ID: *penID}, *penRows, *pendingAt
	}
	return x, nil
}
