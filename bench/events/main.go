// Command events benchmarks the event-trigger path — Hasura POSTs an event,
// shala records it in the inbox and enqueues its job in one durable
// transaction, then acknowledges — against this machine's ceiling for one
// durable single-row INSERT per transaction, measured in the same run on the
// same cluster. It prints one result line.
//
//	go run ./bench/events [-clients 100] [-duration 10s] [-workers 0] [-driver wrk|go] [-probe=false]
//
// Latencies are summarised as wrk summarises them: corrected for
// coordinated omission (wrk.Correct), so a stall of the server counts for
// the deliveries a steady stream of events would have queued behind it, not
// only for the 100 in flight. The ceiling's commits are summarised the same
// way. Beside them the line gives the plain p99 of the time the server took
// for each delivery (the handler's call to its return) and of the ceiling's
// commits, and how many of each took over 25 ms: a stall of the disk's
// fsync shows there, in both, and is not the ack path's.
//
// The line also says how often the inbox let a batch start beside one not
// yet done (passes: as it committed, commits being slower than builds; as
// it took longer than PassAfter; as it failed): rare when the ack path is
// healthy.
//
// Beside both runs a probe writes and fdatasyncs one 8 KiB page every
// 10 ms, beside the database's data directory but outside Postgres
// (benchdb.ProbeDisk; -probe=false turns it off): its slow syncs show when
// the disk was slow to make writes durable.
//
// With no BENCH_DATABASE_URL it starts its own durable cluster (fsync and
// synchronous_commit on) in a temp dir. The load comes from wrk (Debian
// package wrk) running ping_created.lua when it is installed — on 2 cores a
// Go load generator takes CPU the server under test needs — and from a Go
// driver otherwise (-driver go).
package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/bench/benchdb"
	"github.com/shala-edu/shala/bench/wrk"
	"github.com/shala-edu/shala/hasura"
)

