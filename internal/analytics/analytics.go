// Package analytics sends product events to PostHog. Events say what
// happened (a certificate issued, results announced, an SMS request
// finished) with internal ids, enums and counts only — never names, phone
// numbers or other personal data — so the product team can see usage
// without holding anyone's data.
//
// An event is a product_event row written by Record in the transaction of
// the change it describes: it is never sent for work that rolled back, and
// a crash loses none. The periodic job analytics.send (SendWorker) posts
// unsent rows to PostHog's batch API with posthog-go, each with its row id
// as PostHog's event uuid — a batch sent again after a crash between the
// post and the mark is deduplicated by PostHog — and marks the accepted
// ones sent. Without an API key the job discards them an hour after they
// happened (DiscardAfter) instead, so the local default and tests need
// nothing and a developer can still read them in the table.
package analytics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/posthog/posthog-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/queue"
)

// System is the distinct id of every event that is not a school's.
// Events never carry a person's id: a user id can be anything an identity
// provider chose, a phone number included.
const System = "shala"

// Execer is a transaction (or a pool, for an event that stands alone).
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// The limits the product_event table's constraints hold too.
var (
	eventName  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
	distinctID = regexp.MustCompile(`^(shala|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$`)
)

// MaxProperties is the most bytes an event's properties take in jsonb's
// text form (the table's limit). Larger properties are not recorded: the
// event is, with {"properties_dropped_bytes": n} instead, so a long value
// never fails the work the event describes.
const MaxProperties = 4096

// Record writes the product event in db — the transaction of the change it
// describes — for distinct: a school's id (uuid.UUID.String()) or System.
// props are flat: ids, enums and counts — strings, booleans, integers,
// finite floats, uuids, nil; any other value (a map, a slice, NaN) is left
// out and named in "properties_dropped", and NUL characters are removed,
// so that no value can make the insert fail. An event name or distinct id
// the table would refuse is an error naming which: both come from code,
// never from input, and a test of the caller finds the mistake. Once they
// are right the table takes the row.
func Record(ctx context.Context, db Execer, distinct, event string, props map[string]any) error {
	if !eventName.MatchString(event) {
		return fmt.Errorf("product event %q: the name must be lower-case letters, digits and _ (at most 64)", event)
	}
	if !distinctID.MatchString(distinct) {
		return fmt.Errorf("product event %s: distinct id %q must be a school's id or %q", event, distinct, System)
	}
	doc, err := json.Marshal(flat(props))
	if err != nil { // flat leaves nothing json.Marshal refuses
		return fmt.Errorf("product event %s: properties: %w", event, err)
	}
	// Measured as the table measures it: jsonb's text form can be longer
	// than Go's JSON (spaces, numbers written out in full).
	if _, err := db.Exec(ctx, `INSERT INTO product_event (event, distinct_id, properties)
		SELECT $1, $2, CASE WHEN octet_length(p::text) <= $4 THEN p
		                    ELSE jsonb_build_object('properties_dropped_bytes', octet_length(p::text)) END
		FROM (SELECT $3::jsonb AS p) d`, event, distinct, string(doc), MaxProperties); err != nil {
		return fmt.Errorf("record product event %s: %w", event, err)
	}
	return nil
}

// flat is props with only the values Record takes (see Record).
func flat(props map[string]any) map[string]any {
	out := make(map[string]any, len(props))
	var dropped []string
	for k, v := range props {
		k = strings.ReplaceAll(k, "\x00", "")
		switch v := v.(type) {
		case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
			out[k] = v
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				dropped = append(dropped, k)
				continue
			}
			out[k] = v
		case float32:
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				dropped = append(dropped, k)
				continue
			}
			out[k] = v
		case string:
			out[k] = strings.ReplaceAll(v, "\x00", "")
		case uuid.UUID:
			out[k] = v.String()
		default:
			dropped = append(dropped, k)
		}
	}
	if len(dropped) > 0 {
		slices.Sort(dropped)
		out["properties_dropped"] = strings.Join(dropped, ",")
	}
	return out
}

// DiscardAfter is how long events are kept, unsent, without a PostHog key.
const DiscardAfter = time.Hour

// SendBatch is how many events one call to PostHog carries.
const SendBatch = 100

// DefaultTimeout bounds one call to PostHog.
const DefaultTimeout = 8 * time.Second

