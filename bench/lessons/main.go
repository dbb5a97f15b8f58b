// Command lessons benchmarks startLesson: a burst of starts arriving at a
// fixed rate (open loop, 100/s by default) through the HTTP action, on a pool
// of 50 BigBlueButton test servers that answer every call after 20 ms. The
// reference, measured in the same run at the same rate against the same
// servers, is the bare BBB create call a start cannot avoid. It prints one
// line: startLesson p50/p99, the reference's p50/p99, their p50 ratio, and
// the spread after the burst (max/mean booked users per server; 1.00 is a
// perfectly even pool).
//
//	go run ./bench/lessons [-starts 1000] [-rate 100] [-servers 50] [-latency 20ms]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/bench/benchdb"
	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/bbb/bbbtest"
	"github.com/shala-edu/shala/internal/lesson"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/lessons:", err)
		os.Exit(1)
	}
}

const webhookSecret = "bench-webhook-secret-0123456789"

func run() (err error) {
	starts := flag.Int("starts", 1000, "lessons started in the burst")
	rate := flag.Float64("rate", 100, "starts per second (open loop)")
	nServers := flag.Int("servers", 50, "BBB servers in the pool")
	latency := flag.Duration("latency", 20*time.Millisecond, "how long each BBB test server takes to answer")
	roster := flag.Int("roster", 30, "students per group")
	flag.Parse()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	pool, cleanup, err := benchdb.Open(ctx, 60)
	if err != nil {
		return err
	}
	defer cleanup()
	a, closeApp, err := benchdb.NewApp(ctx, pool, map[string]string{"SHALA_WEBHOOK_SECRET": webhookSecret,
		"SHALA_QUEUE_WORKERS": "0", "SHALA_BBB_TIMEOUT": "5s", "SHALA_PUBLIC_RATE": "100000", "SHALA_PUBLIC_BURST": "100000"}, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeApp()) }()
	base, stop, err := benchdb.Serve(ctx, a.Handler(), log)
	if err != nil {
		return err
	}
	defer stop()

	// The pool: equal servers with room for every lesson and a margin.
	capacity := (*starts * *roster * 5 / 4) / *nServers
	var servers []*bbbtest.Server
	for range *nServers {
		ts, stopTS := bbbtest.Start(bbbtest.Options{})
		defer stopTS()
		if _, err := a.BBBServers.Add(ctx, "bench", lesson.NewServer{URL: ts.URL, Secret: ts.Secret, Region: "shimla",
			Capacity: capacity, CPUCount: 8}); err != nil {
			return err
		}
		ts.SetLatency(*latency)
		servers = append(servers, ts)
	}

	// Groups and their moderator.
	if _, err := pool.Exec(ctx, `INSERT INTO moderator (user_id, display_name) VALUES ('bench-mod', 'Bench Teacher')`); err != nil {
		return err
	}
	mod := lesson.Caller{Role: lesson.RoleModerator, UserID: "bench-mod"}
	names := make([]string, *roster)
	for i := range names {
		names[i] = fmt.Sprintf("Student %d", i+1)
	}
	groups := make([]uuid.UUID, *starts)
	for i := range groups {
		g, _, err := a.LessonGroups.CreateGroup(ctx, mod, fmt.Sprintf("G-%d", i), "shimla", names)
		if err != nil {
			return err
		}
		groups[i] = g.ID
	}

	// Reference: bare creates at the same rate on the same servers.
	client := bbb.New(5*time.Second, nil)
	ref, refErrs := openLoop(*starts, *rate, func(i int) error {
		ts := servers[i%len(servers)]
		_, err := client.Create(ctx, bbb.Server{URL: ts.URL, Secret: ts.Secret, Algorithm: bbb.SHA256},
			bbb.CreateParams{MeetingID: "ref-" + uuid.NewString(), Name: "reference"})
		return err
	})
	for _, ts := range servers {
		for _, m := range ts.Meetings() {
			ts.Forget(m.ID)
		}
	}
	if refErrs > 0 {
		return fmt.Errorf("%d reference creates failed", refErrs)
	}

	// The burst: every server heartbeats just before it.
	if _, err := pool.Exec(ctx, `UPDATE bbb_server SET last_heartbeat_at = now()`); err != nil {
		return err
	}
	httpc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	got, errs := openLoop(*starts, *rate, func(i int) error {
		return startLesson(ctx, httpc, base, groups[i])
	})

	var perServer []float64
	rows, err := pool.Query(ctx, `SELECT booked FROM bbb_server`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var n float64
		if err := rows.Scan(&n); err != nil {
			return err
		}
		perServer = append(perServer, n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	sum := 0.0
	for _, n := range perServer {
		sum += n
	}
	mean := sum / float64(len(perServer))

	p50, p99 := pct(got, 50), pct(got, 99)
	r50, r99 := pct(ref, 50), pct(ref, 99)
	fmt.Printf("lessons: startLesson p50 %.1f ms p99 %.1f ms at %.0f/s over %d servers answering in %s; "+
		"bare BBB create p50 %.1f ms p99 %.1f ms (ratio p50 %.2f); spread max/mean users per server %.2f "+
		"(%d lessons × %d, %d errors; shared machine)\n",
		ms(p50), ms(p99), *rate, *nServers, *latency, ms(r50), ms(r99), float64(p50)/float64(r50),
		slices.Max(perServer)/mean, *starts, *roster, errs)
	return nil
}

// openLoop calls f n times at rate per second without waiting for earlier
// calls (as independent teachers would) and returns each call's latency
// and the number that failed.
func openLoop(n int, rate float64, f func(i int) error) ([]time.Duration, int) {
	lat := make([]time.Duration, n)
	failed := make([]bool, n)
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			t0 := time.Now()
			failed[i] = f(i) != nil
			lat[i] = time.Since(t0)
		})
	}
	wg.Wait()
	bad := 0
	for _, b := range failed {
		if b {
			bad++
		}
	}
	return lat, bad
}

func startLesson(ctx context.Context, c *http.Client, base string, group uuid.UUID) error {
	body, err := json.Marshal(map[string]any{"action": map[string]string{"name": "startLesson"},
		"input":             map[string]any{"groupId": group},
		"session_variables": map[string]string{"x-hasura-role": "moderator", "x-hasura-user-id": "bench-mod"},
		"request_query":     "mutation { startLesson }"})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/actions/startLesson", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hasura.SecretHeader, webhookSecret)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("startLesson: %d %s", resp.StatusCode, raw)
	}
	return nil
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
