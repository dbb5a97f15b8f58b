package ratelimit_test

import (
	"context"
	"fmt"
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

// A flood from more addresses than MaxClients does not grow memory without
// bound: the newcomers share one overflow bucket, known clients keep theirs.
func TestFloodOfAddressesSharesOneOverflowBucket(t *testing.T) {
	t.Parallel()
	p := ratelimit.New(1, 3)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range ratelimit.MaxClients {
		p.Allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), now)
	}
	allowed := 0
	for i := range 10 {
		if p.Allow(fmt.Sprintf("172.16.0.%d", i), now) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d of 10 newcomers allowed, want the overflow bucket's burst of 3", allowed)
	}
	if !p.Allow("10.0.0.1", now.Add(1100*time.Millisecond)) {
		t.Error("a known client lost its own bucket")
	}
	// Once the flood is idle for a bucket's refill time, it is forgotten.
	later := now.Add(10 * time.Second)
	for i := range 3 {
		if !p.Allow(fmt.Sprintf("172.16.1.%d", i), later) {
			t.Errorf("newcomer %d refused after the flood went idle", i)
		}
	}
}

// IPv6 clients are limited per /64: one subscriber cannot rotate addresses
// within its prefix to get fresh buckets.
func TestIPv6SharesABucketPer64(t *testing.T) {
	t.Parallel()
	h := ratelimit.New(1, 2).Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	codes := []int{}
	for _, addr := range []string{"[2001:db8:1:2::1]:4000", "[2001:db8:1:2::ffff]:4000", "[2001:db8:1:2:aaaa::3]:4000", "[2001:db8:1:3::1]:4000"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = addr
		h.ServeHTTP(rec, req)
		codes = append(codes, rec.Code)
	}
	if codes[0] != 204 || codes[1] != 204 || codes[2] != 429 || codes[3] != 204 {
		t.Errorf("codes %v, want 204 204 429 (same /64) 204 (another /64)", codes)
	}
}

// Hold counts the requests in flight against what is left: requests sent
// at once get no more than the bucket holds, the others wait for one to
// end; one that did not fail gives its request back, one that failed takes
// it; a client with nothing left is refused at once.
func TestHoldCountsRequestsInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := ratelimit.New(1.0/30, 3)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var held []func()
	for i := range 3 {
		release, ok := p.Hold(ctx, "10.0.0.1", now)
		if !ok {
			t.Fatalf("hold %d of 3 refused", i)
		}
		held = append(held, release)
	}
	if _, ok := p.Hold(ctx, "10.0.0.2", now); !ok {
		t.Error("another IP shares the first one's holds")
	}
	// A fourth waits while the three are in flight …
	got := make(chan bool, 1)
	go func() {
		_, ok := p.Hold(ctx, "10.0.0.1", now)
		got <- ok
	}()
	held[0]() // … a hit gives its request back, and the fourth has it.
	held[0]() // releasing twice gives back once
	if !<-got {
		t.Fatal("a request given back did not go to the one waiting")
	}
	// Now 3 held of 3: a miss takes its request and lets its hold go, which
	// leaves 2 held of 2, and the next one waits until its context ends.
	p.Allow("10.0.0.1", now)
	held[1]()
	short, cancel := context.WithCancel(ctx)
	cancel()
	if _, ok := p.Hold(short, "10.0.0.1", now); ok {
		t.Error("a hold beyond what is left was granted: 3 − 1 taken − 2 held leaves none")
	}
	// Spent: refused at once, without waiting for anything.
	p.Allow("10.0.0.1", now)
	p.Allow("10.0.0.1", now)
	if _, ok := p.Hold(ctx, "10.0.0.1", now); ok {
		t.Error("a client with nothing left got a hold")
	}
}