// Retention: sent events are deleted after SentRetention; events PostHog
// never accepted are given up after UnsentRetention.
const (
	SentRetention   = 7 * 24 * time.Hour
	UnsentRetention = 30 * 24 * time.Hour
	// PruneBatch bounds one prune statement.
	PruneBatch = 10_000
)

// Sender posts recorded events to PostHog. Close it once on shutdown.
type Sender struct {
	pool    *pgxpool.Pool
	key     string
	host    string
	timeout time.Duration
	log     *slog.Logger
	metrics *Metrics
	http    *http.Transport
}

// NewSender returns a sender of pool's events to PostHog at host with the
// project key; with key "" it discards them. timeout bounds one call
// (0: DefaultTimeout); metrics may be nil.
func NewSender(pool *pgxpool.Pool, key, host string, timeout time.Duration, log *slog.Logger, metrics *Metrics) *Sender {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t, _ := http.DefaultTransport.(*http.Transport)
	if t == nil {
		t = &http.Transport{}
	} else {
		t = t.Clone()
	}
	return &Sender{pool: pool, key: key, host: host, timeout: timeout, log: log, metrics: metrics, http: t}
}

// Close drops the sender's idle connections to PostHog.
func (s *Sender) Close() error {
	s.http.CloseIdleConnections()
	return nil
}

type event struct {
	ID         uuid.UUID
	Event      string
	DistinctID string
	Properties []byte // decoded for the call (properties)
	OccurredAt time.Time
}

// pick locks and reads up to limit unsent events newer than
// UnsentRetention for which cond holds (its $3 is ids), in order, passing
// over those another sender holds.
func pick(ctx context.Context, tx pgx.Tx, cond, order string, limit int, ids []uuid.UUID) ([]event, error) {
	rows, _ := tx.Query(ctx, `SELECT id, event, distinct_id, properties, occurred_at FROM product_event
		WHERE sent_at IS NULL AND occurred_at >= now() - make_interval(secs => $2) AND `+cond+`
		ORDER BY `+order+` LIMIT $1 FOR UPDATE SKIP LOCKED`, limit, UnsentRetention.Seconds(), append([]uuid.UUID{}, ids...))
	return pgx.CollectRows(rows, pgx.RowToStructByPos[event])
}

// properties decodes e's properties for posthog-go, numbers kept as
// written (a number jsonb takes may not fit a float64); a document that
// does not decode (rows written by SQL) is sent as properties_unreadable,
// never left to block the events behind it.
func (e event) properties() posthog.Properties {
	props := posthog.NewProperties()
	d := json.NewDecoder(bytes.NewReader(e.Properties))
	d.UseNumber()
	if err := d.Decode((*map[string]any)(&props)); err != nil {
		props = posthog.NewProperties().Set("properties_unreadable", true)
	}
	return props
}

// ErrPostHog wraps a call PostHog did not answer with a verdict on what it
// carried (unreachable, timed out, 5xx, 429, a refused key): its events
// stay unsent, as they were, for the next run.
var ErrPostHog = errors.New("posthog")

// Send makes one call to PostHog with unsent events and marks those it
// accepted; without a key it deletes events older than DiscardAfter
// instead. The oldest event refused alone but not yet known to be refused
// for itself goes first (what PostHog does with the rest tells), then the
// events never refused alone, fewest refusals first, then oldest first, and
// only when none is left those refused alone, up to SendBatch; events past
// UnsentRetention are left to Prune. It returns how many events
// it took (0: none left).
//
// A call PostHog refused for its payload (refusal) adds 1 to its events'
// attempts; an event refused alone also gets refused_alone + 1 (outcome
// "refused", logged with its name and id). No event is ever given up for a
// refusal: a refused event is kept, tried again, and expires after
// UnsentRetention like any other. Any other failure leaves the events as
// they were and returns an error wrapping ErrPostHog. The rows stay locked
// (FOR UPDATE SKIP LOCKED) while the call is made, so two senders never
// post the same event at once.
func (s *Sender) Send(ctx context.Context) (int, error) {
	r, err := s.send(ctx, nil, nil)
	return r.n, err
}

// callResult is what one call did.
type callResult struct {
	n, accepted int
	// refused: PostHog refused the call for its payload, and not the
	// events in notAccepted; alone: the call carried only that event.
	refused     bool
	notAccepted []uuid.UUID
	alone       *uuid.UUID
}

