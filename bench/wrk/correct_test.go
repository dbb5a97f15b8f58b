package wrk

import (
	"slices"
	"testing"
	"time"
)

func TestCorrect(t *testing.T) {
	ms := time.Millisecond
	t.Run("a stall stands for the requests a steady sender would have queued behind it", func(t *testing.T) {
		// 2 connections, 10 samples in 50 ms: each connection sent one
		// request every 10 ms. The 45 ms sample stands for those sent at
		// 10, 20 and 30 ms into it, which would have waited 35, 25 and
		// 15 ms.
		lat := []time.Duration{5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 45 * ms}
		got := Correct(lat, 2, 50*ms)
		want := []time.Duration{5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 5 * ms, 15 * ms, 25 * ms, 35 * ms, 45 * ms}
		if !slices.Equal(got, want) {
			t.Errorf("Correct = %v, want %v", got, want)
		}
		if lat[9] != 45*ms || lat[0] != 5*ms {
			t.Errorf("Correct changed its input: %v", lat)
		}
	})
	t.Run("copies stop above one interval, as wrk's do", func(t *testing.T) {
		// One connection, 1 sample in 10 ms: interval 10 ms. A 40 ms
		// sample gets 30 and 20 ms, not 10 (wrk: while m > expected).
		got := Correct([]time.Duration{40 * ms}, 1, 10*ms)
		if want := []time.Duration{20 * ms, 30 * ms, 40 * ms}; !slices.Equal(got, want) {
			t.Errorf("Correct = %v, want %v", got, want)
		}
	})
	t.Run("samples under two intervals are kept as they are", func(t *testing.T) {
		lat := []time.Duration{19 * ms, 3 * ms, 10 * ms}
		got := Correct(lat, 1, 30*ms)
		if want := []time.Duration{3 * ms, 10 * ms, 19 * ms}; !slices.Equal(got, want) {
			t.Errorf("Correct = %v, want %v", got, want)
		}
	})
	t.Run("fewer samples than connections: nothing to correct", func(t *testing.T) {
		got := Correct([]time.Duration{40 * ms}, 100, time.Second)
		if want := []time.Duration{40 * ms}; !slices.Equal(got, want) {
			t.Errorf("Correct = %v, want %v", got, want)
		}
	})
}

func TestPercentile(t *testing.T) {
	sorted := make([]time.Duration, 100)
	for i := range sorted {
		sorted[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.50, 51 * time.Millisecond}, {0.99, 100 * time.Millisecond}, {0.01, 2 * time.Millisecond}} {
		if got := Percentile(sorted, tc.p); got != tc.want {
			t.Errorf("Percentile(1..100 ms, %v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := Percentile(nil, 0.99); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
}

func TestOver(t *testing.T) {
	ms := time.Millisecond
	sorted := []time.Duration{10 * ms, 25 * ms, 25*ms + 1, 40 * ms}
	if got := Over(sorted, 25*ms); got != 2 {
		t.Errorf("Over(%v, 25ms) = %d, want 2 (25 ms itself is not over)", sorted, got)
	}
	if got := Over(nil, 25*ms); got != 0 {
		t.Errorf("Over(nil) = %d, want 0", got)
	}
}
