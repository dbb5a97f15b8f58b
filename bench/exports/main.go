// Command exports benchmarks taking responses out of shala, on a durable
// local cluster, with references measured in the same run:
//
//   - Sheets: a backlog of -sheets responses (11 answers each, a repeat
//     among them) appended by the exporter to the local Sheets API server
//     (internal/sheets/sheetstest) through the official client, unpaced;
//     reference: the same client appending the same number of prebuilt rows
//     in the same batch size, no database. It reports rows/s, the calls
//     used, and what Google's quota (SHALA_SHEETS_WRITES_PER_MINUTE, 50)
//     makes of them.
//
//   - CSV: -csv responses streamed through GET /exports/{formId}.csv (the
//     real handler, a signed link) to a client that discards the body;
//     reference: COPY of the same responses' answers (response id and
//     answer columns, no pivot) to a discarding reader. It reports rows/s,
//     MB/s and the process's peak RSS during the export (target < 64 MiB).
//
//     go run ./bench/exports [-sheets 100000] [-csv 1000000]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/bench/benchdb"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/sheets/sheetstest"
)

const (
	formID = "village_survey"
	book   = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/exports:", err)
		os.Exit(1)
	}
}

func run() error {
	nSheets := flag.Int("sheets", 100_000, "responses in the Sheets backlog")
	nCSV := flag.Int("csv", 1_000_000, "responses in the CSV export")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the CSV export to this file")
	flag.Parse()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	pool, cleanup, err := benchdb.Open(ctx, 8)
	if err != nil {
		return err
	}
	defer cleanup()
	// shala as serve builds it (internal/app), its Sheets client pointed at
	// the local Sheets API server, unpaced.
	srv, stop, err := sheetstest.Start()
	if err != nil {
		return err
	}
	srv.AddSpreadsheet(book)
	a, closeApp, err := benchdb.NewApp(ctx, pool, map[string]string{
		"SHALA_SHEETS_URL":               srv.URL,
		"SHALA_SHEETS_CREDENTIALS":       string(srv.CredentialsJSON()),
		"SHALA_SHEETS_WRITES_PER_MINUTE": "0",
		"SHALA_EXPORT_LINK_KEY":          "bench-link-key-of-at-least-32-characters",
		"SHALA_PUBLIC_URL":               "http://bench",
	}, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeApp(); err != nil {
			fmt.Fprintln(os.Stderr, "close:", err)
		}
	}()
	def, err := os.ReadFile("internal/export/testdata/survey_v1.xml")
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	if _, err := forms.NewCatalog(pool).Register(ctx, def, forms.DataCollection, "bench"); err != nil {
		return err
	}
	start := time.Now()
	if err := fill(ctx, pool, 0, *nSheets); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "filled %d responses in %s\n", *nSheets, time.Since(start).Round(time.Millisecond))

	sheetsLine, err := benchSheets(ctx, pool, a, srv, *nSheets)
	// The local Sheets server keeps every row it was sent in memory: stop
	// it before the CSV export, whose memory is measured.
	stop()
	if err != nil {
		return err
	}

	start = time.Now()
	if err := fill(ctx, pool, *nSheets, *nCSV); err != nil {
		return err
	}
	for _, t := range []string{"response", "answer", "form_submission"} {
		if _, err := pool.Exec(ctx, `VACUUM ANALYZE `+t); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "filled %d responses in %s\n", *nCSV, time.Since(start).Round(time.Millisecond))
	csvLine, err := benchCSV(ctx, pool, a, *nCSV, *cpuProfile)
	if err != nil {
		return err
	}
	fmt.Printf("exports: %s | %s\n", sheetsLine, csvLine)
	return nil
}