// send is Send with the events of only (the ones still unsent, not too old
// and not being sent by another sender) when only is not nil, else with
// the next events leaving out those in skip (refused alone earlier in the
// run).
func (s *Sender) send(ctx context.Context, only, skip []uuid.UUID) (r callResult, err error) {
	if s.key == "" {
		tag, err := s.pool.Exec(ctx, `DELETE FROM product_event WHERE id IN (
				SELECT id FROM product_event WHERE sent_at IS NULL AND occurred_at < now() - make_interval(secs => $1)
				ORDER BY occurred_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`, DiscardAfter.Seconds(), SendBatch)
		if err != nil {
			return callResult{}, fmt.Errorf("discard product events: %w", err)
		}
		s.metrics.add("discarded", int(tag.RowsAffected()))
		return callResult{n: int(tag.RowsAffected())}, nil
	}
	var (
		n           int
		postErr     error
		accepted    []uuid.UUID
		notAccepted []uuid.UUID
		refused     bool
		lone        *event
	)
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var events []event
		if only != nil {
			if events, err = pick(ctx, tx, "id = ANY($3)", "attempts, occurred_at, id", len(only), only); err != nil {
				return err
			}
		} else {
			// At the head of the batch, the oldest event refused alone and
			// not yet known to be refused for itself, if any: what PostHog
			// does with the rest tells (one at most, so a crowd of them can
			// never fill the half a search sends first). Then the events
			// never refused alone, fewest refusals first; only when none is
			// left, those refused alone before — so no bad event, however
			// few its refusals, shares a batch with good ones but the head.
			leave := append([]uuid.UUID{}, skip...)
			for _, p := range []struct {
				cond, order string
				limit       int
			}{
				{"refused_alone > 0 AND NOT refused_for_itself AND id <> ALL($3)", "occurred_at, id", 1},
				{"refused_alone = 0 AND id <> ALL($3)", "attempts, occurred_at, id", SendBatch},
				{"refused_alone > 0 AND id <> ALL($3)", "attempts, occurred_at, id", SendBatch},
			} {
				if len(events) == SendBatch {
					break
				}
				more, err := pick(ctx, tx, p.cond, p.order, min(p.limit, SendBatch-len(events)), leave)
				if err != nil {
					return err
				}
				for _, e := range more {
					leave = append(leave, e.ID)
				}
				events = append(events, more...)
			}
		}
		if len(events) == 0 {
			return nil
		}
		n = len(events)
		accepted, refused, postErr = s.post(ctx, events)
		if len(accepted) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE product_event SET sent_at = now() WHERE id = ANY($1)`, accepted); err != nil {
				return err
			}
		}
		if !refused || len(accepted) == n {
			return nil
		}
		if n == 1 {
			lone = &events[0]
			_, err := tx.Exec(ctx, `UPDATE product_event SET attempts = attempts + 1, refused_alone = refused_alone + 1 WHERE id = $1`, lone.ID)
			return err
		}
		for _, e := range events {
			if !slices.Contains(accepted, e.ID) {
				notAccepted = append(notAccepted, e.ID)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE product_event SET attempts = attempts + 1 WHERE id = ANY($1)`, notAccepted)
		return err
	})
	r = callResult{n: n, accepted: len(accepted), refused: refused, notAccepted: notAccepted}
	if lone != nil {
		r.alone = &lone.ID
	}
	if err != nil {
		return r, fmt.Errorf("send product events: %w", err)
	}
	s.metrics.add("sent", len(accepted))
	switch {
	case lone != nil:
		s.metrics.add("refused", 1)
		s.log.Warn("posthog refused a product event on its own: kept, and tried again next run", "event", lone.Event, "id", lone.ID)
	case refused || postErr != nil:
		s.metrics.add("failed", n-len(accepted))
	}
	return r, postErr
}

