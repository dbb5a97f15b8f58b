package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/logging"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/promtest"
	"github.com/shala-edu/shala/internal/queue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const secret = "test-webhook-secret"

type bundle struct {
	app    *app.App
	jobs   apptest.Signal // notified whenever a job finishes
	pool   *pgxpool.Pool
	queue  *queue.Client
	url    string
	reg    *prometheus.Registry
	client *http.Client
}

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func setup(t *testing.T) *bundle {
	t.Helper()
	return setupWith(t, pgtest.New(t), discard, nil)
}

func setupWithPool(t *testing.T, pool *pgxpool.Pool) *bundle {
	t.Helper()
	return setupWith(t, pool, discard, nil)
}

func setupWithLog(t *testing.T, pool *pgxpool.Pool, log *slog.Logger) *bundle {
	t.Helper()
	return setupWith(t, pool, log, nil)
}

// setupWith builds shala through its composition root (as serve does) on
// pool, with the test configuration changed by configure (if not nil), and
// serves it on a loopback port.
func setupWith(t *testing.T, pool *pgxpool.Pool, log *slog.Logger, configure func(*config.Config)) *bundle {
	t.Helper()
	return setupServer(t, pool, log, configure, nil)
}

// setupServer is setupWithLog with configure adjusting the configuration
// before shala is built and serve the HTTP server before it starts.
func setupServer(t *testing.T, pool *pgxpool.Pool, log *slog.Logger, configure func(*config.Config), serve func(*http.Server)) *bundle {
	t.Helper()
	cfg := apptest.Config(t)
	cfg.WebhookSecret = secret
	cfg.MaxBodyBytes = 64 << 10
	cfg.OpenRosaMaxBytes = 256 << 10
	cfg.OperatorPassword = operatorPassword
	cfg.QueueFetchCooldown = 5 * time.Millisecond
	if configure != nil {
		configure(cfg)
	}
	a := apptest.NewWithLog(t, cfg, log, app.Options{Pool: pool})
	srv := httptest.NewUnstartedServer(a.Handler())
	if serve != nil {
		serve(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &bundle{app: a, jobs: apptest.JobsFinished(t, a), pool: pool, queue: a.Queue, url: srv.URL, reg: a.Registry, client: srv.Client()}
}

// startWorkers starts the River client; it is stopped when the test ends.
func (b *bundle) startWorkers(t *testing.T) {
	t.Helper()
	apptest.Start(t, b.app)
}

func (b *bundle) post(t *testing.T, path string, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hasura-graphql-engine/v2.48.3")
	req.Header.Set(hasura.SecretHeader, secret)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func payload(t *testing.T, file string, vars map[string]string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range vars {
		s = strings.ReplaceAll(s, "{{"+k+"}}", v)
	}
	return []byte(s)
}

func (b *bundle) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitFor returns once cond holds, checking it again each time a job
// finishes.
func (b *bundle) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	b.jobs.Await(t, what, cond)
}

func (b *bundle) insertPing(t *testing.T, age time.Duration) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := b.pool.QueryRow(context.Background(),
		`INSERT INTO ping (message, created_at) VALUES ('नमस्ते', now() - make_interval(secs => $1)) RETURNING id`,
		age.Seconds()).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestSameEventDeliveredThreeTimesConcurrentlyHasOneEffect(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pingID := b.insertPing(t, 0)
	eventID := uuid.New()
	body := payload(t, "ping_created.json", map[string]string{"PING_ID": pingID.String(), "EVENT_ID": eventID.String()})

	var wg sync.WaitGroup
	acks := make([]map[string]any, 3)
	statuses := make([]int, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := b.post(t, "/events/ping_created", body, nil)
			statuses[i] = resp.StatusCode
			_ = json.NewDecoder(resp.Body).Decode(&acks[i])
		}()
	}
	wg.Wait()
	dups := 0
	for i := range 3 {
		if statuses[i] != 200 {
			t.Fatalf("delivery %d: status %d, want 200", i, statuses[i])
		}
		if acks[i]["duplicate"] == true {
			dups++
		}
	}
	if dups != 2 {
		t.Errorf("%d deliveries acknowledged as duplicates, want 2", dups)
	}
	if n := b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'ping.pong'"); n != 1 {
		t.Errorf("%d pong jobs enqueued, want 1", n)
	}
	if n := b.count(t, "SELECT count(*) FROM webhook_inbox WHERE event_id = $1 AND trace_id = '0af7651916cd43dd8448eb211c80319c'", eventID); n != 1 {
		t.Errorf("%d inbox rows with the trace id, want 1", n)
	}

	// A different delivery for the same row (a console "invoke", or Hasura
	// re-creating the event) is a new event but the same natural key.
	manual := payload(t, "ping_created.json", map[string]string{"PING_ID": pingID.String(), "EVENT_ID": uuid.NewString()})
	manual = bytes.Replace(manual, []byte(`"op": "INSERT"`), []byte(`"op": "MANUAL"`), 1)
	if resp := b.post(t, "/events/ping_created", manual, nil); resp.StatusCode != 200 {
		t.Fatalf("manual invoke: status %d", resp.StatusCode)
	}

	b.startWorkers(t)
	b.waitFor(t, "the pong", func() bool { return b.count(t, "SELECT count(*) FROM pong WHERE ping_id = $1", pingID) == 1 })
	b.waitFor(t, "jobs to finish", func() bool {
		return b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'ping.pong' AND state <> 'completed'") == 0
	})
	if n := b.count(t, "SELECT count(*) FROM pong WHERE ping_id = $1 AND event_id = $2", pingID, eventID); n != 1 {
		t.Errorf("pong rows for the ping caused by the first event: %d, want 1", n)
	}
	if n := b.count(t, "SELECT count(*) FROM pong"); n != 1 {
		t.Errorf("%d pongs in all, want exactly 1", n)
	}

	if got := promtest.Value(t, b.reg, "shala_webhook_requests_total", map[string]string{"kind": "event", "name": "ping_created", "outcome": "duplicate"}); got != 2 {
		t.Errorf("duplicate outcome counter %v, want 2", got)
	}
}

