package analytics_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/shala-edu/shala/internal/analytics"
)

// batchServer speaks PostHog's capture API: POST /batch/ with
// {"api_key", "batch": [{"type":"capture","event","distinct_id","properties",…}]}.
type batchServer struct {
	mu     sync.Mutex
	keys   []string
	events []map[string]any
}

func (b *batchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/batch/" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, `{"type":"validation_error","code":"invalid_payload"}`, http.StatusBadRequest)
		return
	}
	var body struct {
		APIKey string           `json:"api_key"`
		Batch  []map[string]any `json:"batch"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.APIKey == "" {
		http.Error(w, `{"type":"authentication_error","code":"invalid_api_key"}`, http.StatusUnauthorized)
		return
	}
	b.mu.Lock()
	b.keys = append(b.keys, body.APIKey)
	b.events = append(b.events, body.Batch...)
	b.mu.Unlock()
	_, _ = w.Write([]byte(`{"status":1}`))
}

func TestEventsAreFlushedOnClose(t *testing.T) {
	t.Parallel()
	bs := &batchServer{}
	srv := httptest.NewServer(bs)
	defer srv.Close()
	tr, err := analytics.New("phc_test", srv.URL, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	tr.Capture("school-7f3c", "sms_request_done", map[string]any{"recipients": 41, "failed": 1})
	tr.Capture("shala", "server_started", nil)
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if len(bs.events) != 2 || bs.keys[0] != "phc_test" {
		t.Fatalf("got %d events with keys %v, want 2 with phc_test", len(bs.events), bs.keys)
	}
	e := bs.events[0]
	props, _ := e["properties"].(map[string]any)
	if e["type"] != "capture" || e["event"] != "sms_request_done" || e["distinct_id"] != "school-7f3c" || props["recipients"] != float64(41) {
		t.Errorf("event %v", e)
	}
}

func TestNoKeyIsANoOp(t *testing.T) {
	t.Parallel()
	tr, err := analytics.New("", "http://127.0.0.1:1", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tr.(analytics.Nop); !ok {
		t.Errorf("got %T, want analytics.Nop", tr)
	}
	tr.Capture("x", "y", nil)
	if err := tr.Close(); err != nil {
		t.Error(err)
	}
}