// post sends events to PostHog in one call of a posthog-go client made for
// it: Close flushes the batch with one attempt and reports every event
// through the callback (a failed one is not retried by the client: the
// next run sends it again). It returns the ids PostHog accepted.
func (s *Sender) post(ctx context.Context, events []event) (accepted []uuid.UUID, refused bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	out := &outcome{}
	status := &statuses{}
	c, err := posthog.NewWithConfig(s.key, posthog.Config{
		Endpoint:  s.host,
		Interval:  time.Hour, // sent by Close, not by the ticker
		BatchSize: SendBatch,
		Transport: withContext{ctx: ctx, next: s.http, status: status},
		Callback:  out,
		Logger:    slogAdapter{s.log},
	})
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrPostHog, err)
	}
	for _, e := range events {
		props := e.properties()
		// No location from the server's address, and no person profile:
		// the distinct id is a school or shala, never a person.
		props.Set("$geoip_disable", true).Set("$process_person_profile", false)
		msg := posthog.Capture{Uuid: e.ID.String(), DistinctId: e.DistinctID, Event: e.Event,
			Timestamp: e.OccurredAt, Properties: props}
		if err := c.Enqueue(msg); err != nil {
			out.Failure(msg.APIfy(), err)
		}
	}
	if err := c.Close(); err != nil {
		out.Failure(nil, err)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	if out.err == nil {
		return out.ok, false, nil
	}
	// A refusal only when every request that failed was refused for its
	// payload: posthog-go splits a large call, and one part refused while
	// another timed out is an outage, not a verdict.
	if status.refused.Load() > 0 && status.other.Load() == 0 {
		return out.ok, true, nil
	}
	s.log.Warn("posthog: events not accepted; they are sent again on the next run",
		"events", len(events)-len(out.ok), "err", out.err)
	return out.ok, false, fmt.Errorf("%w: %d of %d events not accepted: %w", ErrPostHog, len(events)-len(out.ok), len(events), out.err)
}

// refusal tells a call PostHog refused for what it carried (400 invalid
// payload, 413 too large, 422) from one that failed for another reason:
// unreachable, timed out, 5xx, 429, or 401/403 — a key to fix, not events
// to set aside.
func refusal(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity
}

// outcome collects posthog-go's report on each event.
type outcome struct {
	mu  sync.Mutex
	ok  []uuid.UUID
	err error
}

func (o *outcome) Success(m posthog.APIMessage) {
	if c, ok := m.(posthog.CaptureInApi); ok {
		if id, err := uuid.Parse(c.Uuid); err == nil {
			o.mu.Lock()
			o.ok = append(o.ok, id)
			o.mu.Unlock()
		}
	}
}

func (o *outcome) Failure(_ posthog.APIMessage, err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

// withContext gives every request of a call the call's context: its
// deadline bounds the request (posthog-go's own client has no timeout). It
// counts the requests that failed in status.
type withContext struct {
	ctx    context.Context
	next   http.RoundTripper
	status *statuses
}

// statuses counts a call's failed requests: refused for their payload
// (refusal), or failed any other way.
type statuses struct{ refused, other atomic.Int32 }

func (t withContext) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r.WithContext(t.ctx))
	switch {
	case err != nil:
		t.status.other.Add(1)
	case refusal(resp.StatusCode):
		t.status.refused.Add(1)
	case resp.StatusCode >= 400: // not 3xx: net/http follows redirects
		t.status.other.Add(1)
	}
	return resp, err
}

// Prune deletes, up to PruneBatch each, events sent more than
// SentRetention ago and events never accepted within UnsentRetention
// (counted as expired), and returns how many it deleted.
func (s *Sender) Prune(ctx context.Context) (int64, error) {
	sent, err := s.pool.Exec(ctx, `DELETE FROM product_event WHERE id IN (
			SELECT id FROM product_event WHERE sent_at < now() - make_interval(secs => $1) LIMIT $2 FOR UPDATE SKIP LOCKED)`,
		SentRetention.Seconds(), PruneBatch)
	if err != nil {
		return 0, fmt.Errorf("prune sent product events: %w", err)
	}
	expired, err := s.pool.Exec(ctx, `DELETE FROM product_event WHERE id IN (
			SELECT id FROM product_event WHERE sent_at IS NULL AND occurred_at < now() - make_interval(secs => $1)
			ORDER BY occurred_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)`, UnsentRetention.Seconds(), PruneBatch)
	if err != nil {
		return sent.RowsAffected(), fmt.Errorf("prune unsent product events: %w", err)
	}
	s.metrics.add("expired", int(expired.RowsAffected()))
	return sent.RowsAffected() + expired.RowsAffected(), nil
}