// fill adds responses from..to-1, each with 11 answers (a multiple choice
// of two, a repeat of two members), stamped a millisecond apart.
func fill(ctx context.Context, pool *pgxpool.Pool, from, to int) error {
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// Bulk load on a connection of its own, closed afterwards: foreign-key
	// triggers off (the rows are consistent by construction), as pg_restore
	// does.
	conn := pc.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		return err
	}
	for lo := from; lo < to; lo += 100_000 {
		hi := min(to, lo+100_000) - 1
		if _, err := conn.Exec(ctx, `
			WITH s AS (
			  INSERT INTO form_submission (xml, instance_id, form_id, form_version, status)
			  SELECT '<data/>', 'uuid:bench-' || g, $3, '1', 'accepted' FROM generate_series($1::int, $2::int) g
			  RETURNING id, instance_id),
			r AS (
			  INSERT INTO response (form_id, form_version, submission_id, instance_id, created_at)
			  SELECT $3, '1', id, instance_id, timestamptz '2026-01-01' + substr(instance_id, 12)::int * interval '1 ms' FROM s
			  RETURNING id, substr(instance_id, 12)::int AS g)
			INSERT INTO answer (response_id, question_id, repeat_index, n, value_text, value_number)
			SELECT r.id, q.id, x.i, x.n, x.t, CASE WHEN q.type IN ('int', 'decimal') THEN x.t::numeric END
			FROM r CROSS JOIN LATERAL (VALUES
			  ('name', '{}'::int[], 0, 'उत्तरदाता ' || r.g),
			  ('age', '{}', 0, (18 + r.g % 60)::text),
			  ('income', '{}', 0, (5000 + r.g % 40000)::text || '.50'),
			  ('water', '{}', 0, CASE WHEN r.g % 3 = 0 THEN 'spring' ELSE 'tap' END),
			  ('sources', '{}', 0, 'farm'),
			  ('sources', '{}', 1, 'wages'),
			  ('formula', '{}', 0, CASE WHEN r.g % 10 = 0 THEN '=HYPERLINK("http://x")' ELSE 'ठीक है' END),
			  ('member_name', '{1}', 0, 'Asha ' || r.g),
			  ('member_age', '{1}', 0, (r.g % 90)::text),
			  ('member_name', '{2}', 0, 'Ravi ' || r.g),
			  ('member_age', '{2}', 0, (r.g % 70)::text)
			) x(name, i, n, t)
			JOIN form_question q ON q.form_id = $3 AND q.version = '1' AND q.name = x.name`, lo, hi, formID); err != nil {
			return err
		}
	}
	return nil
}

func benchSheets(ctx context.Context, pool *pgxpool.Pool, a *app.App, srv *sheetstest.Server, n int) (string, error) {
	client, exp := a.Sheets, a.Exporter
	// Reference: the client alone, appending prebuilt rows of the same
	// shape in the same batch size.
	exp.Settle, exp.Budget = 0, 0
	row := []any{"8a1f6b7e-2f7c-4f55-9d0e-3b5c1a2d4e6f", "2026-01-01T00:00:00.000Z", "1", "उत्तरदाता 12345", "41", "12345.50",
		"tap", "farm wages", "ठीक है", "1: Asha 12345\n2: Ravi 12345", "1: 15\n2: 45", ""}
	tab, cols, err := client.AddTab(ctx, book, "Reference")
	if err != nil {
		return "", err
	}
	if err := client.WriteHeader(ctx, book, tab, cols, 0, []string{"KEY"}, len(row)); err != nil {
		return "", err
	}
	batch := make([][]any, exp.BatchRows)
	for i := range batch {
		batch[i] = row
	}
	start := time.Now()
	for sent := 0; sent < n; sent += len(batch) {
		if _, err := client.Append(ctx, book, "Reference", batch[:min(len(batch), n-sent)]); err != nil {
			return "", err
		}
	}
	refRate := float64(n) / time.Since(start).Seconds()
	before := srv.Calls()

	c, err := export.Connect(ctx, pool, nil, formID, book, "Responses", "bench")
	if err != nil {
		return "", err
	}
	start = time.Now()
	rows := 0
	for {
		out, err := exp.Run(ctx, c.ID)
		if err != nil {
			return "", err
		}
		rows += out.Rows
		if out.Rows == 0 && !out.More {
			break
		}
	}
	elapsed := time.Since(start)
	if rows != n || len(srv.Rows(book, "Responses")) != n+1 {
		return "", fmt.Errorf("sheet has %d rows, want %d and a header", len(srv.Rows(book, "Responses"))-1, n)
	}
	after := srv.Calls()
	appends := after["values.append"] - before["values.append"]
	calls := 0
	for k, v := range after {
		calls += v - before[k]
	}
	rate := float64(n) / elapsed.Seconds()
	writes := appends + after["spreadsheets.batchUpdate"] - before["spreadsheets.batchUpdate"]
	paced := time.Duration(writes) * (time.Minute / 50)
	return fmt.Sprintf("sheets %d rows in %s = %.0f rows/s, %d calls (%d appends of ≤%d rows); raw client %.0f rows/s, ratio %.2f; at 50 writes/min ≈ %s (%.0f rows/s)",
		n, elapsed.Round(time.Millisecond), rate, calls, appends, exp.BatchRows, refRate, rate/refRate,
		paced.Round(time.Second), float64(n)/max(paced.Seconds(), elapsed.Seconds())), nil
}