func TestReconcileCronEnqueuesPingsWhoseEventNeverCame(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lost := b.insertPing(t, 5*time.Minute) // old enough: its event never arrived
	fresh := b.insertPing(t, 0)            // too young: Hasura is still delivering it
	body := payload(t, "reconcile_cron.json", map[string]string{"EVENT_ID": uuid.NewString()})
	for range 2 {
		if resp := b.post(t, "/cron/reconcile", body, nil); resp.StatusCode != 200 {
			t.Fatalf("cron: status %d", resp.StatusCode)
		}
	}
	if n := b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'ping.reconcile'"); n != 1 {
		t.Errorf("%d reconcile jobs after the same cron event twice, want 1", n)
	}
	b.startWorkers(t)
	b.waitFor(t, "the lost ping's pong", func() bool {
		return b.count(t, "SELECT count(*) FROM pong WHERE ping_id = $1 AND event_id IS NULL", lost) == 1
	})
	if n := b.count(t, "SELECT count(*) FROM pong WHERE ping_id = $1", fresh); n != 0 {
		t.Errorf("the fresh ping got a pong from the sweep")
	}
}

func TestPingAction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	call := func(msg any, role string) (*http.Response, map[string]any) {
		body, _ := json.Marshal(map[string]any{
			"action":            map[string]any{"name": "ping"},
			"input":             map[string]any{"message": msg},
			"session_variables": map[string]any{"x-hasura-role": role, "x-hasura-user-id": "42"},
			"request_query":     "mutation { ping(message: \"x\") { id message receivedAt } }",
		})
		resp := b.post(t, "/actions/ping", body, nil)
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	resp, out := call("  नमस्ते  ", "school")
	if resp.StatusCode != 200 || out["message"] != "नमस्ते" || out["id"] == nil || out["receivedAt"] == nil {
		t.Fatalf("ok call: %d %v", resp.StatusCode, out)
	}
	if n := b.count(t, "SELECT count(*) FROM ping WHERE id = $1 AND sent_by = '42'", out["id"]); n != 1 {
		t.Errorf("ping row with sender: %d, want 1", n)
	}
	resp, out = call("", "school")
	ext, _ := out["extensions"].(map[string]any)
	if resp.StatusCode != 400 || ext["code"] != "INVALID_INPUT" || !strings.HasPrefix(fmt.Sprint(out["message"]), "message:") {
		t.Errorf("empty message: %d %v", resp.StatusCode, out)
	}
	resp, out = call(strings.Repeat("अ", 501), "school")
	if resp.StatusCode != 400 {
		t.Errorf("501 characters: %d %v", resp.StatusCode, out)
	}
	resp, out = call("hi", "anonymous")
	ext, _ = out["extensions"].(map[string]any)
	if resp.StatusCode != 403 || ext["code"] != "FORBIDDEN" {
		t.Errorf("anonymous: %d %v", resp.StatusCode, out)
	}
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	event := payload(t, "ping_created.json", map[string]string{"PING_ID": uuid.NewString(), "EVENT_ID": uuid.NewString()})
	tests := []struct {
		name, path string
		body       []byte
		hdr        map[string]string
		status     int
		code       string
		mention    string
	}{
		{"no secret", "/events/ping_created", event, map[string]string{hasura.SecretHeader: ""}, 401, "UNAUTHORIZED", ""},
		{"wrong secret", "/actions/ping", event, map[string]string{hasura.SecretHeader: "nope"}, 401, "UNAUTHORIZED", ""},
		{"no secret, unknown action", "/actions/nope", event, map[string]string{hasura.SecretHeader: ""}, 401, "UNAUTHORIZED", ""},
		{"unknown action", "/actions/launchMissiles", event, nil, 404, "NOT_FOUND", "launchMissiles"},
		{"unknown trigger", "/events/nope_created", event, nil, 404, "NOT_FOUND", "nope_created"},
		{"unknown cron", "/cron/nope", event, nil, 404, "NOT_FOUND", "nope"},
		{"over the cap", "/events/ping_created", bytes.Repeat([]byte(" "), 65<<10), nil, 413, "BODY_TOO_LARGE", ""},
		{"not json", "/events/ping_created", []byte("<event/>"), nil, 400, "INVALID_INPUT", "body"},
		{"wrong shape", "/events/ping_created", []byte(`{"id": 7, "event": []}`), nil, 400, "INVALID_INPUT", "id"},
		{"ping id not a uuid", "/events/ping_created", bytes.Replace(event, []byte(`"id": "`), []byte(`"id": "x`), 1), nil, 400, "INVALID_INPUT", "event.data.new.id"},
		{"action body", "/actions/ping", []byte(`{"input": {}}`), nil, 400, "INVALID_INPUT", "action.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := b.post(t, tt.path, tt.body, tt.hdr)
			var out struct {
				Message    string
				Extensions map[string]any
			}
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != tt.status || out.Extensions["code"] != tt.code || !strings.Contains(out.Message, tt.mention) {
				t.Errorf("got %d %q %v, want %d %s mentioning %q", resp.StatusCode, out.Message, out.Extensions, tt.status, tt.code, tt.mention)
			}
		})
	}
	// Nothing was recorded for any of them.
	if n := b.count(t, "SELECT count(*) FROM webhook_inbox"); n != 0 {
		t.Errorf("%d inbox rows after bad deliveries, want 0", n)
	}
}