const secret = "bench-webhook-secret-0123456789"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/events:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	// 100 is Hasura's default number of HTTP workers delivering events
	// (HASURA_GRAPHQL_EVENTS_HTTP_POOL_SIZE); the ceiling uses as many clients.
	clients := flag.Int("clients", 100, "concurrent deliveries (Hasura's event HTTP pool size) and ceiling clients")
	duration := flag.Duration("duration", 10*time.Second, "duration of each measurement")
	workers := flag.Int("workers", 0, "River workers running during the webhook measurement (0: acknowledgement path only)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the webhook measurement to this file")
	driver := flag.String("driver", "wrk", "load generator: wrk (falls back to go when wrk is not installed) or go")
	probeDisk := flag.Bool("probe", true, "probe the disk beside the data directory during both runs (benchdb.ProbeDisk)")
	flag.Parse()
	if !wrk.Installed() && *driver == "wrk" {
		fmt.Fprintln(os.Stderr, "bench/events: wrk not found (make tools, or apt-get install wrk); using the Go driver")
		*driver = "go"
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	pool, cleanup, err := benchdb.Open(ctx, int32(*clients+*workers+8))
	if err != nil {
		return err
	}
	defer cleanup()

	probeDir := ""
	if *probeDisk {
		probeDir = benchdb.ProbeDir(ctx, pool)
	}
	stopProbe := probe(probeDir)
	ceiling, err := benchdb.InsertCeiling(ctx, pool, *clients, *duration, slowAt)
	ceilingDisk, _ := stopProbe()
	if err != nil {
		return err
	}

	a, closeApp, err := benchdb.NewApp(ctx, pool, map[string]string{
		"SHALA_WEBHOOK_SECRET": secret,
		"SHALA_QUEUE_WORKERS":  fmt.Sprint(*workers),
	}, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeApp()) }()
	if err := a.Start(ctx); err != nil {
		return err
	}
	served := &timings{}
	base, stop, err := benchdb.Serve(ctx, served.wrap(a.Handler()), log)
	if err != nil {
		return err
	}
	defer stop()

	stopProfile, err := benchdb.Profile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopProfile()
	url := base + "/events/ping_created"
	// What else happened during the measurement, to tell a stall of the
	// ack path from one of the machine: Postgres checkpoints and Go's GC.
	checkpointsBefore, walBefore := checkpoints(ctx, pool), benchdb.WALFiles(ctx, pool)
	syncsBefore, syncTimeBefore, syncsErr := benchdb.WALSyncs(ctx, pool)
	var gcBefore runtime.MemStats
	runtime.ReadMemStats(&gcBefore)
	stopProbe = probe(probeDir)
	var res wrk.Result
	if *driver == "wrk" {
		res, err = wrk.Run(url, wrkScript, map[string]string{"SHALA_WEBHOOK_SECRET": secret}, *clients, *duration)
	} else {
		res, err = drive(ctx, url, *clients, *duration)
	}
	webhookDisk, diskBroke := stopProbe()
	if err != nil {
		return err
	}
	var gcAfter runtime.MemStats
	runtime.ReadMemStats(&gcAfter)
	checkpointsDuring, walCreated := checkpoints(ctx, pool)-checkpointsBefore, benchdb.WALFiles(ctx, pool)-walBefore
	syncsAfter, syncTimeAfter, err := benchdb.WALSyncs(ctx, pool)
	var walSyncs string
	if err = errors.Join(syncsErr, err); err != nil {
		walSyncs = fmt.Sprintf("n/a (%v)", err)
	} else {
		n, took := syncsAfter-syncsBefore, syncTimeAfter-syncTimeBefore
		walSyncs = fmt.Sprintf("%d took=%.0fms mean=%.2fms", n, ms(took), ms(took)/float64(max(n, 1)))
	}
	acks, p50, p99, failures := res.PerSecond, res.P50, res.P99, res.Failures
	passCommit, passSlow, passFailed := a.Inbox.Passes()
	serverP99, serverSlow := served.summary(slowAt)
	// Every acknowledged delivery must be in the inbox: a 2xx for work that
	// was not recorded would be a bug, not a speed-up.
	var recorded int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM webhook_inbox").Scan(&recorded); err != nil {
		return err
	}
	if recorded < res.OK {
		return fmt.Errorf("%d deliveries acknowledged but only %d recorded", res.OK, recorded)
	}
	ratio := acks / ceiling.Rate
	verdict := "MET"
	if ratio < 0.5 || p99 > slowAt {
		verdict = "NOT MET"
		if diskBroke {
			verdict += "; the probe's slow syncs alone went past 25ms for 1%+ of the webhook run"
		}
	}
	fmt.Printf("bench/events: webhook acks/s=%.0f p50=%.2fms p99=%.2fms failures=%d recorded=%d server-p99=%.2fms server>25ms=%d | durable 1-row INSERT ceiling=%.0f tx/s p50=%.2fms p99=%.2fms raw-p99=%.2fms commits>25ms=%d | ratio=%.2f (target >=0.50 at p99<=25ms: %s) | disk probe (8 KiB write+fdatasync every 10ms beside the data directory, outside Postgres): probe-webhook: %s probe-ceiling: %s | during the run: postgres-wal-syncs=%s checkpoints=%d wal-segments-created=%d gc=%d gc-max-pause=%.2fms passes: commit=%d slow=%d failed=%d | clients=%d duration=%s workers=%d driver=%s cpus=%d\n",
		acks, ms(p50), ms(p99), failures, recorded, ms(serverP99), serverSlow, ceiling.Rate, ms(ceiling.P50), ms(ceiling.P99), ms(ceiling.RawP99), ceiling.Slow,
		ratio, verdict, webhookDisk, ceilingDisk, walSyncs, checkpointsDuring, walCreated, gcAfter.NumGC-gcBefore.NumGC,
		ms(maxPause(&gcBefore, &gcAfter)), passCommit, passSlow, passFailed, *clients, *duration, *workers, *driver, runtime.NumCPU())
	return nil
}

// checkpoints is how many checkpoints Postgres has done (PostgreSQL 15's
// pg_stat_bgwriter), or -1 when it cannot say.
func checkpoints(ctx context.Context, pool *pgxpool.Pool) int64 {
	var n int64
	if err := pool.QueryRow(ctx, `SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter`).Scan(&n); err != nil {
		return -1
	}
	return n
}

