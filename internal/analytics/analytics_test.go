package analytics_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shala-edu/shala/internal/analytics"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/promtest"
)

// batchServer speaks PostHog's capture API: POST /batch/ with
// {"api_key", "batch": [{"type":"capture","uuid","event","distinct_id","timestamp","properties",…}]},
// answering {"status":1}. Failing makes it answer 503 (as PostHog does when
// ingestion is down); hang makes it hold every call until the client gives up.
// A batch holding an event whose properties say "poison" is refused with
// 400, as PostHog refuses a batch it cannot parse. arrived gets a value
// (when it has room) for every call.
type batchServer struct {
	mu      sync.Mutex
	keys    []string
	events  []map[string]any
	failing bool // 503, as when ingestion is down
	hang    bool
	answer  int // when not 0: every call is answered with this status
	// refuseFrom: when not 0, the calls from this one on (1 is the first)
	// are answered 400, as by a PostHog that starts refusing everything.
	refuseFrom int
	// refuseCall: when not 0, that call (1 is the first) is answered 400,
	// as by a proxy refusing one request.
	refuseCall int
	// onCall, when set, runs before call n (1 is the first) is answered.
	onCall func(n int)
	calls  int // every call, answered or not
	// twice: a call carried the same event twice; first: the first
	// call's events, in order, whatever its answer.
	twice   bool
	first   []map[string]any
	arrived chan struct{}
}