func TestDatabaseDownAnswers503WithRetryAfter(t *testing.T) {
	t.Parallel()
	// A pool on a port where no database listens: every acquire fails the
	// way it does when Postgres is down or unreachable.
	dead, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/shala?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	b := setupWithPool(t, dead)
	body := payload(t, "ping_created.json", map[string]string{"PING_ID": uuid.NewString(), "EVENT_ID": uuid.NewString()})
	resp := b.post(t, "/events/ping_created", body, nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != hasura.RetryAfterSeconds {
		t.Errorf("status %d Retry-After %q, want 503 with Retry-After %s", resp.StatusCode, resp.Header.Get("Retry-After"), hasura.RetryAfterSeconds)
	}
	resp = b.post(t, "/cron/reconcile", payload(t, "reconcile_cron.json", map[string]string{"EVENT_ID": uuid.NewString()}), nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("cron: status %d, want 503 with Retry-After", resp.StatusCode)
	}
	r, err := b.client.Get(b.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 503 {
		t.Errorf("readyz with the database down: %d, want 503", r.StatusCode)
	}
	r, _ = b.client.Get(b.url + "/healthz")
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Errorf("healthz: %d, want 200 (the process is up)", r.StatusCode)
	}
}

// A burst of readiness probes (unauthenticated) never takes the pool: one
// check runs at a time, and none holds a connection while it asks for
// another. Before, as many probes as the pool had connections each held one
// and waited for a second, and every request stalled for 3 s.
func TestABurstOfReadinessProbesLeavesThePoolAlone(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := setupWithPool(t, pool)
	const probes = 20
	codes := make([]int, probes)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range probes {
		wg.Go(func() {
			<-start
			r, err := b.client.Get(b.url + "/readyz")
			if err != nil {
				t.Error(err)
				return
			}
			r.Body.Close()
			codes[i] = r.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("probe %d: %d, want 200 (codes %v)", i, c, codes)
		}
	}
}

func TestProbesAndMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		r, err := b.client.Get(b.url + p)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Errorf("%s: %d", p, r.StatusCode)
		}
	}
	b.post(t, "/events/ping_created", payload(t, "ping_created.json", map[string]string{"PING_ID": uuid.NewString(), "EVENT_ID": uuid.NewString()}), nil)
	r, err := b.client.Get(b.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	text, _ := io.ReadAll(r.Body)
	for _, want := range []string{
		`shala_http_request_duration_seconds_count{method="POST",route="/events/ping_created",status="200"} 1`,
		`shala_webhook_requests_total{kind="event",name="ping_created",outcome="ok"} 1`,
		`shala_queue_jobs{kind="ping.pong",state="available"} 1`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestDeliveryLogsCarryRequestEventAndTraceIDs(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := setupWithLog(t, pgtest.New(t), logging.New(&logs, slog.LevelInfo))
	eventID := uuid.NewString()
	body := payload(t, "ping_created.json", map[string]string{"PING_ID": uuid.NewString(), "EVENT_ID": eventID})
	b.post(t, "/events/ping_created", body, map[string]string{"X-Request-Id": "hasura-req-42"})
	b.post(t, "/events/ping_created", body, map[string]string{"X-Request-Id": "hasura-req-43"}) // duplicate: logged
	var rec map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "duplicate delivery acknowledged" {
			rec = m
		}
	}
	if rec == nil {
		t.Fatalf("no duplicate-delivery record in %s", logs.String())
	}
	want := map[string]any{"request_id": "hasura-req-43", "event_id": eventID, "trace_id": "0af7651916cd43dd8448eb211c80319c", "trigger": "ping_created", "op": "INSERT"}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("log record %s = %v, want %v", k, rec[k], v)
		}
	}
}
