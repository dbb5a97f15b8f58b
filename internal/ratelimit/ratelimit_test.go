package ratelimit_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/ratelimit"
)

func TestPerIPBucketsAreSeparateAndRefill(t *testing.T) {
	t.Parallel()
	p := ratelimit.New(1, 3)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range 3 {
		if !p.Allow("10.0.0.1", now) {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if p.Allow("10.0.0.1", now) {
		t.Error("fourth request in the same instant allowed")
	}
	if !p.Allow("10.0.0.2", now) {
		t.Error("another IP shares the first one's bucket")
	}
	if !p.Allow("10.0.0.1", now.Add(1100*time.Millisecond)) {
		t.Error("bucket did not refill after a second")
	}
}

func TestMiddlewareAnswers429(t *testing.T) {
	t.Parallel()
	h := ratelimit.New(1, 1).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	codes := []int{}
	for range 2 {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "192.0.2.7:41234"
		h.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
		if rec.Code == 429 && rec.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
	}
	if codes[0] != 204 || codes[1] != 429 {
		t.Errorf("codes %v, want [204 429]", codes)
	}
}