func (b *batchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/batch/" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, `{"type":"validation_error","code":"invalid_payload"}`, http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	failing, hang, answer := b.failing, b.hang, b.answer
	b.calls++
	if b.refuseFrom != 0 && b.calls >= b.refuseFrom || b.refuseCall == b.calls {
		answer = http.StatusBadRequest
	}
	onCall, n := b.onCall, b.calls
	b.mu.Unlock()
	if onCall != nil {
		onCall(n)
	}
	select {
	case b.arrived <- struct{}{}:
	default:
	}
	if hang {
		// Read the body first: only then does net/http see the client
		// hang up, and end the request's context.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
		return
	}
	if answer != 0 {
		http.Error(w, `{"type":"error"}`, answer)
		return
	}
	if failing {
		http.Error(w, `{"type":"server_error"}`, http.StatusServiceUnavailable)
		return
	}
	var body struct {
		APIKey string           `json:"api_key"`
		Batch  []map[string]any `json:"batch"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, `{"type":"validation_error","code":"invalid_payload"}`, http.StatusBadRequest)
		return
	}
	if body.APIKey == "" {
		http.Error(w, `{"type":"authentication_error","code":"invalid_api_key"}`, http.StatusUnauthorized)
		return
	}
	b.mu.Lock()
	if b.first == nil {
		b.first = body.Batch
	}
	b.mu.Unlock()
	seen := map[any]bool{}
	for _, e := range body.Batch {
		if seen[e["uuid"]] {
			b.mu.Lock()
			b.twice = true
			b.mu.Unlock()
		}
		seen[e["uuid"]] = true
	}
	for _, e := range body.Batch {
		if props, _ := e["properties"].(map[string]any); props["poison"] == true {
			http.Error(w, `{"type":"validation_error","code":"invalid_payload"}`, http.StatusBadRequest)
			return
		}
	}
	b.mu.Lock()
	b.keys = append(b.keys, body.APIKey)
	b.events = append(b.events, body.Batch...)
	b.mu.Unlock()
	_, _ = w.Write([]byte(`{"status":1}`))
}

func (b *batchServer) received() []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]map[string]any(nil), b.events...)
}

// callCount is how many calls arrived.
func (b *batchServer) callCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

func (b *batchServer) answerWith(status int) {
	b.mu.Lock()
	b.answer = status
	b.mu.Unlock()
}

func (b *batchServer) set(failing, hang bool) {
	b.mu.Lock()
	b.failing, b.hang = failing, hang
	b.mu.Unlock()
}

type bundle struct {
	pool    *pgxpool.Pool
	posthog *batchServer
	sender  *analytics.Sender
	reg     *prometheus.Registry
	url     string // the PostHog server's
}

// setup gives a fresh database, a PostHog batch server and a sender to it
// with key (none: events are discarded).
func setup(t *testing.T, key string) *bundle {
	t.Helper()
	b := &bundle{pool: pgtest.New(t), posthog: &batchServer{arrived: make(chan struct{}, 1)}, reg: prometheus.NewRegistry()}
	srv := httptest.NewServer(b.posthog)
	t.Cleanup(srv.Close)
	b.url = srv.URL
	b.sender = analytics.NewSender(b.pool, key, srv.URL, 2*time.Second, slog.New(slog.DiscardHandler), analytics.NewMetrics(b.reg, b.pool))
	t.Cleanup(func() { _ = b.sender.Close() })
	return b
}

func (b *bundle) count(t *testing.T, where string) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM product_event WHERE "+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// outcome is shala_product_events_total{outcome=name}.
func (b *bundle) outcome(t *testing.T, name string) float64 {
	t.Helper()
	return promtest.Value(t, b.reg, "shala_product_events_total", map[string]string{"outcome": name})
}

// gauge is the unlabelled gauge name, as scraped now.
func (b *bundle) gauge(t *testing.T, name string) float64 {
	t.Helper()
	return promtest.Value(t, b.reg, name, nil)
}

// work runs one analytics.send job.
func (b *bundle) work(t *testing.T) {
	t.Helper()
	if err := (&analytics.SendWorker{Sender: b.sender}).Work(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// exec runs sql (rows the test starts from).
func (b *bundle) exec(t *testing.T, sql string) {
	t.Helper()
	if _, err := b.pool.Exec(context.Background(), sql); err != nil {
		t.Fatal(err)
	}
}

// backlog inserts n events, the i-th (from 1) an hour ago plus i seconds,
// each refused attempts times before, with property seq = i, and bad
// (PostHog refuses it: property poison) where the SQL predicate on i holds.
func (b *bundle) backlog(t *testing.T, n, attempts int, bad string) {
	t.Helper()
	b.exec(t, fmt.Sprintf(`INSERT INTO product_event (event, distinct_id, attempts, occurred_at, properties)
		SELECT 'server_started', 'shala', %d, now() - interval '1 hour' + make_interval(secs => i),
			jsonb_build_object('seq', i) || CASE WHEN %s THEN '{"poison": true}'::jsonb ELSE '{}' END
		FROM generate_series(1, %d) i`, attempts, bad, n))
}

// record records n events by shala with props.
func (b *bundle) record(t *testing.T, n int, props map[string]any) {
	t.Helper()
	for range n {
		if err := analytics.Record(context.Background(), b.pool, analytics.System, "server_started", props); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("recorded events reach PostHog once, with their row ids as uuids", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if err := analytics.Record(ctx, tx, "7f3c2a10-0000-4000-8000-000000000001", "certificate_issued",
				map[string]any{"reason": "TRANSFER", "transfer": true}); err != nil {
				return err
			}
			return analytics.Record(ctx, tx, analytics.System, "server_started", nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		n, err := b.sender.Send(ctx)
		if err != nil || n != 2 {
			t.Fatalf("Send = %d, %v; want 2, nil", n, err)
		}
		got := b.posthog.received()
		if len(got) != 2 {
			t.Fatalf("PostHog got %d events, want 2: %v", len(got), got)
		}
		byName := map[string]map[string]any{}
		for _, e := range got {
			byName[e["event"].(string)] = e
		}
		var id string
		var occurred time.Time
		if err := b.pool.QueryRow(ctx, `SELECT id::text, occurred_at FROM product_event WHERE event = 'certificate_issued'`).Scan(&id, &occurred); err != nil {
			t.Fatal(err)
		}
		e := byName["certificate_issued"]
		props, _ := e["properties"].(map[string]any)
		if e["type"] != "capture" || e["uuid"] != id ||
			e["distinct_id"] != "7f3c2a10-0000-4000-8000-000000000001" || props["reason"] != "TRANSFER" || props["transfer"] != true {
			t.Errorf("got event %v, want certificate_issued with uuid %s and its properties", e, id)
		}
		if ts, err := time.Parse(time.RFC3339Nano, fmt.Sprint(e["timestamp"])); err != nil || !ts.Equal(occurred) {
			t.Errorf("got timestamp %v (%v), want the time it was recorded, %v", e["timestamp"], err, occurred)
		}
		if props["$geoip_disable"] != true || props["$process_person_profile"] != false {
			t.Errorf("got properties %v, want no geolocation and no person profile", props)
		}
		if s := byName["server_started"]; s["distinct_id"] != "shala" {
			t.Errorf("got server_started %v, want it by shala", s)
		}
		if unsent := b.count(t, "sent_at IS NULL"); unsent != 0 {
			t.Errorf("got %d unsent events after Send, want 0", unsent)
		}
		if n, err := b.sender.Send(ctx); err != nil || n != 0 {
			t.Errorf("second Send = %d, %v; want 0, nil", n, err)
		}
		if len(b.posthog.received()) != 2 || b.outcome(t, "sent") != 2 {
			t.Errorf("got %d events at PostHog and sent=%v, want 2 and 2", len(b.posthog.received()), b.outcome(t, "sent"))
		}
	})

	t.Run("an event of a transaction that rolled back is never sent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		boom := errors.New("boom")
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			if err := analytics.Record(ctx, tx, analytics.System, "server_started", nil); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if n, err := b.sender.Send(ctx); err != nil || n != 0 || len(b.posthog.received()) != 0 {
			t.Errorf("Send = %d, %v with %d at PostHog; want nothing", n, err, len(b.posthog.received()))
		}
	})

	t.Run("events of a call PostHog could not take stay as they were for the next run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		if err := analytics.Record(ctx, b.pool, analytics.System, "server_started", map[string]any{"version": "test"}); err != nil {
			t.Fatal(err)
		}
		b.posthog.set(true, false)
		n, err := b.sender.Send(ctx)
		if n != 1 || !errors.Is(err, analytics.ErrPostHog) {
			t.Fatalf("Send with PostHog failing = %d, %v; want 1 and ErrPostHog", n, err)
		}
		// An outage is not a refusal: the event keeps its place.
		if unsent := b.count(t, "sent_at IS NULL AND attempts = 0"); unsent != 1 || b.outcome(t, "failed") != 1 {
			t.Fatalf("got %d unsent with no refusal and failed=%v, want 1 and 1", unsent, b.outcome(t, "failed"))
		}
		if n := b.gauge(t, "shala_product_events_unsent"); n != 1 || b.gauge(t, "shala_product_events_oldest_unsent_seconds") <= 0 {
			t.Errorf("got unsent=%v oldest=%v, want 1 and its age", n, b.gauge(t, "shala_product_events_oldest_unsent_seconds"))
		}
		b.posthog.set(false, false)
		if n, err := b.sender.Send(ctx); n != 1 || err != nil {
			t.Fatalf("Send after PostHog recovered = %d, %v; want 1, nil", n, err)
		}
		if got := b.posthog.received(); len(got) != 1 || b.count(t, "sent_at IS NOT NULL") != 1 {
			t.Errorf("got %d events at PostHog, want the one", len(got))
		}
		if n := b.gauge(t, "shala_product_events_unsent"); n != 0 || b.gauge(t, "shala_product_events_oldest_unsent_seconds") != 0 {
			t.Errorf("got unsent=%v oldest=%v after the send, want 0 and 0", n, b.gauge(t, "shala_product_events_oldest_unsent_seconds"))
		}
	})

	t.Run("a PostHog that never answers costs one timeout, not the run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		if err := analytics.Record(ctx, b.pool, analytics.System, "server_started", nil); err != nil {
			t.Fatal(err)
		}
		b.posthog.set(false, true)
		if _, err := b.sender.Send(ctx); !errors.Is(err, analytics.ErrPostHog) {
			t.Fatalf("Send to a hanging PostHog = %v, want ErrPostHog after the timeout", err)
		}
		if unsent := b.count(t, "sent_at IS NULL"); unsent != 1 {
			t.Errorf("got %d unsent, want 1", unsent)
		}
	})

	t.Run("without a key events are discarded an hour after they happened", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "")
		if err := analytics.Record(ctx, b.pool, analytics.System, "server_started", nil); err != nil {
			t.Fatal(err)
		}
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at)
			SELECT 'server_started', 'shala', now() - interval '61 minutes' FROM generate_series(1, 3)`)
		if n, err := b.sender.Send(ctx); n != 3 || err != nil {
			t.Fatalf("Send without a key = %d, %v; want 3, nil", n, err)
		}
		if left := b.count(t, "occurred_at > now() - interval '1 minute'"); left != 1 || b.count(t, "true") != 1 ||
			len(b.posthog.received()) != 0 || b.outcome(t, "discarded") != 3 {
			t.Errorf("got %d rows left, %d at PostHog, discarded=%v; want the recent one, 0, 3",
				b.count(t, "true"), len(b.posthog.received()), b.outcome(t, "discarded"))
		}
	})

	t.Run("a large backlog goes in batches of SendBatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		if _, err := b.pool.Exec(ctx, `INSERT INTO product_event (event, distinct_id) SELECT 'server_started', 'shala' FROM generate_series(1, $1)`,
			analytics.SendBatch+5); err != nil {
			t.Fatal(err)
		}
		b.work(t)
		b.posthog.mu.Lock()
		calls := len(b.posthog.keys)
		b.posthog.mu.Unlock()
		if got := len(b.posthog.received()); got != analytics.SendBatch+5 || calls != 2 {
			t.Errorf("got %d events in %d calls, want %d in 2", got, calls, analytics.SendBatch+5)
		}
	})

	t.Run("the job starts no call its time cannot hold", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test") // a 2 s call timeout
		if err := analytics.Record(ctx, b.pool, analytics.System, "server_started", nil); err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		// Nothing done yet: no snooze (which would run it again at once),
		// the next run takes the events.
		if err := (&analytics.SendWorker{Sender: b.sender}).Work(short, nil); err != nil {
			t.Errorf("Work with 3 s left = %v, want nil (a call needs 2 s + 2 s)", err)
		}
		if len(b.posthog.received()) != 0 || b.count(t, "sent_at IS NULL") != 1 {
			t.Error("a call was made without the time for it")
		}
	})

	t.Run("an event PostHog refuses is set aside and kept; the others get through in the same run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.record(t, 2, nil)
		b.record(t, 1, map[string]any{"poison": true})
		b.record(t, 3, nil)
		b.work(t)
		if sent, kept := b.count(t, "sent_at IS NOT NULL"), b.count(t, "sent_at IS NULL AND refused_alone = 1 AND properties ? 'poison'"); sent != 5 || kept != 1 || b.outcome(t, "refused") != 1 {
			t.Errorf("got %d sent, %d poison kept, refused=%v; want the 5 others sent and the poison kept", sent, kept, b.outcome(t, "refused"))
		}
		// The poison does not make the backlog look stuck; it is counted on its own.
		if b.gauge(t, "shala_product_events_refused") != 1 || b.gauge(t, "shala_product_events_oldest_unsent_seconds") != 0 {
			t.Errorf("got refused=%v oldest=%v, want 1 and 0", b.gauge(t, "shala_product_events_refused"), b.gauge(t, "shala_product_events_oldest_unsent_seconds"))
		}
	})

	t.Run("a refused event with fewer refusals does not hold up a backlog with more", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, attempts, properties)
			SELECT 'server_started', 'shala', 12, '{}'::jsonb FROM generate_series(1, 30)
			UNION ALL SELECT 'server_started', 'shala', 6, '{"poison": true}'::jsonb`)
		b.work(t)
		if sent := b.count(t, "sent_at IS NOT NULL"); sent != 30 {
			t.Errorf("got %d of the backlog sent in one run, want all 30", sent)
		}
	})

	t.Run("a stored number no float holds neither blocks sending nor the events behind it", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, properties, occurred_at)
			VALUES ('server_started', 'shala', '{"n": 1e400}', now() - interval '1 minute')`)
		b.record(t, 2, nil)
		if err := (&analytics.SendWorker{Sender: b.sender}).Work(ctx, nil); err != nil {
			t.Fatalf("Work with a number jsonb takes and float64 does not = %v", err)
		}
		if sent, kept := b.count(t, "sent_at IS NOT NULL"), b.count(t, "sent_at IS NULL AND refused_alone > 0"); sent != 2 || kept != 1 {
			t.Errorf("got %d sent and %d kept, want the 2 others sent and the one this PostHog cannot parse kept", sent, kept)
		}
	})

	t.Run("events refused with others go after new ones, and all drain in one run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, attempts)
			SELECT 'server_started', 'shala', 3 FROM generate_series(1, 200)`)
		b.record(t, 1, map[string]any{"fresh": true})
		if n, err := b.sender.Send(ctx); n != analytics.SendBatch || err != nil || b.count(t, "sent_at IS NOT NULL AND properties ? 'fresh'") != 1 {
			t.Fatalf("first Send = %d, %v; want a full batch with the new event first", n, err)
		}
		b.work(t)
		calls := b.posthog.callCount()
		if unsent := b.count(t, "sent_at IS NULL"); unsent != 0 || calls != 3 {
			t.Errorf("got %d unsent after %d calls, want every event sent, 100 a call", unsent, calls)
		}
	})

	t.Run("only a refusal of the payload counts against events", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			status  int
			refusal bool
		}{
			{http.StatusBadRequest, true}, {http.StatusRequestEntityTooLarge, true}, {http.StatusUnprocessableEntity, true},
			{http.StatusUnauthorized, false}, {http.StatusForbidden, false}, {http.StatusTooManyRequests, false},
			{http.StatusInternalServerError, false}, {http.StatusServiceUnavailable, false},
		} {
			t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
				t.Parallel()
				b := setup(t, "phc_test")
				b.record(t, 2, nil)
				b.posthog.answerWith(tc.status)
				_, err := b.sender.Send(ctx)
				if got := errors.Is(err, analytics.ErrPostHog); got == tc.refusal {
					t.Errorf("Send answered %d = %v; want ErrPostHog: %v", tc.status, err, !tc.refusal)
				}
				want := 0
				if tc.refusal {
					want = 1
				}
				if n := b.count(t, fmt.Sprintf("sent_at IS NULL AND attempts = %d", want)); n != 2 {
					t.Errorf("got %d events with %d attempts after a %d, want 2", n, want, tc.status)
				}
			})
		}
	})

	t.Run("a refused event is sent once PostHog takes it", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.record(t, 1, nil)
		b.exec(t, `INSERT INTO product_event (event, distinct_id, sent_at) VALUES ('server_started', 'shala', now())`)
		b.posthog.answerWith(http.StatusBadRequest)
		b.work(t)
		b.posthog.answerWith(0)
		b.work(t)
		if sent := b.count(t, "sent_at IS NOT NULL"); sent != 2 {
			t.Errorf("got %d sent, want the event sent once PostHog took it again", sent)
		}
	})

	t.Run("a refusal behind a redirect is a refusal", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, b.url+r.URL.Path, http.StatusPermanentRedirect)
		}))
		t.Cleanup(redirect.Close)
		s := analytics.NewSender(b.pool, "phc_test", redirect.URL, 2*time.Second, slog.New(slog.DiscardHandler), nil)
		t.Cleanup(func() { _ = s.Close() })
		b.record(t, 2, nil)
		b.posthog.answerWith(http.StatusBadRequest)
		if _, err := s.Send(ctx); err != nil {
			t.Fatalf("Send through a redirect to a refusal = %v, want a refusal (nil)", err)
		}
		if n := b.count(t, "attempts = 1"); n != 2 {
			t.Errorf("got %d events with one refusal, want 2", n)
		}
	})

	t.Run("a PostHog refusing everything shows as an outage, costs a few calls, and the backlog drains fast after", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at)
			SELECT 'server_started', 'shala', now() - interval '3 hours' FROM generate_series(1, 300)`)
		b.posthog.answerWith(http.StatusBadRequest)
		b.work(t)
		b.posthog.mu.Lock()
		calls := b.posthog.calls
		b.posthog.calls = 0
		b.posthog.mu.Unlock()
		if calls > analytics.MaxRefusedCalls {
			t.Errorf("a run against a PostHog refusing everything made %d calls, want a few", calls)
		}
		if age := b.gauge(t, "shala_product_events_oldest_unsent_seconds"); age < 3*3600 {
			t.Errorf("oldest unsent = %v s while PostHog refuses everything, want the backlog's age (3 h)", age)
		}
		b.posthog.answerWith(0)
		b.work(t)
		calls = b.posthog.callCount()
		if sent := b.count(t, "sent_at IS NOT NULL"); sent != 300 || calls > 10 {
			t.Errorf("after PostHog recovered: %d sent in %d calls, want 300 in a few", sent, calls)
		}
	})

	t.Run("a bad event costs a few calls wherever it sits in a backlog", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name          string
			attempts, at  int // the backlog's refusals so far; the bad event's place in it
			events, calls int // the backlog's size; the most calls one run may make
		}{
			{"new events, bad one at 1", 0, 1, 300, 20},
			{"new events, bad one at 50", 0, 50, 300, 20},
			{"new events, bad one at 100", 0, 100, 300, 20},
			{"new events, bad one at 150", 0, 150, 300, 20},
			{"refused three times, bad one at 100", 3, 100, 200, 20},
			{"refused seven times, bad one at 50", 7, 50, 1000, 26},
			{"refused ten times, bad one at 150", 10, 150, 2000, 36},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, "phc_test")
				b.backlog(t, tc.events, tc.attempts, fmt.Sprintf("i = %d", tc.at))
				b.work(t)
				calls := b.posthog.callCount()
				if sent, kept := b.count(t, "sent_at IS NOT NULL"), b.count(t, "sent_at IS NULL AND properties ? 'poison'"); sent != tc.events-1 || kept != 1 {
					t.Errorf("got %d sent and the bad one kept %d times, want %d and 1", sent, kept, tc.events-1)
				}
				if calls > tc.calls {
					t.Errorf("got %d calls, want at most %d: the search halves, it does not step through the backlog", calls, tc.calls)
				}
			})
		}
	})

	t.Run("a refusal of one call costs two more calls, whatever the backlog's refusals", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, attempts) SELECT 'server_started', 'shala', 7 FROM generate_series(1, 2000)`)
		b.posthog.mu.Lock()
		b.posthog.refuseCall = 3
		b.posthog.mu.Unlock()
		b.work(t)
		calls := b.posthog.callCount()
		if sent := b.count(t, "sent_at IS NOT NULL"); sent != 2000 || calls != 22 {
			t.Errorf("got %d sent in %d calls, want 2000 in 20 + the refused one's two halves", sent, calls)
		}
	})

	t.Run("bad events scattered through a backlog are all set aside in one run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.backlog(t, 300, 0, "i IN (10, 90, 130, 210, 290)")
		b.work(t)
		if sent, kept := b.count(t, "sent_at IS NOT NULL"), b.count(t, "sent_at IS NULL AND refused_alone = 1 AND refused_for_itself"); sent != 295 || kept != 5 {
			t.Errorf("got %d sent and %d refused for themselves, want 295 and the 5 bad ones (more than %d refusals, never that many in a row)",
				sent, kept, analytics.MaxRefusedCalls)
		}
	})

	t.Run("bad events next to each other do not look like a PostHog refusing everything", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name     string
			from, to int // the bad events' places among 300
			runs     int
		}{
			// At the head, nothing is accepted before MaxRefusedCalls
			// refusals: that run cannot tell them from a PostHog refusing
			// everything, and the next sends the rest (they go last).
			{"three at the head", 1, 3, 2},
			{"three after the first call", 101, 103, 1},
			{"twenty together", 51, 70, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, "phc_test")
				b.backlog(t, 300, 0, fmt.Sprintf("i BETWEEN %d AND %d", tc.from, tc.to))
				for range tc.runs {
					b.work(t)
				}
				bad := tc.to - tc.from + 1
				if sent, kept := b.count(t, "sent_at IS NOT NULL"), b.count(t, "sent_at IS NULL AND refused_for_itself"); sent != 300-bad || kept != bad {
					t.Errorf("got %d sent and %d refused for themselves in %d runs, want %d and %d", sent, kept, tc.runs, 300-bad, bad)
				}
			})
		}
	})

	t.Run("many bad events spread through a long backlog do not end the run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.backlog(t, 1500, 0, "i % 50 = 25")
		b.work(t)
		if sent, kept := b.count(t, "sent_at IS NOT NULL"), b.count(t, "sent_at IS NULL AND refused_for_itself"); sent != 1470 || kept != 30 {
			t.Errorf("got %d sent and %d refused for themselves, want 1470 and 30 in one run (over %d refusals, never %d without an accepted call)",
				sent, kept, analytics.MaxRefusedSinceAccepted, analytics.MaxRefusedSinceAccepted)
		}
	})

	t.Run("an event is refused for itself only with PostHog accepting around it", func(t *testing.T) {
		t.Parallel()
		insert := func(t *testing.T, b *bundle, n, bad int, pad string) {
			t.Helper()
			if _, err := b.pool.Exec(ctx, `INSERT INTO product_event (event, distinct_id, occurred_at, properties)
				SELECT 'server_started', 'shala', now() - interval '3 hours' + make_interval(secs => i),
					CASE WHEN i = $2 THEN jsonb_build_object('poison', true, 'pad', $3::text) ELSE jsonb_build_object('pad', $3::text) END
				FROM generate_series(1, $1) i`, n, bad, pad); err != nil {
				t.Fatal(err)
			}
		}
		t.Run("the last of the backlog, alone after an accepted call", func(t *testing.T) {
			t.Parallel()
			b := setup(t, "phc_test")
			insert(t, b, 101, 101, "")
			b.work(t)
			if marked, age := b.count(t, "refused_for_itself"), b.gauge(t, "shala_product_events_oldest_unsent_seconds"); marked != 1 || age != 0 {
				t.Errorf("got %d marked and oldest unsent %v s, want the bad one marked and 0", marked, age)
			}
		})
		t.Run("the refused part of a call PostHog accepted in part", func(t *testing.T) {
			t.Parallel()
			b := setup(t, "phc_test")
			// 21 events of ~24 kB each in JSON: posthog-go splits the call
			// in two requests, and refuses only the one with the bad event.
			insert(t, b, 21, 21, strings.Repeat("<", 4000))
			b.work(t)
			if sent, marked, age := b.count(t, "sent_at IS NOT NULL"), b.count(t, "refused_for_itself"), b.gauge(t, "shala_product_events_oldest_unsent_seconds"); sent != 20 || marked != 1 || age != 0 {
				t.Errorf("got %d sent, %d marked, oldest unsent %v s; want 20, the bad one, 0", sent, marked, age)
			}
		})
		t.Run("a PostHog that starts refusing everything in the middle of a search", func(t *testing.T) {
			t.Parallel()
			b := setup(t, "phc_test")
			insert(t, b, 40, 30, "")
			b.posthog.mu.Lock()
			b.posthog.refuseFrom = 3 // 1: all 40, refused for the bad one; 2: its first half, accepted; then nothing
			b.posthog.mu.Unlock()
			b.work(t)
			if marked, age := b.count(t, "refused_for_itself"), b.gauge(t, "shala_product_events_oldest_unsent_seconds"); marked > 1 || age < 3*3600-60 {
				t.Errorf("got %d marked and oldest unsent %v s, want at most 1 and the backlog's age (3 h)", marked, age)
			}
			// PostHog recovers: the events singled out go first, and the bad
			// one, refused while the others are accepted, is marked.
			b.posthog.mu.Lock()
			b.posthog.refuseFrom = 0
			b.posthog.mu.Unlock()
			b.work(t)
			if sent, marked, age := b.count(t, "sent_at IS NOT NULL"), b.count(t, "sent_at IS NULL AND refused_for_itself"), b.gauge(t, "shala_product_events_oldest_unsent_seconds"); sent != 39 || marked != 1 || age != 0 {
				t.Errorf("after PostHog recovered: %d sent, %d marked, oldest unsent %v s; want 39, the bad one, 0", sent, marked, age)
			}
		})
	})

	t.Run("bad events refused alone before never hold up good ones", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		// A hundred bad events a quiet night singled out (nothing accepted
		// around them, so not known to be refused for themselves), then
		// 300 good events.
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at, attempts, refused_alone, properties)
			SELECT 'server_started', 'shala', now() - interval '2 hours' + make_interval(secs => i), 5, 1, '{"poison": true}'::jsonb
			FROM generate_series(1, 100) i`)
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at)
			SELECT 'server_started', 'shala', now() - interval '1 hour' + make_interval(secs => i) FROM generate_series(1, 300) i`)
		b.work(t)
		if sent, marked := b.count(t, "sent_at IS NOT NULL"), b.count(t, "refused_for_itself"); sent != 300 || marked < 3 {
			t.Errorf("got %d sent and %d bad events marked in one run, want the 300 good ones and at least the 3 that led their batches", sent, marked)
		}
	})

	t.Run("bad events with fewer refusals than good ones do not hold them up", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at, attempts, refused_alone, properties)
			SELECT 'server_started', 'shala', now() - interval '3 hours' + make_interval(secs => i), 1, 1, '{"poison": true}'::jsonb
			FROM generate_series(1, 300) i`)
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at, attempts)
			SELECT 'server_started', 'shala', now() - interval '2 hours' + make_interval(secs => i), 3 FROM generate_series(1, 300) i`)
		b.work(t)
		if sent := b.count(t, "sent_at IS NOT NULL"); sent != 300 {
			t.Errorf("got %d of the 300 good events sent in one run, want all", sent)
		}
	})

	t.Run("the oldest event refused alone and not known to be bad leads a batch, once", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at, attempts, refused_alone, refused_for_itself, properties) VALUES
			('server_started', 'shala', now() - interval '3 hours', 2, 1, true, '{"poison": true}'),
			('server_started', 'shala', now() - interval '2 hours', 2, 1, false, '{"name": "older"}'),
			('server_started', 'shala', now() - interval '1 hours', 2, 1, false, '{"name": "newer"}')`)
		b.record(t, 5, nil)
		b.work(t)
		b.posthog.mu.Lock()
		twice, first := b.posthog.twice, b.posthog.first
		b.posthog.mu.Unlock()
		if got := len(b.posthog.received()); got != 7 || len(first) != 8 || first[0]["properties"].(map[string]any)["name"] != "older" {
			t.Errorf("got %d events at PostHog, a first call of %d led by %v; want 7, 8 led by the older one", got, len(first), first[0]["properties"])
		}
		if twice {
			t.Error("a call carried the same event twice")
		}
	})

	t.Run("a refused call's first half goes first", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.backlog(t, 100, 0, "i = 75")
		b.work(t)
		got := b.posthog.received()
		if len(got) != 99 {
			t.Fatalf("got %d events at PostHog, want 99", len(got))
		}
		if seq := got[0]["properties"].(map[string]any)["seq"]; seq != 1.0 {
			t.Errorf("the first event accepted after the refusal is number %v, want 1 (the first half first)", seq)
		}
	})

	t.Run("a half sent by another sender meanwhile is passed over, never posted twice", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.backlog(t, 150, 0, "false")
		b.posthog.mu.Lock()
		b.posthog.refuseCall = 1 // the first 100, refused once: halves 1–50 and 51–100
		b.posthog.onCall = func(n int) {
			if n == 2 { // while the first half is posted, another sender sends the second
				if _, err := b.pool.Exec(ctx, `UPDATE product_event SET sent_at = now() WHERE (properties->>'seq')::int BETWEEN 51 AND 100`); err != nil {
					t.Error(err)
				}
			}
		}
		b.posthog.mu.Unlock()
		b.work(t)
		seen := map[any]bool{}
		for _, e := range b.posthog.received() {
			seq := e["properties"].(map[string]any)["seq"]
			if seen[seq] {
				t.Errorf("event %v posted twice", seq)
			}
			seen[seq] = true
		}
		if len(seen) != 100 || b.count(t, "sent_at IS NULL") != 0 {
			t.Errorf("got %d events posted and %d unsent, want 1–50 and 101–150 posted by this run and none left", len(seen), b.count(t, "sent_at IS NULL"))
		}
	})

	t.Run("a bad event does not look like an outage on a quiet night, and a PostHog refusing everything does", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		// A bad event recorded with others three hours ago: PostHog took
		// the others and refused it on its own.
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at, properties)
			SELECT 'server_started', 'shala', now() - interval '3 hours', CASE WHEN i = 2 THEN '{"poison": true}'::jsonb ELSE '{}' END
			FROM generate_series(1, 3) i`)
		b.work(t)
		if n := b.count(t, "sent_at IS NULL AND refused_for_itself"); n != 1 {
			t.Fatalf("got %d events refused for themselves, want the bad one", n)
		}
		// Nothing since, and the sent events pruned a week later: still not an outage.
		b.exec(t, `DELETE FROM product_event WHERE sent_at IS NOT NULL`)
		b.work(t)
		if age := b.gauge(t, "shala_product_events_oldest_unsent_seconds"); age != 0 {
			t.Errorf("oldest unsent = %v s with only an event PostHog refused while taking others, want 0", age)
		}
		// A PostHog refusing everything: a new event refused on its own,
		// nothing accepted.
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at) VALUES ('server_started', 'shala', now() - interval '50 minutes')`)
		b.posthog.answerWith(http.StatusBadRequest)
		b.work(t)
		if n := b.count(t, "sent_at IS NULL AND refused_alone > 0"); n != 2 {
			t.Fatalf("got %d events refused on their own, want the bad one and the new one", n)
		}
		if age := b.gauge(t, "shala_product_events_oldest_unsent_seconds"); age < 50*60 {
			t.Errorf("oldest unsent = %v s while PostHog refuses everything, want the new event's age (50 min)", age)
		}
		// PostHog recovers: the new event goes, the bad one stays out of the gauge.
		b.posthog.answerWith(0)
		b.work(t)
		if sent, age := b.count(t, "sent_at IS NOT NULL"), b.gauge(t, "shala_product_events_oldest_unsent_seconds"); sent != 1 || age != 0 {
			t.Errorf("after PostHog recovered: %d sent, oldest unsent %v s; want the new event sent and 0", sent, age)
		}
	})

	t.Run("a lone bad event is counted until PostHog takes another in its run", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at, properties) VALUES ('server_started', 'shala', now() - interval '3 hours', '{"poison": true}')`)
		b.work(t)
		if age := b.gauge(t, "shala_product_events_oldest_unsent_seconds"); age < 3*3600 {
			t.Errorf("oldest unsent = %v s: a refusal with nothing accepted cannot be told from a PostHog refusing everything, want it counted", age)
		}
		b.record(t, 1, nil)
		b.work(t)
		if age := b.gauge(t, "shala_product_events_oldest_unsent_seconds"); age != 0 {
			t.Errorf("oldest unsent = %v s after PostHog took another event in the run, want 0", age)
		}
	})

	t.Run("a PostHog that starts refusing everything in the middle of a run costs a few calls", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at)
			SELECT 'server_started', 'shala', now() - interval '3 hours' FROM generate_series(1, 500)`)
		b.posthog.mu.Lock()
		b.posthog.refuseFrom = 2
		b.posthog.mu.Unlock()
		b.work(t)
		calls := b.posthog.callCount()
		if sent := b.count(t, "sent_at IS NOT NULL"); sent != analytics.SendBatch || calls != 1+analytics.MaxRefusedSinceAccepted {
			t.Errorf("got %d sent in %d calls, want the first %d, then %d refused calls and the run ended", sent, calls, analytics.SendBatch, analytics.MaxRefusedSinceAccepted)
		}
		// It shows as an outage: the events it singled out after it began
		// refusing are not refused for themselves.
		if age, marked := b.gauge(t, "shala_product_events_oldest_unsent_seconds"), b.count(t, "refused_for_itself"); age < 3*3600 || marked != 0 {
			t.Errorf("oldest unsent %v s with %d events marked refused for themselves, want the backlog's age (3 h) and none", age, marked)
		}
		// The next run accepts nothing: it ends after a few calls.
		b.work(t)
		if more := b.posthog.callCount() - calls; more != analytics.MaxRefusedCalls {
			t.Errorf("the next run made %d calls, want %d", more, analytics.MaxRefusedCalls)
		}
	})

	t.Run("a PostHog that refuses everything loses no event", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.record(t, 5, nil)
		b.posthog.answerWith(http.StatusBadRequest)
		for range 10 {
			b.work(t)
		}
		if left := b.count(t, "sent_at IS NULL"); left != 5 {
			t.Errorf("got %d events left, want all 5 kept", left)
		}
		b.posthog.answerWith(0)
		b.work(t)
		if sent := b.count(t, "sent_at IS NOT NULL"); sent != 5 {
			t.Errorf("got %d sent once PostHog took them, want 5", sent)
		}
	})

	t.Run("an event past 30 days is never sent", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at) VALUES ('server_started', 'shala', now() - interval '31 days')`)
		if n, err := b.sender.Send(ctx); n != 0 || err != nil || len(b.posthog.received()) != 0 {
			t.Errorf("Send = %d, %v with %d at PostHog; want nothing sent", n, err, len(b.posthog.received()))
		}
	})

	t.Run("two senders never post the same event", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.record(t, 3, nil)
		b.posthog.set(false, true)
		first := make(chan error, 1)
		go func() { _, err := b.sender.Send(ctx); first <- err }()
		<-b.posthog.arrived // the first sender's call holds the rows
		if n, err := b.sender.Send(ctx); n != 0 || err != nil {
			t.Errorf("second Send while the first holds the rows = %d, %v; want 0, nil", n, err)
		}
		if err := <-first; !errors.Is(err, analytics.ErrPostHog) {
			t.Errorf("first Send to a hanging PostHog = %v, want ErrPostHog", err)
		}
	})

	t.Run("old events are pruned even while PostHog is down", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		b.exec(t, `INSERT INTO product_event (event, distinct_id, occurred_at, sent_at) VALUES
			('sent_old', 'shala', now() - interval '9 days', now() - interval '8 days'),
			('unsent_old', 'shala', now() - interval '31 days', NULL),
			('unsent_recent', 'shala', now() - interval '1 day', NULL)`)
		b.posthog.set(true, false)
		b.work(t)
		if left := b.count(t, "true"); left != 1 || b.count(t, "event = 'unsent_recent'") != 1 || b.outcome(t, "failed") != 1 {
			t.Errorf("got %d rows left and failed=%v, want the two old ones pruned and the recent one tried and kept", left, b.outcome(t, "failed"))
		}
	})

	t.Run("the job ends without failing when PostHog is down", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "phc_test")
		if err := analytics.Record(ctx, b.pool, analytics.System, "server_started", nil); err != nil {
			t.Fatal(err)
		}
		b.posthog.set(true, false)
		if err := (&analytics.SendWorker{Sender: b.sender}).Work(ctx, nil); err != nil {
			t.Errorf("Work with PostHog down = %v, want nil (the events wait for the next run)", err)
		}
		if unsent := b.count(t, "sent_at IS NULL"); unsent != 1 {
			t.Errorf("got %d unsent, want 1", unsent)
		}
	})
}

func TestPrune(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, "phc_test")
	_, err := b.pool.Exec(ctx, `INSERT INTO product_event (event, distinct_id, occurred_at, sent_at) VALUES
		('sent_old', 'shala', now() - interval '9 days', now() - interval '8 days'),
		('sent_recent', 'shala', now() - interval '2 days', now() - interval '1 day'),
		('unsent_old', 'shala', now() - interval '31 days', NULL),
		('unsent_recent', 'shala', now() - interval '29 days', NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	n, err := b.sender.Prune(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d, %v; want 2, nil", n, err)
	}
	rows, _ := b.pool.Query(ctx, `SELECT event FROM product_event ORDER BY event`)
	left, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(left, ",") != "sent_recent,unsent_recent" || b.outcome(t, "expired") != 1 {
		t.Errorf("got %v left and expired=%v, want sent_recent,unsent_recent and 1", left, b.outcome(t, "expired"))
	}
}

func TestRecordRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.New(t)
	for _, tc := range []struct {
		name, distinct, event string
		props                 map[string]any
		want                  string
	}{
		{"an upper-case name", "shala", "Certificate_Issued", nil, "the name must be"},
		{"an empty name", "shala", "", nil, "the name must be"},
		{"a phone number as distinct id", "9876543210", "sms_sent", nil, "distinct id"},
		{"a person's user id as distinct id", "school-02080100101", "form_registered", nil, "distinct id"},
		{"an upper-case uuid as distinct id", "7F3C2A10-0000-4000-8000-000000000001", "server_started", nil, "distinct id"},
		{"an empty distinct id", "", "server_started", nil, "distinct id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := analytics.Record(ctx, pool, tc.distinct, tc.event, tc.props)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Record(%q, %q) = %v, want an error saying %q", tc.distinct, tc.event, err, tc.want)
			}
		})
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM product_event`).Scan(&n); err != nil || n != 0 {
		t.Errorf("got %d rows (%v), want none", n, err)
	}
	// Values Record does not take are left out and named, not the event.
	if err := analytics.Record(ctx, pool, analytics.System, "server_started", map[string]any{
		"f": func() {}, "nan": math.NaN(), "nested": map[string]any{"a": 1}, "list": []int{1},
		"nul\x00key": "a\x00b", "id": uuid.MustParse("7f3c2a10-0000-4000-8000-000000000001"), "n": 7,
	}); err != nil {
		t.Fatalf("Record with values it does not take = %v, want the event without them", err)
	}
	var props string
	if err := pool.QueryRow(ctx, `DELETE FROM product_event RETURNING properties::text`).Scan(&props); err != nil ||
		props != `{"n": 7, "id": "7f3c2a10-0000-4000-8000-000000000001", "nulkey": "ab", "properties_dropped": "f,list,nan,nested"}` {
		t.Errorf("got properties %s (%v), want the flat values kept, NULs removed and the others named", props, err)
	}
	// Properties too large are dropped, not the event (nor the work).
	if err := analytics.Record(ctx, pool, analytics.System, "server_started", map[string]any{"x": strings.Repeat("अ", analytics.MaxProperties)}); err != nil {
		t.Fatalf("Record with properties too large = %v, want the event without them", err)
	}
	if err := pool.QueryRow(ctx, `DELETE FROM product_event RETURNING properties::text`).Scan(&props); err != nil || props != `{"properties_dropped_bytes": 12297}` {
		t.Errorf("got properties %s (%v), want only the size dropped", props, err)
	}
	// Short in Go's JSON, long in jsonb's text form (numbers written out).
	big := map[string]any{}
	for i := range 30 {
		big[fmt.Sprintf("k%d", i)] = 1e300
	}
	if err := analytics.Record(ctx, pool, analytics.System, "server_started", big); err != nil {
		t.Fatalf("Record of properties long in jsonb's text form = %v, want the event without them", err)
	}
	if err := pool.QueryRow(ctx, `DELETE FROM product_event RETURNING properties::text`).Scan(&props); err != nil || !strings.HasPrefix(props, `{"properties_dropped_bytes": `) {
		t.Errorf("got properties %.80s (%v), want only the size", props, err)
	}
	// Properties that fit are kept whole.
	if err := analytics.Record(ctx, pool, analytics.System, "server_started", map[string]any{"version": strings.Repeat("v", 4000)}); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `DELETE FROM product_event RETURNING properties ->> 'version'`).Scan(&props); err != nil || len(props) != 4000 {
		t.Errorf("got a version of %d bytes (%v), want the 4,000 kept", len(props), err)
	}
	// The table holds the same limits for rows written by SQL.
	if _, err := pool.Exec(ctx, `INSERT INTO product_event (event, distinct_id) VALUES ('Bad Name', 'shala')`); err == nil {
		t.Error("the table took a bad event name")
	}
	if _, err := pool.Exec(ctx, `INSERT INTO product_event (event, distinct_id) VALUES ('ok', 'school-02080100101')`); err == nil {
		t.Error("the table took a person's id as distinct id")
	}
	if _, err := pool.Exec(ctx, `INSERT INTO product_event (event, distinct_id, properties) VALUES ('ok', 'shala', '[1]')`); err == nil {
		t.Error("the table took properties that are not an object")
	}
}