// maxPause is the longest GC pause between two MemStats readings (of the
// last 256 pauses, which Go keeps).
func maxPause(before, after *runtime.MemStats) time.Duration {
	var longest uint64
	for i := before.NumGC + 1; i <= after.NumGC && after.NumGC-i < 256; i++ {
		longest = max(longest, after.PauseNs[(i+255)%256])
	}
	return time.Duration(longest)
}

// eventBody is a ping_created delivery exactly as Hasura sends it.
const eventBody = `{"created_at":"%s","delivery_info":{"current_retry":0,"max_retries":5},` +
	`"event":{"data":{"new":{"created_at":"%s","id":"%s","message":"नमस्ते","sent_by":"7"},"old":null},` +
	`"op":"INSERT","session_variables":{"x-hasura-role":"admin","x-hasura-user-id":"7"},` +
	`"trace_context":{"sampling_state":"1","span_id":"a1b2c3d4e5f60718","trace_id":"0af7651916cd43dd8448eb211c80319c"}},` +
	`"id":"%s","table":{"name":"ping","schema":"public"},"trigger":{"name":"ping_created"}}`

//go:embed ping_created.lua
var wrkScript []byte

func drive(ctx context.Context, url string, n int, d time.Duration) (wrk.Result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	var (
		mu     sync.Mutex
		all    []time.Duration
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	deadline := time.Now().Add(d)
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			for time.Now().Before(deadline) {
				now := time.Now().UTC()
				body := fmt.Sprintf(eventBody, now.Format("2006-01-02T15:04:05.999999"), now.Format(time.RFC3339Nano), uuid.New(), uuid.New())
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "hasura-graphql-engine/v2.44.0")
				req.Header.Set(hasura.SecretHeader, secret)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	corrected := wrk.Correct(all, n, elapsed)
	return wrk.Result{PerSecond: float64(len(all)) / elapsed.Seconds(), OK: int64(len(all)),
		P50: wrk.Percentile(corrected, 0.50), P99: wrk.Percentile(corrected, 0.99), Failures: failed.Load()}, nil
}

// probeEvery is the disk probe's pace (benchdb.ProbeDisk).
const probeEvery = 10 * time.Millisecond

// probe starts a disk probe in dir (benchdb.ProbeDisk) and returns the
// function that stops it. That gives the probe's summary for the result
// line and whether its slow syncs went past the line for 1% or more of the
// time it ran — by wrk's correction, enough to break a p99 at the line by
// themselves. With dir "" (probing off, or the data directory unknown) or
// a probe that fails, the summary says so: the probe is evidence beside
// the measurement, never a reason to lose it.
func probe(dir string) func() (summary string, broke bool) {
	if dir == "" {
		return func() (string, bool) { return "n/a (probe off or data directory unknown)", false }
	}
	start := time.Now()
	stop, err := benchdb.ProbeDisk(dir, probeEvery, slowAt)
	if err != nil {
		return func() (string, bool) { return fmt.Sprintf("n/a (%v)", err), false }
	}
	return func() (string, bool) {
		p, err := stop()
		ran := time.Since(start)
		if err != nil {
			return fmt.Sprintf("n/a (%v)", err), false
		}
		return fmt.Sprintf("slow=%d beyond-25ms=%.0fms max=%.2fms p50=%.2fms", p.Slow, ms(p.Beyond), ms(p.Max), ms(p.P50)),
			p.Beyond*100 >= ran
	}
}

// slowAt is the p99 target, and the line at which the server's answers and
// the ceiling's commits are counted as slow.
const slowAt = 25 * time.Millisecond

// timings records how long the handler took for each request, from its
// call to its return (the answer is then in net/http's buffer). It leaves
// out what happens before the call (reading and parsing the request,
// waiting to be scheduled) and the write of the answer.
type timings struct {
	mu  sync.Mutex
	all []time.Duration
}

func (t *timings) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		d := time.Since(start)
		t.mu.Lock()
		t.all = append(t.all, d)
		t.mu.Unlock()
	})
}

// summary is the plain p99 of the recorded times and how many exceeded
// slow.
func (t *timings) summary(slow time.Duration) (time.Duration, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	slices.Sort(t.all)
	return wrk.Percentile(t.all, 0.99), wrk.Over(t.all, slow)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
