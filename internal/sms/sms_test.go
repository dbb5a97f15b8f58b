package sms_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/sms/cdac"
	"github.com/shala-edu/shala/internal/sms/cdac/cdactest"
	"github.com/shala-edu/shala/internal/sms/twilio"
	"github.com/shala-edu/shala/internal/sms/twilio/twiliotest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const secret = "sms-test-webhook-secret"

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fastRetry retries failed jobs after 20 ms instead of River's attempt⁴ s,
// so retry paths run within a test.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(20 * time.Millisecond) }

type fixture struct {
	t        *testing.T
	pool     *pgxpool.Pool
	school   uuid.UUID
	gw       *cdactest.Server
	provider sms.Provider
	url      string
	twilio   *twiliotest.Server
	reg      *prometheus.Registry
	metrics  *sms.Metrics
	jobs     apptest.Signal // notified whenever a job of any of the fixture's apps finishes
}

// captured is a recorded product event, as PostHog will receive it.
type captured struct {
	distinctID, event string
	props             map[string]any
}

// events are the product events recorded so far (without a PostHog key
// they stay in the table for an hour).
func (f *fixture) events() []captured {
	f.t.Helper()
	rows, _ := f.pool.Query(context.Background(), `SELECT distinct_id, event, properties FROM product_event ORDER BY occurred_at, id`)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (captured, error) {
		var c captured
		return c, row.Scan(&c.distinctID, &c.event, &c.props)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

type option func(*fixture)

// withTwilio makes Twilio the provider, with shala's callback URL served by
// the fixture's own HTTP server.
func withTwilio() option {
	return func(f *fixture) { f.twilio = twiliotest.New(f.t, "ACtest", "twilio-token") }
}

func setup(t *testing.T, opts ...option) *fixture {
	t.Helper()
	f := &fixture{t: t, pool: pgtest.New(t), reg: prometheus.NewRegistry()}
	f.metrics = sms.NewMetrics(f.reg)
	f.jobs = apptest.NewSignal()
	for _, o := range opts {
		o(f)
	}
	ctx := context.Background()
	if err := f.pool.QueryRow(ctx, `INSERT INTO school (udise, name, district, block, session)
		VALUES ('02110100101', 'GSSS कुफरी', 'Shimla', 'Mashobra', 'W') RETURNING id`).Scan(&f.school); err != nil {
		t.Fatal(err)
	}
	f.gw = cdactest.New(t, "hpgovt-hpssa", "s3cret", "HPSSAS", "dept-secure-key")

	// The HTTP server is created before the provider so that Twilio's
	// callback URL can point at it; its handler is set below.
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	f.url = srv.URL

	if f.twilio != nil {
		f.provider = twilio.New(f.twilio.URL, f.twilio.AccountSID, f.twilio.AuthToken, "+15005550006", f.url+twilio.CallbackPath)
	} else {
		c := cdac.New(f.gw.URL, "hpgovt-hpssa", "s3cret", "HPSSAS", "dept-secure-key")
		c.HTTP.Timeout = 150 * time.Millisecond
		f.provider = c
	}
	a := f.newApp()
	handler = a.Handler()
	return f
}

// newApp builds shala through its composition root, with the fixture's
// provider, event recorder and fast retries.
func (f *fixture) newApp() *app.App {
	f.t.Helper()
	cfg := apptest.Config(f.t)
	cfg.WebhookSecret = secret
	cfg.PublicURL = f.url
	cfg.TwilioAuthToken = "twilio-token"
	cfg.SMSWorkers = 8
	a := apptest.New(f.t, cfg, app.Options{Pool: f.pool, SMSProvider: f.provider, RetryPolicy: fastRetry{}})
	apptest.OnJobFinished(f.t, a, func(*river.Event) { f.jobs.Notify() })
	return a
}

// newClient builds a River client with every worker (another instance of
// shala on the same database); start says whether to start it (stopped when
// the test ends).
func (f *fixture) newClient(start bool) *queue.Client {
	f.t.Helper()
	a := f.newApp()
	if start {
		apptest.Start(f.t, a)
	}
	return a.Queue
}

func (f *fixture) student(name string, grade int, section string, phone any) uuid.UUID {
	f.t.Helper()
	var id uuid.UUID
	if err := f.pool.QueryRow(context.Background(), `INSERT INTO student (school_id, name, gender, grade, section, guardian_phone)
		VALUES ($1, $2, 'FEMALE', $3, $4, $5) RETURNING id`, f.school, name, grade, section, phone).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) request(typ string, vars map[string]string, grades []int) uuid.UUID {
	f.t.Helper()
	b, _ := json.Marshal(vars)
	var g any // NULL (every grade) unless given
	if grades != nil {
		g = grades
	}
	var id uuid.UUID
	if err := f.pool.QueryRow(context.Background(), `INSERT INTO sms_request (school_id, type, grades, variables, requested_by)
		VALUES ($1, $2, $3, $4, 'teacher-7') RETURNING id`, f.school, typ, g, b).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

// deliver posts the sms_request_created event for id as Hasura would.
func (f *fixture) deliver(id uuid.UUID, eventID string) (int, map[string]any) {
	body := fmt.Sprintf(`{"created_at":"2026-11-22T10:15:30.123456","delivery_info":{"current_retry":0,"max_retries":10},
		"event":{"data":{"new":{"id":"%s","school_id":"%s","type":"HOLIDAY","status":"QUEUED","grades":null,"sections":null,
		"student_ids":null,"variables":{},"requested_by":"teacher-7"},"old":null},"op":"INSERT",
		"session_variables":{"x-hasura-role":"school","x-hasura-school-id":"%s","x-hasura-user-id":"teacher-7"},
		"trace_context":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}},
		"id":"%s","table":{"name":"sms_request","schema":"public"},"trigger":{"name":"sms_request_created"}}`,
		id, f.school, f.school, eventID)
	req, _ := http.NewRequest(http.MethodPost, f.url+"/events/sms_request_created", strings.NewReader(body))
	req.Header.Set(hasura.SecretHeader, secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

type requestState struct {
	Status                                            string
	Remarks                                           string
	Total, Sent, Delivered, Failed, Skipped, Messages int
}

func (f *fixture) state(id uuid.UUID) requestState {
	f.t.Helper()
	var s requestState
	var remarks *string
	if err := f.pool.QueryRow(context.Background(), `SELECT status, remarks, recipients_total, sent, delivered, failed, skipped,
		(SELECT count(*) FROM sms_message WHERE request_id = r.id) FROM sms_request r WHERE id = $1`, id).
		Scan(&s.Status, &remarks, &s.Total, &s.Sent, &s.Delivered, &s.Failed, &s.Skipped, &s.Messages); err != nil {
		f.t.Fatal(err)
	}
	if remarks != nil {
		s.Remarks = *remarks
	}
	return s
}

// waitFor polls until the request reaches one of statuses; the deadline
// only guards against hanging.
func (f *fixture) waitFor(id uuid.UUID, statuses ...string) requestState {
	f.t.Helper()
	var s requestState
	f.jobs.Await(f.t, fmt.Sprintf("request %s %v", id, statuses), func() bool {
		s = f.state(id)
		return slices.Contains(statuses, s.Status)
	})
	return s
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

var holiday = map[string]string{"start_date": "25 दिसंबर", "end_date": "1 जनवरी", "reopen_date": "2 जनवरी"}

func TestEventDeliveredThreeTimesExpandsOnceOneMessagePerPhone(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.student("आरव ठाकुर", 6, "A", "+919816012345")
	f.student("प्रिया ठाकुर", 8, "B", "98160 12345") // sibling: same phone, written differently
	f.student("विवेक शर्मा", 6, "A", "9418012345")
	id := f.request("HOLIDAY", holiday, nil)

	eventID := uuid.NewString()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if status, out := f.deliver(id, eventID); status != 200 {
				t.Errorf("delivery: %d %v", status, out)
			}
		}()
	}
	wg.Wait()
	if status, out := f.deliver(id, uuid.NewString()); status != 200 || out["detail"] != "request already started or gone" {
		t.Errorf("a new event for the same request: %d %v, want acknowledged without a second expansion", status, out)
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'sms.expand'`); n != 1 {
		t.Fatalf("%d expand jobs, want 1", n)
	}
	f.newClient(true)
	s := f.waitFor(id, "DONE", "FAILED")
	if s.Status != "DONE" || s.Total != 2 || s.Sent != 2 || s.Messages != 2 || s.Failed != 0 {
		t.Errorf("request %+v, want DONE with 2 messages sent (siblings share one)", s)
	}
	accepted := f.gw.Accepted()
	if accepted["9816012345"] != 1 || accepted["9418012345"] != 1 || len(accepted) != 2 {
		t.Errorf("gateway accepted %v, want each phone once", accepted)
	}
	var body string
	if err := f.pool.QueryRow(context.Background(), `SELECT body FROM sms_message WHERE phone = '+919816012345'`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	want := "प्रिय अभिभावक, GSSS कुफरी में 25 दिसंबर से 1 जनवरी तक अवकाश रहेगा। विद्यालय 2 जनवरी को पुनः खुलेगा। - समग्र शिक्षा हि.प्र."
	if body != want {
		t.Errorf("body %q, want %q", body, want)
	}
	var events []captured
	for _, e := range f.events() {
		if e.event != "server_started" {
			events = append(events, e)
		}
	}
	if len(events) != 1 || events[0].event != "sms_request_finished" || events[0].distinctID != f.school.String() ||
		events[0].props["sent"] != float64(2) || events[0].props["status"] != "DONE" {
		t.Errorf("product events %+v, want one sms_request_finished for the school with counts", events)
	}
	for _, e := range events {
		if strings.Contains(fmt.Sprint(e.props), "98160") {
			t.Errorf("a phone number reached analytics: %v", e.props)
		}
	}
	for _, r := range f.gw.Received() {
		if r.Number == "9816012345" && (r.Text != want || r.Service != "unicodemsg" || r.TemplateID != "1007164390254879011") {
			t.Errorf("gateway decoded %q via %s template %s: Hindi not encoded correctly", r.Text, r.Service, r.TemplateID)
		}
	}
}

func TestOneFailureNeverStopsTheOthers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for i := range 20 {
		f.student(fmt.Sprintf("विद्यार्थी %d", i), 7, "A", fmt.Sprintf("+9198160%05d", i))
	}
	f.gw.Script("9816000003", cdactest.Behaviour{Answer: "ERROR : 406 Invalid mobile number\r\n"})
	f.gw.Script("9816000007", cdactest.Behaviour{Delay: time.Second}, cdactest.Behaviour{Delay: time.Second}) // two timeouts
	f.gw.Script("9816000011", cdactest.Behaviour{Answer: "405,Internal Networking Error"})
	id := f.request("HOMEWORK", map[string]string{"subject": "गणित"}, []int{7})
	f.newClient(true)
	if n, err := sms.Reconcile(context.Background(), f.pool, f.newClient(false), 0); err != nil || n != 1 {
		t.Fatalf("reconcile: %d %v", n, err)
	}
	s := f.waitFor(id, "DONE", "FAILED")
	if s.Status != "DONE" || s.Sent != 19 || s.Failed != 1 || s.Total != 20 {
		t.Fatalf("request %+v, want DONE 19 sent 1 failed", s)
	}
	var status, lastErr string
	var attempts int
	if err := f.pool.QueryRow(context.Background(), `SELECT status, last_error, attempts FROM sms_message WHERE phone = '+919816000003'`).
		Scan(&status, &lastErr, &attempts); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || !strings.Contains(lastErr, "406") || attempts != 1 {
		t.Errorf("bad number: %s %q after %d attempts, want failed with the gateway's reason, not retried", status, lastErr, attempts)
	}
	if err := f.pool.QueryRow(context.Background(), `SELECT status, attempts FROM sms_message WHERE phone = '+919816000007'`).
		Scan(&status, &attempts); err != nil {
		t.Fatal(err)
	}
	if status != "sent" || attempts != 3 {
		t.Errorf("timed-out number: %s after %d attempts, want sent on the third", status, attempts)
	}
	if !strings.Contains(s.Remarks, "19 of 20 sent, 1 failed") {
		t.Errorf("remarks %q", s.Remarks)
	}
}

func TestInvalidDuplicateAndForeignNumbers(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.student("एक", 5, "A", "+919816012345")
	f.student("दो", 5, "A", "09816012345") // the same number with a trunk 0
	f.student("तीन", 5, "A", "+1 415 555 2671")
	f.student("चार", 5, "A", "123456789")
	f.student("पाँच", 5, "A", "0177-2658123") // Shimla landline
	f.student("छह", 5, "A", nil)
	f.student("सात", 6, "A", "+919418000000") // not targeted
	id := f.request("EXAM_ANNOUNCEMENT", map[string]string{"assessment": "SA-1", "start_date": "1 मार्च", "end_date": "10 मार्च"}, []int{5})
	f.newClient(true)
	if _, err := sms.Reconcile(context.Background(), f.pool, f.newClient(false), 0); err != nil {
		t.Fatal(err)
	}
	s := f.waitFor(id, "DONE", "FAILED")
	if s.Status != "DONE" || s.Total != 1 || s.Sent != 1 || s.Skipped != 4 {
		t.Fatalf("request %+v, want one message sent and 4 skipped", s)
	}
	reasons := map[string]string{}
	rows, _ := f.pool.Query(context.Background(), `SELECT phone, last_error FROM sms_message WHERE request_id = $1 AND status = 'undeliverable'`, id)
	for rows.Next() {
		var p, r string
		_ = rows.Scan(&p, &r)
		reasons[p] = r
	}
	want := map[string]string{"+1 415 555 2671": sms.ReasonForeign, "123456789": sms.ReasonInvalid, "0177-2658123": sms.ReasonNotMobile}
	for p, r := range want {
		if reasons[p] != r {
			t.Errorf("%s: reason %q, want %q", p, reasons[p], r)
		}
	}
	var body string
	_ = f.pool.QueryRow(context.Background(), `SELECT body FROM sms_message WHERE request_id = $1 AND status = 'sent'`, id).Scan(&body)
	if !strings.Contains(body, "एक, दो (5-A)") {
		t.Errorf("body %q: both siblings' names and class expected", body)
	}
}

func TestMissingVariableFailsBeforeAnythingIsSent(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.student("एक", 5, "A", "+919816012345")
	id := f.request("HOLIDAY", map[string]string{"start_date": "25 दिसंबर"}, nil)
	f.newClient(true)
	if _, err := sms.Reconcile(context.Background(), f.pool, f.newClient(false), 0); err != nil {
		t.Fatal(err)
	}
	s := f.waitFor(id, "DONE", "FAILED")
	if s.Status != "FAILED" || s.Remarks != "missing template variables: end_date, reopen_date" || s.Messages != 0 {
		t.Errorf("request %+v", s)
	}
	if len(f.gw.Received()) != 0 {
		t.Error("something was sent")
	}
}

func TestNobodyReachableFailsWithReasons(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.student("एक", 5, "A", nil)
	f.student("दो", 5, "A", "123456789")
	id := f.request("MEETING", map[string]string{"meeting_date": "5 दिसंबर"}, nil)
	f.newClient(true)
	if _, err := sms.Reconcile(context.Background(), f.pool, f.newClient(false), 0); err != nil {
		t.Fatal(err)
	}
	s := f.waitFor(id, "DONE", "FAILED")
	if s.Status != "FAILED" || !strings.Contains(s.Remarks, "1 invalid number, 1 no phone") {
		t.Errorf("request %+v", s)
	}
}

// TestKilledMidFanOutLosesNothing stops the River client hard (running jobs
// cancelled) while the request is being expanded and sent, then starts a new
// client: every message ends terminal, every phone has exactly one message,
// and a phone can have been sent twice only if its send was in flight at the
// kill (at most the sms queue's workers × sms.BatchConcurrency).
func TestKilledMidFanOutLosesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	const n = 2500 // three expansion pages
	rows := make([][]any, n)
	for i := range n {
		rows[i] = []any{f.school, fmt.Sprintf("विद्यार्थी %d", i), "MALE", 1 + i%12, fmt.Sprintf("+91981%07d", i)}
	}
	if _, err := f.pool.CopyFrom(context.Background(), pgx.Identifier{"student"},
		[]string{"school_id", "name", "gender", "grade", "guardian_phone"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	id := f.request("ANNOUNCEMENT", map[string]string{"event": "वार्षिक खेल दिवस", "event_date": "15 दिसंबर"}, nil)
	first := f.newClient(false)
	if err := first.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := sms.Reconcile(context.Background(), f.pool, first, 0); err != nil {
		t.Fatal(err)
	}
	f.jobs.Await(t, "50 messages sent", func() bool {
		return f.count(`SELECT count(*) FROM sms_message WHERE request_id = $1 AND status = 'sent'`, id) >= 50
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	_ = first.StopAndCancel(ctx) // the kill: running jobs are cancelled mid-work
	cancel()
	killedAt := f.state(id)

	f.newClient(true)
	s := f.waitFor(id, "DONE", "FAILED")
	if s.Status != "DONE" || s.Total != n || s.Sent != n || s.Messages != n {
		t.Fatalf("after restart: %+v, want all %d sent (killed at %+v)", s, n, killedAt)
	}
	twice := 0
	for number, times := range f.gw.Accepted() {
		if times > 1 {
			twice++
			t.Logf("%s sent %d times (in flight at the kill)", number, times)
		}
	}
	if inFlight := 8 * sms.BatchConcurrency; twice > inFlight {
		t.Errorf("%d phones got the message twice, more than the %d sends that can be in flight", twice, inFlight)
	}
	if got := len(f.gw.Accepted()); got != n {
		t.Errorf("%d distinct phones reached, want %d", got, n)
	}
}

func TestTwilioStatusCallbacks(t *testing.T) {
	t.Parallel()
	f := setup(t, withTwilio())
	f.student("एक", 5, "A", "+919816012345")
	f.student("दो", 5, "A", "+919816012346")
	id := f.request("SLR", map[string]string{"link": "https://shala.example/r/abc"}, nil)
	f.newClient(true)
	if _, err := sms.Reconcile(context.Background(), f.pool, f.newClient(false), 0); err != nil {
		t.Fatal(err)
	}
	f.waitFor(id, "DONE")
	created := f.twilio.Created()
	if len(created) != 2 {
		t.Fatalf("twilio got %d messages, want 2", len(created))
	}
	if code, err := f.twilio.Callback(created[0].SID, "delivered", "", "forged-token"); err != nil || code != 403 {
		t.Errorf("forged callback: %d %v, want 403", code, err)
	}
	if code, err := f.twilio.Callback(created[0].SID, "delivered", "", ""); err != nil || code != 204 {
		t.Errorf("callback: %d %v", code, err)
	}
	if code, err := f.twilio.Callback(created[1].SID, "undelivered", "30003", ""); err != nil || code != 204 {
		t.Errorf("callback: %d %v", code, err)
	}
	f.jobs.Await(t, "the counts to follow the callbacks", func() bool {
		s := f.state(id)
		return s.Delivered == 1 && s.Failed == 1
	})
	var lastErr string
	_ = f.pool.QueryRow(context.Background(), `SELECT last_error FROM sms_message WHERE provider_message_id = $1`, created[1].SID).Scan(&lastErr)
	if lastErr != "twilio undelivered 30003" {
		t.Errorf("undelivered reason %q", lastErr)
	}
}

func TestCDACDeliveryReportsArePolled(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.student("एक", 5, "A", "+919816012345")
	f.student("दो", 5, "A", "+919816012346")
	id := f.request("SLR", map[string]string{"link": "https://shala.example/r/abc"}, nil)
	q := f.newClient(true)
	if _, err := sms.Reconcile(context.Background(), f.pool, q, 0); err != nil {
		t.Fatal(err)
	}
	f.waitFor(id, "DONE")
	rec := f.gw.Received()
	f.gw.SetReport(rec[0].MsgID, "DELIVERED")
	n, err := sms.PollReports(context.Background(), f.pool, f.provider.(sms.Poller))
	if err != nil || n != 1 {
		t.Fatalf("poll: %d changed, %v; want 1", n, err)
	}
	if got := f.count(`SELECT count(*) FROM sms_message WHERE status = 'delivered' AND delivered_at IS NOT NULL`); got != 1 {
		t.Errorf("%d delivered, want 1", got)
	}
}

func TestDirectMessagesFromOtherCapabilities(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id, err := sms.Enqueue(ctx, tx, sms.Direct{Type: "RULE_FLAG", Phones: []string{"98160 55555"}, Source: "forms",
		Variables: map[string]string{"reference": "HH-0042", "form_title": "घरेलू सर्वेक्षण", "message": "मासिक बचत आय से अधिक है"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	q := f.newClient(true)
	if _, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil {
		t.Fatal(err)
	}
	s := f.waitFor(id, "DONE", "FAILED")
	if s.Status != "DONE" || s.Sent != 1 {
		t.Fatalf("direct message: %+v", s)
	}
	rec := f.gw.Received()
	if len(rec) != 1 || rec[0].Number != "9816055555" || !strings.Contains(rec[0].Text, "मासिक बचत आय से अधिक है") {
		t.Errorf("gateway got %+v", rec)
	}
}

// A direct message without variables (a nil map) is recorded with none,
// not refused: a nil Go map is JSON null, which the column's check refuses.
func TestDirectMessageWithoutVariables(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	var id uuid.UUID
	err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		var err error
		id, err = sms.Enqueue(ctx, tx, sms.Direct{Type: "RULE_FLAG", Phones: []string{"98160 55555"}, Source: "forms"})
		return err
	})
	if err != nil {
		t.Fatalf("enqueue without variables: %v", err)
	}
	var vars string
	if err := f.pool.QueryRow(ctx, `SELECT variables::text FROM sms_request WHERE id = $1`, id).Scan(&vars); err != nil || vars != "{}" {
		t.Errorf("variables %q %v, want {}", vars, err)
	}
}

func TestTemplateRendering(t *testing.T) {
	t.Parallel()
	tm := sms.Template{Type: "HOMEWORK", Body: "प्रिय अभिभावक, {student_name} ({class}) को {subject} का गृहकार्य।"}
	if got := sms.Placeholders(tm.Body); strings.Join(got, ",") != "class,student_name,subject" {
		t.Errorf("placeholders %v", got)
	}
	if m := tm.Missing(map[string]string{"subject": "  "}); len(m) != 1 || m[0] != "subject" {
		t.Errorf("missing %v, want [subject] (blank counts as missing; builtins are not)", m)
	}
	got, err := tm.Render(map[string]string{"student_name": "आरव", "class": "6-A", "subject": "गणित\n{class}"})
	if err != nil || got != "प्रिय अभिभावक, आरव (6-A) को गणित (class) का गृहकार्य।" {
		t.Errorf("render %q %v: values must not inject placeholders or newlines", got, err)
	}
}

func TestNormalizeAndMask(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"9816012345": "+919816012345", "098160 12345": "+919816012345", "+91 98160-12345": "+919816012345",
	} {
		if got, reason := sms.Normalize(raw); got != want || reason != "" {
			t.Errorf("Normalize(%q) = %q %q, want %q", raw, got, reason, want)
		}
	}
	for raw, want := range map[string]string{"": sms.ReasonNoPhone, "12345": sms.ReasonInvalid,
		"+14155552671": sms.ReasonForeign, "0177-2658123": sms.ReasonNotMobile} {
		if _, reason := sms.Normalize(raw); reason != want {
			t.Errorf("Normalize(%q) reason %q, want %q", raw, reason, want)
		}
	}
	if got := sms.Mask("+919816012345"); got != "+********2345" {
		t.Errorf("Mask = %s", got)
	}
	if got := sms.MaskText("21211: The 'To' number +91 98160 12345 is not a valid phone number. job 42"); got != "21211: The 'To' number +** ***** *2345 is not a valid phone number. job 42" {
		t.Errorf("MaskText = %s", got)
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	unlimited := sms.Limiter(0)
	for range 1000 {
		if !unlimited.Allow() {
			t.Fatal("SHALA_SMS_RATE=0 limited a send")
		}
	}
	two := sms.Limiter(2)
	if !two.Allow() {
		t.Fatal("first send refused")
	}
	if two.Allow() {
		t.Error("a second send in the same instant was allowed at 2/s")
	}
}
