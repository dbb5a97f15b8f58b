package export

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// Cursor is a position in a form's responses, which are ordered by
// (submitted_at, id): responses after it come next. The zero Cursor is
// before every response.
type Cursor struct {
	SubmittedAt time.Time
	ID          uuid.UUID
}

// Response is one response with its answers, as read for export.
type Response struct {
	ID          uuid.UUID
	SubmittedAt time.Time
	Version     string
	answers     []answer
}

type answer struct {
	qid    [16]byte
	index  string // repeat position, outermost first: "2.1"; "" outside repeats
	n      int16  // which selected choice of a multiple choice
	text   string
	number pgtype.Text
}

// Cursor is the position just after r.
func (r *Response) Cursor() Cursor { return Cursor{SubmittedAt: r.SubmittedAt, ID: r.ID} }

// readPage reads, in order, up to limit responses of formID after c and
// submitted before before (no bound when nil). submitted_at is
// response.created_at: when shala stored the response.
func readPage(ctx context.Context, q querier, formID string, c Cursor, before *time.Time, limit int) ([]Response, error) {
	return readResponses(ctx, q, `r.form_id = $1 AND (r.created_at, r.id) > ($2, $3) AND ($4::timestamptz IS NULL OR r.created_at < $4)
		ORDER BY r.created_at, r.id LIMIT $5`, formID, c.SubmittedAt, c.ID, before, limit)
}

// readByID reads the responses ids, with their answers, in no order.
func readByID(ctx context.Context, q querier, ids []uuid.UUID) ([]Response, error) {
	return readResponses(ctx, q, `r.id = ANY ($1)`, ids)
}

// readResponses reads the responses where holds (a WHERE clause on
// response r, with its ORDER BY and LIMIT) with their answers.
func readResponses(ctx context.Context, q querier, where string, args ...any) ([]Response, error) {
	rows, err := q.Query(ctx, `
		SELECT r.id, r.created_at, r.form_version, a.q, a.i, a.n, a.t, a.num
		FROM response r
		CROSS JOIN LATERAL (
		  SELECT coalesce(array_agg(question_id), '{}') q, coalesce(array_agg(array_to_string(repeat_index, '.')), '{}') i,
		         coalesce(array_agg(n), '{}') n, coalesce(array_agg(value_text), '{}') t, coalesce(array_agg(value_number::text), '{}') num
		  FROM answer WHERE response_id = r.id) a
		WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Response
	var (
		qids []pgtype.UUID
		idx  []string
		ns   []int16
		txt  []string
		nums []pgtype.Text
	)
	for rows.Next() {
		var r Response
		if err := rows.Scan(&r.ID, &r.SubmittedAt, &r.Version, &qids, &idx, &ns, &txt, &nums); err != nil {
			return nil, err
		}
		r.answers = make([]answer, len(qids))
		for i := range qids {
			r.answers[i] = answer{qid: qids[i].Bytes, index: idx[i], n: ns[i], text: txt[i], number: nums[i]}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RowOptions say how values are written.
type RowOptions struct {
	// ChoiceLabels writes choices by their label in the form's default
	// language instead of their name (value).
	ChoiceLabels bool
	// Numbers makes answers to int and decimal questions (outside repeats)
	// json.Number cells instead of text, so Sheets stores them as numbers.
	Numbers bool
	// MaxCell cuts longer text cells (in UTF-16 code units, as Google
	// counts) with a marker; 0 = no limit. Google refuses a whole append with one cell over 50,000.
	MaxCell int
}

// ErrUnknownQuestion means a response answers a question the layout does
// not know: a version registered after the layout was read. Read the
// layout again.
var ErrUnknownQuestion = errors.New("response answers a question the layout does not have")

// truncated ends a cell cut to MaxCell.
const truncated = " …[truncated]"

// Row is r as a row: the fixed columns, then one cell per question column.
// A multiple choice is its choices joined by a space (names, as ODK writes
// them) or "; " (labels). A question inside a repeat is one cell listing
// every instance's value on its own line, prefixed by its position:
// "1: Asha\n2: Ravi" (nested repeats: "2.1: …"), so the response stays one
// row and the cells of one repeat line up by position.
func (l *Layout) Row(r *Response, o RowOptions) ([]any, error) {
	row := make([]any, len(Fixed)+len(l.Columns))
	row[0] = r.ID.String()
	row[1] = r.SubmittedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	row[2] = r.Version
	for i := len(Fixed); i < len(row); i++ {
		row[i] = ""
	}
	type keyed struct {
		col   int
		index []int
		a     *answer
	}
	ks := make([]keyed, len(r.answers))
	for i := range r.answers {
		a := &r.answers[i]
		col, ok := l.byQID[a.qid]
		if !ok {
			return nil, fmt.Errorf("response %s: %w", r.ID, ErrUnknownQuestion)
		}
		ks[i] = keyed{col: col, index: parseIndex(a.index), a: a}
	}
	slices.SortFunc(ks, func(x, y keyed) int {
		return cmp.Or(cmp.Compare(x.col, y.col), slices.Compare(x.index, y.index), cmp.Compare(x.a.n, y.a.n))
	})
	sep := " "
	if o.ChoiceLabels {
		sep = "; "
	}
	var b strings.Builder
	for i := 0; i < len(ks); {
		col := ks[i].col
		repeat := l.Columns[col].Repeat
		b.Reset()
		j := i
		for ; j < len(ks) && ks[j].col == col; j++ {
			k := ks[j]
			sameInstance := j > i && slices.Equal(ks[j-1].index, k.index)
			switch {
			case sameInstance:
				b.WriteString(sep)
			case repeat:
				if j > i {
					b.WriteByte('\n')
				}
				b.WriteString(k.a.index)
				b.WriteString(": ")
			}
			b.WriteString(l.value(k.a, o))
		}
		cell := b.String()
		switch {
		case o.Numbers && !repeat && j == i+1 && l.numeric[ks[i].a.qid] && ks[i].a.number.Valid && finite(ks[i].a.number.String):
			row[len(Fixed)+col] = json.Number(ks[i].a.number.String)
		case o.MaxCell > 0 && units(cell) > o.MaxCell:
			row[len(Fixed)+col] = cut(cell, o.MaxCell-units(truncated)) + truncated
		default:
			row[len(Fixed)+col] = cell
		}
		i = j
	}
	return row, nil
}

// finite reports whether numeric text is a number JSON can carry and a
// float64 can hold: numeric also has NaN and ±Infinity, which would make
// the whole append fail to encode, every time.
func finite(s string) bool {
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

func (l *Layout) value(a *answer, o RowOptions) string {
	if o.ChoiceLabels {
		if lbl, ok := l.choices[a.qid][a.text]; ok {
			return lbl
		}
	}
	return a.text
}

// units is the length of s in UTF-16 code units, as Google counts a cell's
// characters (a character outside the BMP, such as an emoji, is two).
func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// cut returns the longest prefix of s of at most n UTF-16 code units.
func cut(s string, n int) string {
	used := 0
	for i, r := range s {
		if used+utf16.RuneLen(r) > n {
			return s[:i]
		}
		used += utf16.RuneLen(r)
	}
	return s
}

func parseIndex(s string) []int {
	if s == "" {
		return nil
	}
	parts := strings.Split(s, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil { // array_to_string of an int[] writes digits only
			panic(fmt.Sprintf("repeat index %q: %v", s, err))
		}
		out[i] = n
	}
	return out
}
