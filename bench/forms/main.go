// Command forms benchmarks end-to-end ingestion of a data-collection
// submission through the OpenRosa endpoint — multipart POST as ODK Collect
// sends it, collector token check, raw XML stored, parsed against the
// household survey (28 fields, a repeat of 3 members: 34 answers), response
// and answers written, rules evaluated — next to the same machine's ceiling
// for one durable single-row INSERT per transaction with the same clients,
// measured in the same run. It prints one result line (target ≥ 0.25 of the
// ceiling).
//
//	go run ./bench/forms [-clients 32] [-duration 10s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

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

func run() (err error) {
	clients := flag.Int("clients", 32, "concurrent collectors submitting (and ceiling clients)")
	duration := flag.Duration("duration", 10*time.Second, "duration of each measurement")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the ingestion to this file")
	flag.Parse()
	if !wrk.Installed() {
		return fmt.Errorf("needs wrk (apt-get install wrk)")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, cleanup, err := benchdb.Open(ctx, int32(*clients+16))
	if err != nil {
		return err
	}
	defer cleanup()
	ceiling, err := benchdb.InsertCeiling(ctx, pool, *clients, *duration)
	if err != nil {
		return err
	}

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
	for i := range tokens {
		_, tokens[i], err = a.Collectors.Create(ctx, fmt.Sprintf("bench collector %d", i+1), fmt.Sprintf("98160%05d", i), "bench")
		if err != nil {
			return err
		}
	}
	h := a.Handler()
	base, stop, err := benchdb.Serve(ctx, h, log)
	if err != nil {
		return err
	}
	defer stop()

	stopProfile, err := benchdb.Profile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	url := base + "/"
	res, err := wrk.Run(url, script(string(submission), tokens), nil, *clients, *duration)
	if err != nil {
		return err
	}
	var accepted, answers int64
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM form_submission WHERE status = 'accepted'),
		(SELECT count(*) FROM answer)`).Scan(&accepted, &answers); err != nil {
		return err
	}
	if accepted < res.OK {
		return fmt.Errorf("%d submissions acknowledged but %d accepted", res.OK, accepted)
	}
	ratio := res.PerSecond / ceiling
	verdict := "MET"
	if ratio < 0.25 {
		verdict = "NOT MET"
	}
	fmt.Printf("bench/forms: openrosa submissions/s=%.0f p50=%.2fms p99=%.2fms failures=%d accepted=%d answers=%d | durable 1-row INSERT ceiling=%.0f tx/s | ratio=%.2f (target >=0.25: %s) | clients=%d duration=%s cpus=%d\n",
		res.PerSecond, ms(res.P50), ms(res.P99), res.Failures, accepted, answers, ceiling, ratio, verdict, *clients, *duration, runtime.NumCPU())
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// script is a wrk script that posts the submission as ODK Collect does
// (multipart, xml_submission_file), each with its own instanceID, the
// collectors' tokens taken in turn.
func script(submission string, tokens []string) []byte {
	const boundary = "----shalaBenchBoundary7MA4YWxkTrZu0gW"
	tmpl := strings.Replace(submission, "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b", "INSTANCE_ID", 1)
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
