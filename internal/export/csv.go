package export

import (
	"context"
	"encoding/csv"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/fault"
)

// Neutralise applies OWASP's CSV-injection rule to one cell: a cell that
// starts with = + - @, a tab or a carriage return (or with spaces or line
// breaks before = + - @, which some programs skip) gets a leading
// apostrophe, so Excel, LibreOffice and Google Sheets show it as text
// instead of running it as a formula. Negative numbers become text too:
// the rule cannot tell -1 from -1+cmd|'/C calc'!A0.
func Neutralise(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	case ' ', '\n':
		if t := strings.TrimLeft(s, " \n"); t != "" && strings.ContainsRune("=+-@\t\r", rune(t[0])) {
			return "'" + s
		}
	}
	return s
}

// CSVOptions say what a CSV export holds.
type CSVOptions struct {
	// Since, if set, keeps responses submitted at or after it.
	Since *time.Time
	// ChoiceLabels writes choices by label instead of name.
	ChoiceLabels bool
	// PageSize is how many responses are read at a time (memory is
	// proportional to it, never to the form's size); 0 means 1,000.
	PageSize int
}

// bom makes Excel read the file as UTF-8 (Devanagari would show as mojibake
// without it).
const bom = "\uFEFF"

// WriteCSV writes every response of formID to w as CSV: UTF-8 with a BOM,
// CRLF line ends, a header row (KEY, SubmissionDate, FormVersion, then the
// questions' labels), one row per response in submission order, and every
// cell — header included — neutralised against formula injection. It reads
// a page of responses at a time inside one read-only, repeatable-read
// transaction: the file is one consistent snapshot and memory stays the
// same however many responses there are. It returns how many rows it wrote.
// Nothing is written before the form is known to exist.
func WriteCSV(ctx context.Context, pool *pgxpool.Pool, langs *Languages, w io.Writer, formID string, o CSVOptions) (int, error) {
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	n := 0
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM form WHERE id = $1 AND purpose = 'DATA_COLLECTION')`, formID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fault.New(fault.NotFound, "", "form %q is not a registered data-collection form", formID)
		}
		l, err := LoadLayout(ctx, tx, langs, formID, nil)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, bom); err != nil {
			return err
		}
		cw := csv.NewWriter(w)
		cw.UseCRLF = true
		if err := cw.Write(l.Header(Neutralise)); err != nil {
			return err
		}
		var c Cursor
		if o.Since != nil {
			c.SubmittedAt = *o.Since // (since, nil id) comes before every response submitted at since
		}
		record := make([]string, len(Fixed)+len(l.Columns))
		for {
			page, err := readPage(ctx, tx, formID, c, nil, o.PageSize)
			if err != nil {
				return err
			}
			for i := range page {
				row, err := l.Row(&page[i], RowOptions{ChoiceLabels: o.ChoiceLabels})
				if err != nil {
					return err
				}
				for j, v := range row {
					record[j] = Neutralise(v.(string))
				}
				if err := cw.Write(record); err != nil {
					return err
				}
				n++
			}
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
			if len(page) < o.PageSize {
				return nil
			}
			c = page[len(page)-1].Cursor()
		}
	})
	return n, err
}