func benchCSV(ctx context.Context, pool *pgxpool.Pool, a *app.App, n int, profile string) (string, error) {
	// Reference: COPY of the same answers, unpivoted.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	start := time.Now()
	tag, err := conn.Conn().PgConn().CopyTo(ctx, io.Discard, `COPY (SELECT r.id, r.created_at, a.question_id, a.repeat_index, a.n, a.value_text
		FROM response r JOIN answer a ON a.response_id = r.id WHERE r.form_id = '`+formID+`') TO STDOUT (FORMAT csv)`)
	conn.Release()
	if err != nil {
		return "", err
	}
	copyRate := float64(n) / time.Since(start).Seconds()
	if tag.RowsAffected() != int64(11*n) {
		return "", fmt.Errorf("COPY: %d answers, want %d", tag.RowsAffected(), 11*n)
	}

	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	link, _ := a.Links.Sign(formID, nil, time.Now())

	runtime.GC()
	debug.FreeOSMemory()
	if err := resetPeakRSS(); err != nil {
		return "", fmt.Errorf("reset the peak RSS (Linux only): %w", err)
	}
	base := rss("VmRSS:")
	stop, err := benchdb.Profile(profile)
	if err != nil {
		return "", err
	}
	start = time.Now()
	resp, err := http.Get(srv.URL + strings.TrimPrefix(link, "http://bench"))
	if err != nil {
		return "", err
	}
	counter := &lineCounter{}
	if _, err := io.Copy(counter, resp.Body); err != nil {
		return "", err
	}
	resp.Body.Close()
	elapsed := time.Since(start)
	stop()
	peak := rss("VmHWM:")
	if resp.StatusCode != 200 || counter.records() != n+1 {
		return "", fmt.Errorf("csv: status %d, %d records, want %d and a header", resp.StatusCode, counter.records(), n)
	}
	rate := float64(n) / elapsed.Seconds()
	return fmt.Sprintf("csv %d rows in %s = %.0f rows/s, %.1f MB/s; COPY of the answers %.0f responses/s, ratio %.2f; peak RSS %d MiB (target < 64; %d MiB before the export)",
		n, elapsed.Round(time.Millisecond), rate, float64(counter.bytes)/elapsed.Seconds()/1e6, copyRate, rate/copyRate, peak>>20, base>>20), nil
}

// lineCounter counts CSV records: line ends outside quoted cells (a
// doubled quote inside a cell toggles twice).
type lineCounter struct {
	bytes, crlf int
	quoted      bool
}

func (c *lineCounter) Write(p []byte) (int, error) {
	for _, b := range p {
		switch {
		case b == '"':
			c.quoted = !c.quoted
		case b == '\n' && !c.quoted:
			c.crlf++
		}
	}
	c.bytes += len(p)
	return len(p), nil
}

func (c *lineCounter) records() int { return c.crlf }

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident set (Linux: writing 5 to clear_refs).
func resetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// rss reads a size field of /proc/self/status (VmRSS:, VmHWM:), in bytes.
func rss(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
