package export

import (
	"bufio"
	"context"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/fault"
)

// Neutralise applies OWASP's CSV-injection rule to one cell: a cell that
// starts with = + - @, a tab or a carriage return gets a leading
// apostrophe, so Excel, LibreOffice and Google Sheets show it as text
// instead of running it as a formula. So does one where blanks or invisible
// characters (spaces of any kind, line breaks, zero-width characters, a
// BOM), which some programs skip, come before them, and one starting with
// their full-width forms (＝ ＋ － ＠), which some programs take for them.
// Negative numbers become text too: the rule cannot tell -1 from
// -1+cmd|'/C calc'!A0.
func Neutralise(s string) string {
	for _, r := range s {
		switch {
		case strings.ContainsRune(formulaStart, r):
			return "'" + s
		case unicode.IsSpace(r) || unicode.Is(unicode.Cf, r):
			continue
		}
		return s
	}
	return s
}

// formulaStart are the characters a formula starts with (OWASP), and their
// full-width forms.
const formulaStart = "=+-@\t\r＝＋－＠"

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
// CRLF line ends, every field quoted, a header row (KEY, SubmissionDate, FormVersion, then the
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
		cw := bufio.NewWriter(w)
		cw.WriteString(bom) // bufio's errors are kept and returned by Flush
		writeRecord(cw, l.Header(Neutralise))
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
				writeRecord(cw, record)
				n++
			}
			if err := cw.Flush(); err != nil {
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

// writeRecord writes one CSV record (RFC 4180, CRLF) with every field in
// double quotes, as OWASP advises: encoding/csv quotes only the fields that
// hold a comma, and a program that splits lines on another separator (Excel
// where the list separator is ';', as in most of Europe, or LibreOffice with
// ';' ticked) would cut an unquoted "Asha;=1+2" into a cell that starts a
// formula. Errors stay in w until it is flushed.
func writeRecord(w *bufio.Writer, fields []string) {
	for i, f := range fields {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteByte('"')
		for {
			j := strings.IndexByte(f, '"')
			if j < 0 {
				break
			}
			w.WriteString(f[:j+1])
			w.WriteByte('"')
			f = f[j+1:]
		}
		w.WriteString(f)
		w.WriteByte('"')
	}
	w.WriteString("\r\n")
}