// Metrics counts product events by outcome and, read from pool at scrape
// time, the unsent backlog.
type Metrics struct{ events *prometheus.CounterVec }

// NewMetrics registers the product event metrics with reg; the backlog is
// read from pool at scrape time.
func NewMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) *Metrics {
	m := &Metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shala_product_events_total",
		Help: "Product events by outcome: sent (accepted by PostHog), failed (carried by a call PostHog did not accept; sent again on a later run), refused (refused by PostHog on its own: kept, tried again next run), discarded (no PostHog key; an hour after they happened), expired (never accepted within 30 days).",
	}, []string{"outcome"})}
	for _, o := range []string{"sent", "failed", "refused", "discarded", "expired"} {
		m.events.WithLabelValues(o)
	}
	reg.MustRegister(m.events, backlog{pool})
	return m
}

var (
	unsentDesc = prometheus.NewDesc("shala_product_events_unsent",
		"Product events not yet accepted by PostHog.", nil, nil)
	oldestUnsentDesc = prometheus.NewDesc("shala_product_events_oldest_unsent_seconds",
		"Age of the oldest product event not yet accepted by PostHog (0 when none), leaving out those it refused for themselves (on their own, in a run in which it accepted others): growing past a few minutes means PostHog cannot be reached, refuses the key or refuses everything.", nil, nil)
	refusedDesc = prometheus.NewDesc("shala_product_events_refused",
		"Unsent product events PostHog refused on their own (kept and tried each run until they expire after 30 days): see the log for their names.", nil, nil)
)

// backlog reads the unsent events at scrape time.
type backlog struct{ pool *pgxpool.Pool }

func (b backlog) Describe(ch chan<- *prometheus.Desc) {
	ch <- unsentDesc
	ch <- oldestUnsentDesc
	ch <- refusedDesc
}

