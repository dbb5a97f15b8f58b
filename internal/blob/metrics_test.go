package blob_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/gcerrors"

	"github.com/shala-edu/shala/internal/blob"
	"github.com/shala-edu/shala/internal/promtest"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	// Two registries, as two servers in one process: both see the
	// process's calls (gocloud.dev measures with the global provider).
	reg, other := prometheus.NewRegistry(), prometheus.NewRegistry()
	blob.NewMetrics(reg)
	blob.NewMetrics(other)
	bucket, err := blob.Open(ctx, "file://"+t.TempDir()+"?create_dir=true")
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()

	calls := func(g prometheus.Gatherer, method, status string) float64 {
		t.Helper()
		return promtest.Value(t, g, "shala_blob_calls_total", map[string]string{"provider": "fileblob", "method": method, "status": status})
	}
	payload := strings.Repeat("x", 1000)
	if err := bucket.WriteAll(ctx, "a.txt", []byte(payload), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := bucket.ReadAll(ctx, "a.txt"); err != nil || string(got) != payload {
		t.Fatalf("ReadAll = %d bytes, %v; want the %d written", len(got), err, len(payload))
	}
	if _, err := bucket.Attributes(ctx, "missing.txt"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("Attributes(missing) = %v; want NotFound", err)
	}
	if err := bucket.Delete(ctx, "a.txt"); err != nil {
		t.Fatal(err)
	}
	if err := bucket.Delete(ctx, "a.txt"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("second Delete = %v; want NotFound", err)
	}

	// Other tests of the package run in parallel and may add calls: read
	// at least what this one made.
	for _, c := range []struct {
		method, status string
		want           float64
	}{
		{"NewWriter", "OK", 1},
		{"NewRangeReader", "OK", 1},
		{"Attributes", "NotFound", 1},
		{"Delete", "OK", 1},
		{"Delete", "NotFound", 1},
	} {
		for name, g := range map[string]prometheus.Gatherer{"reg": reg, "other": other} {
			if got := calls(g, c.method, c.status); got < c.want {
				t.Errorf("%s: shala_blob_calls_total{method=%q,status=%q} = %v; want ≥ %v", name, c.method, c.status, got, c.want)
			}
		}
	}
	for _, c := range []struct {
		direction string
		want      float64
	}{{"read", 1000}, {"written", 1000}} {
		got := promtest.Value(t, reg, "shala_blob_bytes_total", map[string]string{"provider": "fileblob", "direction": c.direction})
		if got < c.want {
			t.Errorf("shala_blob_bytes_total{direction=%q} = %v; want ≥ %v", c.direction, got, c.want)
		}
	}
	// The duration histogram counts every call of a method, whatever its
	// status, in seconds.
	deletes := calls(reg, "Delete", "OK") + calls(reg, "Delete", "NotFound")
	if got := promtest.Value(t, reg, "shala_blob_call_duration_seconds", map[string]string{"provider": "fileblob", "method": "Delete"}); got != deletes {
		t.Errorf("shala_blob_call_duration_seconds{method=Delete} count = %v; want %v (the Delete calls)", got, deletes)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "shala_blob_call_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			var last uint64
			for _, b := range h.GetBucket() {
				if b.GetCumulativeCount() < last || b.GetCumulativeCount() > h.GetSampleCount() {
					t.Errorf("bucket le=%v holds %d after %d (of %d): want cumulative counts", b.GetUpperBound(), b.GetCumulativeCount(), last, h.GetSampleCount())
				}
				last = b.GetCumulativeCount()
			}
			if top := h.GetBucket()[len(h.GetBucket())-1].GetUpperBound(); top != 30 {
				t.Errorf("largest bucket = %v s; want 30 (gocloud.dev's milliseconds in seconds)", top)
			}
		}
	}
}
