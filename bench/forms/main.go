// Command forms benchmarks end-to-end ingestion of a data-collection
// submission through the OpenRosa endpoint — multipart POST as ODK Collect
// sends it, collector token check, raw XML stored, parsed against the
// household survey (28 fields, a repeat of 3 members: 34 answers), response
// and answers written, rules evaluated — against the same-work ceiling
// measured in the same run: the same rows written by Postgres alone (one
// transaction inserting the raw XML with a unique instanceID, the response
// and its 34 typed answers, with every index and foreign key they have),
// replayed by a pgx loop with the same number of clients, no HTTP and no
// parsing. The ceiling is measured before and after the ingestion and
// averaged, so a machine whose speed drifts during the run is compared
// with itself. It prints one result line: the ratio at 32 connections
// (target ≥ 0.75, p99 ≤ 100 ms), the rate at 8 connections, and the CPU
// each submission costs in shala and in Postgres.
//
//	go run ./bench/forms [-clients 32] [-low 8] [-duration 10s] [-cpuprofile f]
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/bench/benchdb"
	"github.com/shala-edu/shala/bench/wrk"
	"github.com/shala-edu/shala/internal/forms"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/forms:", err)
		os.Exit(1)
	}
}

const firstInstance = "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b"

func run() (err error) {
	clients := flag.Int("clients", 32, "concurrent collectors submitting (and ceiling clients)")
	low := flag.Int("low", 8, "the second, lower number of connections whose rate is reported")
	duration := flag.Duration("duration", 10*time.Second, "duration of each measurement")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the ingestion at -clients to this file")
	flag.Parse()
	if !wrk.Installed() {
		return fmt.Errorf("needs wrk (make tools, or apt-get install wrk)")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, cleanup, err := benchdb.Open(ctx, int32(*clients+16))
	if err != nil {
		return err
	}
	defer cleanup()

	definition, err := os.ReadFile("internal/xform/testdata/household_survey.xml")
	if err != nil {
		return fmt.Errorf("run from the repository root: %w", err)
	}
	submission, err := os.ReadFile("internal/xform/testdata/household_submission.xml")
	if err != nil {
		return err
	}
	a, closeApp, err := benchdb.NewApp(ctx, pool, map[string]string{
		"SHALA_PUBLIC_URL":    "http://127.0.0.1",
		"SHALA_QUEUE_WORKERS": "0",
		// One load generator, one IP: no per-IP limit.
		"SHALA_PUBLIC_RATE":  "1e9",
		"SHALA_PUBLIC_BURST": fmt.Sprint(1 << 30),
	}, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeApp()) }()
	if _, err := a.Catalog.Register(ctx, definition, forms.DataCollection, "bench"); err != nil {
		return err
	}
	if _, err := a.Rules.SaveRule(ctx, a.Catalog, "household_survey", "savings", "monthly_savings <= monthly_income", "बचत आय से अधिक", "bench"); err != nil {
		return err
	}
	// One collector per connection, as in the field: each collector's
	// phone sends its own submissions.
	tokens := make([]string, *clients)
	var collector uuid.UUID
	for i := range tokens {
		c, token, err := a.Collectors.Create(ctx, fmt.Sprintf("bench collector %d", i+1), fmt.Sprintf("98160%05d", i), "bench")
		if err != nil {
			return err
		}
		tokens[i], collector = token, c.ID
	}
	// The rows one submission writes, taken from one shala wrote: what the
	// ceiling replays.
	first, err := a.Pipeline.Receive(ctx, forms.Input{XML: submission, Source: "openrosa", CollectorID: &collector})
	if err != nil {
		return err
	}
	w, err := readWork(ctx, pool, *first.ResponseID, string(submission), collector)
	if err != nil {
		return err
	}

	h := a.Handler()
	base, stop, err := benchdb.Serve(ctx, h, log)
	if err != nil {
		return err
	}
	defer stop()
	script := script(string(submission), tokens)

	ceilPG, ceilSelf := mustPostgresCPU(ctx, pool), selfCPU()
	before, ceilTx, err := w.ceiling(ctx, pool, *clients, *duration)
	if err != nil {
		return err
	}
	ceilPG, ceilSelf = mustPostgresCPU(ctx, pool)-ceilPG, selfCPU()-ceilSelf
	stopProfile, err := benchdb.Profile(*cpuProfile)
	if err != nil {
		return err
	}
	pgBefore, err := postgresCPU(ctx, pool)
	if err != nil {
		return err
	}
	selfBefore := selfCPU()
	res, err := wrk.Run(base+"/", script, nil, *clients, *duration)
	selfSpent := selfCPU() - selfBefore
	stopProfile()
	if err != nil {
		return err
	}
	pgAfter, err := postgresCPU(ctx, pool)
	if err != nil {
		return err
	}
	after, _, err := w.ceiling(ctx, pool, *clients, *duration)
	if err != nil {
		return err
	}
	lowRes, err := wrk.Run(base+"/", script, nil, *low, *duration)
	if err != nil {
		return err
	}

	var accepted, answers int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM form_submission WHERE status = 'accepted' AND source = 'openrosa'),
		(SELECT count(*) FROM answer a JOIN response r ON r.id = a.response_id JOIN form_submission s ON s.id = r.submission_id
		 WHERE s.source = 'openrosa')`).Scan(&accepted, &answers); err != nil {
		return err
	}
	if accepted < res.OK+lowRes.OK {
		return fmt.Errorf("%d submissions acknowledged but %d accepted", res.OK+lowRes.OK, accepted)
	}
	ceiling := (before + after) / 2
	ratio := res.PerSecond / ceiling
	verdict := "MET"
	if ratio < 0.75 || res.P99 > 100*time.Millisecond {
		verdict = "NOT MET"
	}
	per := func(d time.Duration, n int64) float64 { return float64(d.Microseconds()) / 1000 / float64(max(n, 1)) }
	fmt.Printf("bench/forms: openrosa submissions/s=%.0f p50=%.1fms p99=%.1fms at %d conns | %.0f/s p50=%.1fms p99=%.1fms at %d | "+
		"same-work ceiling=%.0f tx/s (%.0f before, %.0f after) | ratio=%.2f (target >=0.75 and p99 <=100ms: %s) | "+
		"cpu/submission shala=%.2fms postgres=%.2fms (ceiling: client=%.2fms postgres=%.2fms per tx) | failures=%d accepted=%d answers=%d duration=%s cpus=%d\n",
		res.PerSecond, ms(res.P50), ms(res.P99), *clients, lowRes.PerSecond, ms(lowRes.P50), ms(lowRes.P99), *low,
		ceiling, before, after, ratio, verdict, per(selfSpent, res.OK), per(pgAfter-pgBefore, res.OK), per(ceilSelf, ceilTx), per(ceilPG, ceilTx),
		res.Failures+lowRes.Failures, accepted, answers, *duration, runtime.NumCPU())
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// work is one submission's rows as shala writes them, ready to be written
// again under new ids.
type work struct {
	xml       string // with INSTANCE_ID for the instanceID
	collector uuid.UUID
	questions []pgtype.UUID
	indexes   []string
	ordinals  []int16
	texts     []string
	numbers   []pgtype.Text
	times     []pgtype.Timestamptz
	bools     []pgtype.Bool
	choices   []pgtype.UUID
}

// readWork reads the answers of response id (written by shala) into the
// arrays its answer insert takes.
func readWork(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, xml string, collector uuid.UUID) (*work, error) {
	w := &work{xml: strings.Replace(xml, firstInstance, "INSTANCE_ID", 1), collector: collector}
	rows, err := pool.Query(ctx, `SELECT question_id, repeat_index::text, n, value_text, value_number::text, value_time, value_bool, choice_id
		FROM answer WHERE response_id = $1`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			q, c pgtype.UUID
			i    string
			o    int16
			t    string
			num  pgtype.Text
			tm   pgtype.Timestamptz
			b    pgtype.Bool
		)
		if err := rows.Scan(&q, &i, &o, &t, &num, &tm, &b, &c); err != nil {
			return nil, err
		}
		w.questions, w.indexes, w.ordinals, w.texts = append(w.questions, q), append(w.indexes, i), append(w.ordinals, o), append(w.texts, t)
		w.numbers, w.times, w.bools, w.choices = append(w.numbers, num), append(w.times, tm), append(w.bools, b), append(w.choices, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(w.questions) != 34 {
		return nil, fmt.Errorf("the household submission wrote %d answers, want 34", len(w.questions))
	}
	return w, nil
}

// ceiling writes submissions' rows — raw XML with a unique instanceID, the
// response, its 34 answers — one transaction each (a pgx batch: one round
// trip, one commit, as shala's fast path), from n clients for d, and
// returns transactions per second.
func (w *work) ceiling(ctx context.Context, pool *pgxpool.Pool, n int, d time.Duration) (perSecond float64, count int64, err error) {
	var done atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := range n {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				instance := fmt.Sprintf("uuid:ceiling-%d-%d-%d", deadline.UnixNano(), c, i)
				xml := strings.Replace(w.xml, "INSTANCE_ID", instance, 1)
				sum := sha256.Sum256([]byte(xml))
				sub, resp := uuid.New(), uuid.New()
				b := &pgx.Batch{}
				b.Queue(`INSERT INTO form_submission (id, xml, xml_sha256, instance_id, form_id, form_version, status, source, collector_id, processed_at)
					VALUES ($1, $2, $3, $4, 'household_survey', '2026111501', 'accepted', 'openrosa', $5, now())`, sub, xml, sum[:], instance, w.collector)
				b.Queue(`INSERT INTO response (id, form_id, form_version, submission_id, instance_id, collector_id, meta, flagged)
					VALUES ($1, 'household_survey', '2026111501', $2, $3, $4, '{"instanceName": "सुनीता ठाकुर - Matiana"}', false)`,
					resp, sub, instance, w.collector)
				b.Queue(`INSERT INTO answer (response_id, question_id, repeat_index, n, value_text, value_number, value_time, value_bool, choice_id)
					SELECT $1, q, i::int[], o, t, num::numeric, tm, b, c
					FROM unnest($2::uuid[], $3::text[], $4::int2[], $5::text[], $6::text[], $7::timestamptz[], $8::bool[], $9::uuid[])
					  AS u(q, i, o, t, num, tm, b, c)`,
					resp, w.questions, w.indexes, w.ordinals, w.texts, w.numbers, w.times, w.bools, w.choices)
				if err := pool.SendBatch(ctx, b).Close(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				done.Add(1)
			}
		})
	}
	start := time.Now()
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, 0, err
	}
	return float64(done.Load()) / time.Since(start).Seconds(), done.Load(), nil
}

func mustPostgresCPU(ctx context.Context, pool *pgxpool.Pool) time.Duration {
	d, _ := postgresCPU(ctx, pool)
	return d
}

// selfCPU is the CPU time this process (shala's server and the ceiling's
// client) has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// postgresCPU is the CPU time the database's processes (backends and
// background workers, from pg_stat_activity) have used, read from /proc:
// 0 when the database is not on this machine.
func postgresCPU(ctx context.Context, pool *pgxpool.Pool) (time.Duration, error) {
	rows, err := pool.Query(ctx, `SELECT pid FROM pg_stat_activity`)
	if err != nil {
		return 0, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return 0, err
	}
	const ticks = 100 // USER_HZ on Linux
	var total time.Duration
	for _, pid := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces): state is the
		// 3rd field, utime the 14th, stime the 15th.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		total += time.Duration(u+s) * time.Second / ticks
	}
	return total, nil
}

// script is a wrk script that posts the submission as ODK Collect does
// (multipart, xml_submission_file), each with its own instanceID, the
// collectors' tokens taken in turn.
func script(submission string, tokens []string) []byte {
	const boundary = "----shalaBenchBoundary7MA4YWxkTrZu0gW"
	tmpl := strings.Replace(submission, firstInstance, "INSTANCE_ID", 1)
	return []byte(`thread_no = 0
local counter = 0
local threads = {}
function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end
local template = [==[` + tmpl + `]==]
local boundary = "` + boundary + `"
local tokens = {"` + strings.Join(tokens, `", "`) + `"}
request = function()
  counter = counter + 1
  local id = string.format("uuid:bench-%d-%d-%d", os.time(), thread_no, counter)
  local xml = string.gsub(template, "INSTANCE_ID", id)
  local body = "--" .. boundary .. "\r\n" ..
    "Content-Disposition: form-data; name=\"xml_submission_file\"; filename=\"submission.xml\"\r\n" ..
    "Content-Type: text/xml\r\n\r\n" .. xml .. "\r\n--" .. boundary .. "--\r\n"
  local path = "/openrosa/key/" .. tokens[(thread_no * 7919 + counter) % #tokens + 1] .. "/submission"
  return wrk.format("POST", path, {
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
    ["X-OpenRosa-Version"] = "1.0",
    ["User-Agent"] = "org.odk.collect.android/v2024.3.1 Dalvik/2.1.0",
  }, body)
end
`)
}
