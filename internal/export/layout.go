// Package export turns a form's responses into rows — one row per
// response, one column per question across all the form's versions — and
// takes them out of shala: appended to a Google Sheet with no duplicate and
// no missing row whatever fails (Exporter), or streamed as a CSV file that
// no spreadsheet program executes (WriteCSV).
//
// Repeats are summarised in one cell per question (see Layout.Row), the same
// for Sheets and CSV, so a response stays one row.
package export

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/shala-edu/shala/internal/xform"
)

// Fixed are the columns every export starts with: the response id (the
// Sheets exporter recognises its rows by it), when it was submitted, and the
// form version it answers.
var Fixed = []string{"KEY", "SubmissionDate", "FormVersion"}

// querier is what store code runs statements on: a pool, a connection or a
// transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Column is one question column.
type Column struct {
	Name   string // form_question.name: the column's identity across versions
	Label  string // label in its form version's default language (the latest version that has it)
	Type   string
	Repeat bool // inside a repeat group: the cell summarises every instance
}

// Layout is how a form's responses become rows.
type Layout struct {
	FormID  string
	Columns []Column
	// Newest is when the newest version read was registered (nil: none).
	Newest  *time.Time
	index   map[string]int                 // name → column
	byQID   map[[16]byte]int               // question id → column
	choices map[[16]byte]map[string]string // question id → value → label
	numeric map[[16]byte]bool              // question id → int or decimal
}

// Languages caches each form version's default language; versions are
// immutable, so an entry never goes stale.
type Languages struct {
	mu sync.Mutex
	m  map[[2]string]string
}

// NewLanguages returns an empty cache.
func NewLanguages() *Languages { return &Languages{m: map[[2]string]string{}} }

// of returns the default language of every version of formID, and when
// the newest of those versions was registered (nil: none).
func (l *Languages) of(ctx context.Context, q querier, formID string) (map[string]string, *time.Time, error) {
	out := map[string]string{}
	rows, err := q.Query(ctx, `SELECT version, registered_at FROM form_version WHERE form_id = $1`, formID)
	if err != nil {
		return nil, nil, err
	}
	var versions []string
	var newest *time.Time
	var (
		version    string
		registered time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&version, &registered}, func() error {
		versions = append(versions, version)
		if newest == nil || registered.After(*newest) {
			t := registered
			newest = &t
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	var missing []string
	l.mu.Lock()
	for _, v := range versions {
		if lang, ok := l.m[[2]string{formID, v}]; ok {
			out[v] = lang
		} else {
			missing = append(missing, v)
		}
	}
	l.mu.Unlock()
	for _, v := range missing {
		var def string
		if err := q.QueryRow(ctx, `SELECT xform FROM form_version WHERE form_id = $1 AND version = $2`, formID, v).Scan(&def); err != nil {
			return nil, nil, err
		}
		f, err := xform.ParseDefinition([]byte(def))
		if err != nil {
			return nil, nil, fmt.Errorf("form %s version %s no longer parses: %w", formID, v, err)
		}
		l.mu.Lock()
		l.m[[2]string{formID, v}] = f.DefaultLanguage
		l.mu.Unlock()
		out[v] = f.DefaultLanguage
	}
	return out, newest, nil
}

// LoadLayout reads the columns of formID: after order (the columns a sheet
// already has, kept in place), every other question name in order of first
// appearance — versions by registration, questions by position — so a
// later version adds columns at the end and never reorders.
func LoadLayout(ctx context.Context, q querier, langs *Languages, formID string, order []string) (*Layout, error) {
	l := &Layout{FormID: formID, index: map[string]int{}, byQID: map[[16]byte]int{},
		choices: map[[16]byte]map[string]string{}, numeric: map[[16]byte]bool{}}
	// Newest counts the versions whose languages are known: one registered
	// while the questions are read is not counted, and makes the export
	// due once more.
	byVersion, newest, err := langs.of(ctx, q, formID)
	if err != nil {
		return nil, err
	}
	l.Newest = newest
	for _, name := range order {
		l.index[name] = len(l.Columns)
		l.Columns = append(l.Columns, Column{Name: name, Label: name})
	}
	rows, err := q.Query(ctx, `SELECT q.id, q.version, q.name, q.type, q.repeat IS NOT NULL, q.labels
		FROM form_question q JOIN form_version v ON v.form_id = q.form_id AND v.version = q.version
		WHERE q.form_id = $1 ORDER BY v.registered_at, v.version, q.position`, formID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id            pgtype.UUID
			version, name string
			typ           string
			repeat        bool
			labels        map[string]string
		)
		if err := rows.Scan(&id, &version, &name, &typ, &repeat, &labels); err != nil {
			return nil, err
		}
		i, ok := l.index[name]
		if !ok {
			i = len(l.Columns)
			l.index[name] = i
			l.Columns = append(l.Columns, Column{Name: name})
		}
		// Later versions win: the label and type people see now.
		l.Columns[i].Label = label(labels, byVersion[version], name)
		l.Columns[i].Type = typ
		l.Columns[i].Repeat = repeat
		l.byQID[id.Bytes] = i
		l.numeric[id.Bytes] = typ == "int" || typ == "decimal"
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `SELECT c.question_id, q.version, c.value, c.labels
		FROM form_choice c JOIN form_question q ON q.id = c.question_id WHERE q.form_id = $1`, formID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			qid            pgtype.UUID
			version, value string
			labels         map[string]string
		)
		if err := rows.Scan(&qid, &version, &value, &labels); err != nil {
			return nil, err
		}
		if l.choices[qid.Bytes] == nil {
			l.choices[qid.Bytes] = map[string]string{}
		}
		l.choices[qid.Bytes][value] = label(labels, byVersion[version], value)
	}
	return l, rows.Err()
}

// label picks the label in lang, else the untranslated one, else the first
// language's (by name), else fallback.
func label(labels map[string]string, lang, fallback string) string {
	if l := labels[lang]; l != "" {
		return l
	}
	if l := labels["default"]; l != "" {
		return l
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if labels[k] != "" {
			return labels[k]
		}
	}
	return fallback
}

// Names are the question columns' names, in order.
func (l *Layout) Names() []string {
	out := make([]string, len(l.Columns))
	for i, c := range l.Columns {
		out[i] = c.Name
	}
	return out
}

// Header is the header row: the fixed columns, then each question's label.
// Labels are made unique (a repeated label gets its name in brackets, then a
// number), after clean has been applied to each, so that no two columns of
// a file end up with the same title.
func (l *Layout) Header(clean func(string) string) []string {
	out := make([]string, 0, len(Fixed)+len(l.Columns))
	seen := map[string]bool{}
	add := func(h, name string) {
		h = clean(h)
		if seen[h] && name != "" {
			h = clean(h + " (" + name + ")")
		}
		base := h
		for n := 2; seen[h]; n++ {
			h = fmt.Sprintf("%s (%d)", base, n)
		}
		seen[h] = true
		out = append(out, h)
	}
	for _, f := range Fixed {
		add(f, "")
	}
	for _, c := range l.Columns {
		add(c.Label, c.Name)
	}
	return out
}