func (b backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var n, refused int64
	var oldest float64
	// An event refused for itself (on its own, in a run in which PostHog
	// accepted others) is left out of the oldest's age; one refused on its
	// own while PostHog accepted nothing is not: a PostHog refusing
	// everything is an outage, and shows as one.
	err := b.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE refused_alone > 0),
			coalesce(extract(epoch FROM now() - min(occurred_at) FILTER (WHERE NOT refused_for_itself)), 0)::float8
		FROM product_event WHERE sent_at IS NULL`).Scan(&n, &refused, &oldest)
	if err != nil {
		for _, d := range []*prometheus.Desc{unsentDesc, oldestUnsentDesc, refusedDesc} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	ch <- prometheus.MustNewConstMetric(unsentDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(oldestUnsentDesc, prometheus.GaugeValue, oldest)
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.GaugeValue, float64(refused))
}

func (m *Metrics) add(outcome string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.events.WithLabelValues(outcome).Add(float64(n))
}

// MaxRefusedCalls ends a run after this many calls refused in a row while
// PostHog has accepted nothing in the run, or, once it has, refused in a
// row without an event singled out: a PostHog refusing everything costs a
// few calls a minute, and bad events next to each other (singling out one
// takes at most 7 refusals in a row, each next one 2 more) do not look like
// it. MaxRefusedSinceAccepted bounds the calls after PostHog last accepted
// one, for a PostHog that starts refusing everything in a run's middle.
const (
	MaxRefusedCalls         = 10
	MaxRefusedSinceAccepted = 100
)

// SendArgs is the periodic job that sends product events.
type SendArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (SendArgs) Kind() string { return "analytics.send" }

// SendWorker works SendArgs: it prunes, then sends until nothing is left,
// SendBatch events a call. A call PostHog refuses for what it carries is
// split in two, and each half sent on its own (the first half first), and
// so on, so the event PostHog refuses ends up alone — at most 2 × 7 calls
// for a batch of 100 — and the others get through; that event is left out
// for the rest of the run, and marked refused for itself when PostHog
// accepts other events in the run. A run ends after MaxRefusedCalls or
// MaxRefusedSinceAccepted refused calls.
// A call starts only while its timeout and 2 s are left of the job's
// (the rescue rule: the job returns by its timeout); with more to send, the
// job snoozes and goes on at once. A call that failed other than by a
// refusal (ErrPostHog) ends the run without failing the job: the events
// wait for the next run, a minute later, and shala_product_events_oldest_unsent_seconds shows the wait (an
// alert fires past two hours). A database error fails it.
type SendWorker struct {
	river.WorkerDefaults[SendArgs]
	Sender *Sender
}

// Timeout bounds one run.
func (w *SendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return queue.MaxTimeout }

// Work prunes and sends.
func (w *SendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(queue.MaxTimeout)
	}
	if _, err := w.Sender.Prune(ctx); err != nil {
		return err
	}
	var (
		accepted, refusedInRow, sinceAccepted int
		// halves are the parts of refused calls still to send, the next
		// on top: the search for the event PostHog refuses.
		halves [][]uuid.UUID
		// skip: refused alone this run.
		skip []uuid.UUID
		// prevAccepted: PostHog accepted something of the previous call.
		// suspects: events refused alone not yet followed by an accepted
		// call.
		prevAccepted bool
		suspects     []uuid.UUID
	)
	for {
		if time.Until(deadline) < w.Sender.timeout+2*time.Second {
			if accepted == 0 {
				return nil // no progress this run: the next, a minute later
			}
			return river.JobSnooze(0)
		}
		var only []uuid.UUID
		if n := len(halves); n > 0 {
			only, halves = halves[n-1], halves[:n-1]
		}
		r, err := w.Sender.send(ctx, only, skip)
		if errors.Is(err, ErrPostHog) {
			return nil
		}
		if err != nil {
			return err
		}
		if r.n == 0 {
			if only != nil {
				continue // sent, expired or taken by another sender meanwhile
			}
			return nil
		}
		accepted += r.accepted
		switch {
		case r.accepted > 0:
			refusedInRow, sinceAccepted = 0, 0
		case r.refused:
			refusedInRow++
			sinceAccepted++
		}
		if r.alone != nil && accepted > 0 {
			refusedInRow = 0 // progress: bad events next to each other are singled out in turn
		}
		if r.alone != nil {
			skip = append(skip, *r.alone)
			suspects = append(suspects, *r.alone)
		} else if na := r.notAccepted; r.refused {
			// A half may be empty (one event left of a call PostHog
			// accepted in part): it is passed over like a half sent
			// meanwhile.
			mid := len(na) / 2
			halves = append(halves, na[mid:], na[:mid])
		}
		// An event PostHog refused alone right after a call it accepted
		// (the other half of its pair, the accepted part of its call), or
		// before a later call it accepts (the rest of a search, the next
		// batch), is refused for itself: PostHog takes events around it. A
		// PostHog that starts refusing everything accepts nothing after,
		// and the events it singles out are refused after other refusals:
		// they stay counted, as an outage (at most the one singled out
		// right after its last accepted call is not).
		var mark []uuid.UUID
		switch {
		case r.accepted > 0:
			mark, suspects = suspects, nil
		case r.alone != nil && prevAccepted:
			mark, suspects = suspects[len(suspects)-1:], suspects[:len(suspects)-1]
		}
		prevAccepted = r.accepted > 0
		if len(mark) > 0 {
			if err := w.Sender.refusedForItself(ctx, mark); err != nil {
				return err
			}
		}
		if refusedInRow == MaxRefusedCalls || sinceAccepted == MaxRefusedSinceAccepted {
			return nil // PostHog takes nothing: the next run, a minute later
		}
	}
}

// refusedForItself marks events PostHog refused on their own while it
// accepted others.
func (s *Sender) refusedForItself(ctx context.Context, ids []uuid.UUID) error {
	if _, err := s.pool.Exec(ctx, `UPDATE product_event SET refused_for_itself = true WHERE id = ANY($1) AND sent_at IS NULL`, ids); err != nil {
		return fmt.Errorf("mark product events refused for themselves: %w", err)
	}
	return nil
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Logf(format string, args ...any) {
	a.log.Debug("posthog: " + fmt.Sprintf(format, args...))
}
func (a slogAdapter) Debugf(format string, args ...any) {
	a.log.Debug("posthog: " + fmt.Sprintf(format, args...))
}
func (a slogAdapter) Warnf(format string, args ...any) {
	a.log.Warn("posthog: " + fmt.Sprintf(format, args...))
}
func (a slogAdapter) Errorf(format string, args ...any) {
	a.log.Debug("posthog: " + fmt.Sprintf(format, args...)) // Send logs the outcome once, at Warn
}
