// Command sms benchmarks the SMS fan-out: one request to 100,000 parents
// (distinct valid mobiles) expanded and sent through the local provider with
// no rate limit, end to end through River, next to River's raw throughput
// for no-op jobs with the same client settings (same queue, workers and
// fetch cooldown) measured in the same run. It prints one result line with
// expansion time, messages/s, the ratio (target ≥ 0.6) and the process's
// peak RSS (target < 300 MB).
//
//	go run ./bench/sms [-recipients 100000] [-workers 50]
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
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/bench/benchdb"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/sms"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/sms:", err)
		os.Exit(1)
	}
}

func run() (err error) {
	recipients := flag.Int("recipients", 100_000, "students (each with a distinct valid mobile) the request targets")
	workers := flag.Int("workers", 50, "workers on the sms queue (and on the default queue)")
	cooldown := flag.Duration("cooldown", 5*time.Millisecond, "River fetch cooldown")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the fan-out to this file")
	flag.Parse()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	pool, cleanup, err := benchdb.Open(ctx, int32(2*(*workers)+10))
	if err != nil {
		return err
	}
	defer cleanup()

	school, err := seedSchool(ctx, pool, *recipients)
	if err != nil {
		return err
	}
	// SMS run first, so the peak RSS read after it is the fan-out's.
	a, closeApp, err := benchdb.NewApp(ctx, pool, map[string]string{
		"SHALA_QUEUE_WORKERS":        strconv.Itoa(*workers),
		"SHALA_SMS_WORKERS":          strconv.Itoa(*workers),
		"SHALA_QUEUE_FETCH_COOLDOWN": cooldown.String(),
		"SHALA_SMS_PROVIDER":         "log",
	}, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeApp()) }()
	client := a.Queue
	var requestID uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO sms_request (school_id, type, variables)
		VALUES ($1, 'HOLIDAY', '{"start_date": "25 दिसंबर", "end_date": "1 जनवरी", "reopen_date": "2 जनवरी"}') RETURNING id`,
		school).Scan(&requestID); err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	stopProfile, err := benchdb.Profile(*cpuProfile)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err := sms.Reconcile(ctx, pool, client, 0); err != nil {
		return err
	}
	var expandTime time.Duration
	var status string
	var sent int
	for {
		var expanded bool
		if err := pool.QueryRow(ctx, `SELECT status, sent, expanded_at IS NOT NULL FROM sms_request WHERE id = $1`, requestID).
			Scan(&status, &sent, &expanded); err != nil {
			return err
		}
		if expanded && expandTime == 0 {
			expandTime = time.Since(start)
		}
		if status == "DONE" || status == "FAILED" {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("request still %s with %d sent after 10 minutes", status, sent)
		}
		time.Sleep(20 * time.Millisecond)
	}
	e2e := time.Since(start)
	stopProfile()
	// The request is DONE at the progress job's next check (every 2 s):
	// the last message's own time is the fair end of the fan-out.
	var lastSent time.Time
	if err := pool.QueryRow(ctx, `SELECT max(sent_at) FROM sms_message WHERE request_id = $1`, requestID).Scan(&lastSent); err != nil {
		return err
	}
	sendSpan := lastSent.Sub(start)
	if err := a.Stop(time.Minute); err != nil {
		return err
	}
	if status != "DONE" || sent != *recipients {
		return fmt.Errorf("request ended %s with %d of %d sent", status, sent, *recipients)
	}
	peakRSS := peakRSSMB()

	noop, err := noopRate(ctx, pool, *recipients, *workers, *cooldown, log)
	if err != nil {
		return err
	}
	rate := float64(*recipients) / sendSpan.Seconds()
	ratio := rate / noop
	verdict := "MET"
	if ratio < 0.6 || peakRSS >= 300 {
		verdict = "NOT MET"
	}
	fmt.Printf("bench/sms: recipients=%d expansion=%.1fs sent-in=%.1fs (DONE after %.1fs) msgs/s=%.0f | river no-op jobs/s=%.0f (same settings) | ratio=%.2f peak RSS=%dMB (target ratio>=0.6, RSS<300MB: %s) | workers=%d cooldown=%s provider=log cpus=%d\n",
		*recipients, expandTime.Seconds(), sendSpan.Seconds(), e2e.Seconds(), rate, noop, ratio, peakRSS, verdict,
		*workers, *cooldown, runtime.NumCPU())
	return nil
}

// seedSchool creates one school whose n active students each have a
// distinct valid mobile.
func seedSchool(ctx context.Context, pool *pgxpool.Pool, n int) (uuid.UUID, error) {
	var school uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO school (udise, name, district, block, session)
		VALUES ('02119900001', 'GSSS बेंचमार्क', 'Shimla', 'Theog', 'W') RETURNING id`).Scan(&school); err != nil {
		return school, err
	}
	rows := make([][]any, n)
	for i := range n {
		rows[i] = []any{school, "विद्यार्थी " + strconv.Itoa(i), "FEMALE", 1 + i%12, fmt.Sprintf("+9198%08d", i)}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"student"}, []string{"school_id", "name", "gender", "grade", "guardian_phone"},
		pgx.CopyFromRows(rows)); err != nil {
		return school, err
	}
	// A real registry's student table has planner statistics; a table
	// bulk-loaded a moment ago does not until autovacuum gets to it.
	_, err := pool.Exec(ctx, "ANALYZE student")
	return school, err
}

type noopArgs struct{}

func (noopArgs) Kind() string { return "bench.noop" }

func (noopArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: sms.Queue} }

type noopWorker struct{ river.WorkerDefaults[noopArgs] }

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// noopRate works n no-op jobs on the sms queue with the same worker count
// and fetch cooldown and returns jobs/s. The jobs are inserted first, so
// this is River's fetch-and-complete rate alone.
func noopRate(ctx context.Context, pool *pgxpool.Pool, n, workers int, cooldown time.Duration, log *slog.Logger) (float64, error) {
	w := river.NewWorkers()
	river.AddWorker(w, &noopWorker{})
	c, err := queue.New(pool, w, queue.Config{Workers: workers, Queues: map[string]int{sms.Queue: workers},
		FetchCooldown: cooldown, Log: log})
	if err != nil {
		return 0, err
	}
	for done := 0; done < n; {
		batch := make([]river.InsertManyParams, min(5000, n-done))
		for i := range batch {
			batch[i] = river.InsertManyParams{Args: noopArgs{}}
		}
		if _, err := c.InsertMany(ctx, batch); err != nil {
			return 0, err
		}
		done += len(batch)
	}
	start := time.Now()
	if err := c.Start(ctx); err != nil {
		return 0, err
	}
	defer func() { _ = c.Stop(ctx) }()
	for {
		var left int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'bench.noop' AND state <> 'completed'`).Scan(&left); err != nil {
			return 0, err
		}
		if left == 0 {
			return float64(n) / time.Since(start).Seconds(), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peakRSSMB is this process's peak resident set (VmHWM), in MB.
func peakRSSMB() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return -1
}
