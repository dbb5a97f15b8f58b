package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/logging"
)

func TestPanicBecomesLogged500AndServerSurvives(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	log := logging.New(&logs, slog.LevelInfo)
	h := requestID(recoverer(log)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			panic("nil map write")
		}
		w.WriteHeader(204)
	})))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), `"code":"INTERNAL"`) {
		t.Errorf("panic: %d %s, want 500 in Hasura's format", resp.StatusCode, body)
	}
	if !strings.Contains(logs.String(), "nil map write") || !strings.Contains(logs.String(), `"request_id"`) {
		t.Errorf("panic not logged with the request id: %s", logs.String())
	}
	resp, err = http.Get(srv.URL + "/fine")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("after a panic: %d, want 204", resp.StatusCode)
	}
}

func TestServeFinishesInFlightRequestsOnShutdown(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	shutdown := newLogSignal("shutting down http server")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-shutdown.seen // still working when the shutdown begins
		_, _ = w.Write([]byte("done"))
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, slog.New(shutdown), 10*time.Second) }()

	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			res <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res <- result{body: string(b)}
	}()
	<-started
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if r := <-res; r.err != nil || r.body != "done" {
		t.Errorf("in-flight request: %q %v, want it completed", r.body, r.err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Error("new connection accepted after shutdown")
	}
}

// A webhook that panics is counted as an error, not as ok.
func TestPanickingWebhookIsCountedAsError(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	log := logging.New(io.Discard, slog.LevelInfo)
	r := chi.NewRouter()
	r.Use(recoverer(log))
	r.With(m.countWebhook("event")).Post("/events/boom", func(w http.ResponseWriter, r *http.Request) { panic("bug") })
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/events/boom", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := testutil.ToFloat64(m.webhooks.WithLabelValues("event", "boom", "error")); got != 1 {
		t.Errorf("error outcome counted %v times, want 1", got)
	}
	if got := testutil.ToFloat64(m.webhooks.WithLabelValues("event", "boom", "ok")); got != 0 {
		t.Errorf("the panic was counted as ok")
	}
}

// A request still running at the shutdown timeout is cancelled, so stopping
// never takes (much) longer than the timeout.
func TestServeCancelsRequestsStillRunningAtTheTimeout(t *testing.T) {
	t.Parallel()
	started, cancelled := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(time.Minute):
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, slog.New(slog.DiscardHandler), 200*time.Millisecond) }()
	go func() {
		if resp, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still waiting for the request long after the shutdown timeout")
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Error("the running request's context was never cancelled")
	}
}

// A panic is answered in the wire format of the route it happened on: XML
// on OpenRosa's routes, Hasura's JSON on Hasura's.
func TestPanicIsAnsweredInTheRoutesFormat(t *testing.T) {
	t.Parallel()
	xmlWriter := func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(httperr.Status(fault.As(err).Kind))
		_, _ = w.Write([]byte(`<OpenRosaResponse xmlns="http://openrosa.org/http/response"><message>internal error</message></OpenRosaResponse>`))
	}
	boom := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	r := chi.NewRouter()
	r.Use(httperr.Track, recoverer(slog.New(slog.DiscardHandler)))
	r.With(httperr.Use(xmlWriter)).Get("/openrosa/boom", boom)
	r.With(httperr.Use(hasura.WriteError)).Get("/actions/boom", boom)
	for _, tt := range []struct{ path, wantType, wantBody string }{
		{"/openrosa/boom", "text/xml; charset=utf-8", "<OpenRosaResponse"},
		{"/actions/boom", "application/json; charset=utf-8", `"code":"INTERNAL"`},
	} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		if rec.Code != 500 || rec.Header().Get("Content-Type") != tt.wantType || !strings.Contains(rec.Body.String(), tt.wantBody) {
			t.Errorf("GET %s: %d %s %s, want 500 %s with %s", tt.path, rec.Code, rec.Header().Get("Content-Type"), rec.Body.String(), tt.wantType, tt.wantBody)
		}
	}
}

// logSignal is a log handler that closes seen when a record with message
// msg is logged: a test waits for what the code says it is doing.
type logSignal struct {
	msg  string
	seen chan struct{}
	once *sync.Once
}

func newLogSignal(msg string) logSignal {
	return logSignal{msg: msg, seen: make(chan struct{}), once: new(sync.Once)}
}

func (h logSignal) Enabled(context.Context, slog.Level) bool { return true }

func (h logSignal) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}

func (h logSignal) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logSignal) WithGroup(string) slog.Handler      { return h }
