package blob

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// The instruments gocloud.dev/blob measures every bucket with (see its
// package doc, "OpenTelemetry Integration"): the latency of each call in
// milliseconds, with its method and status (a gcerrors code: OK,
// NotFound, Internal, …), and the bytes read and written.
const (
	blobScope         = "gocloud.dev/blob"
	latencyInstrument = "gocloud.dev/blob/latency"
	readInstrument    = "gocloud.dev/blob/bytes_read"
	writeInstrument   = "gocloud.dev/blob/bytes_written"
	providerKey       = attribute.Key("gocdk_provider")
	methodKey         = attribute.Key("gocdk_method")
	statusKey         = attribute.Key("gocdk_status")
)

// durationBoundsMS are the latency buckets, in the milliseconds gocloud.dev
// records (whole ones: a call under 1 ms records 0).
var durationBoundsMS = []float64{0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// gocloud.dev takes its meters from OpenTelemetry's process-wide provider
// (otel.Meter), not from an argument, so the measurements of every bucket
// in the process go to one reader, installed once by the first
// NewMetrics. This is the package-level state STYLE.md asks to avoid,
// kept because the library gives no other way in; every registry that
// asks reads the same process totals.
var (
	installOnce sync.Once
	reader      *sdkmetric.ManualReader
)

func processReader() *sdkmetric.ManualReader {
	installOnce.Do(func() {
		reader = sdkmetric.NewManualReader()
		otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader), sdkmetric.WithView(blobOnly)))
	})
	return reader
}

// blobOnly keeps gocloud.dev/blob's instruments, its latency in
// durationBoundsMS, and drops every other library's (the Google API
// client's HTTP metrics, say), which nothing would read.
func blobOnly(inst sdkmetric.Instrument) (sdkmetric.Stream, bool) {
	s := sdkmetric.Stream{Name: inst.Name, Description: inst.Description, Unit: inst.Unit}
	switch {
	case inst.Scope.Name != blobScope:
		s.Aggregation = sdkmetric.AggregationDrop{}
	case inst.Name == latencyInstrument:
		s.Aggregation = sdkmetric.AggregationExplicitBucketHistogram{Boundaries: durationBoundsMS}
	}
	return s, true
}

// Metrics makes the process's bucket calls visible to Prometheus, read
// from gocloud.dev's own measurements at scrape time:
// shala_blob_calls_total{provider,method,status},
// shala_blob_call_duration_seconds{provider,method} and
// shala_blob_bytes_total{provider,direction} (read, written). A call's
// method is gocloud.dev's: Attributes, Copy, Delete, ListPage,
// NewRangeReader (a read, from opening to Close) and NewWriter (a write,
// to Close). The provider is the driver's package (fileblob, s3blob) —
// "driver" for a bucket opened with ?prefix=, which gocloud.dev wraps.
type Metrics struct {
	reader   *sdkmetric.ManualReader
	calls    *prometheus.Desc
	duration *prometheus.Desc
	bytes    *prometheus.Desc
}

// NewMetrics registers the blob metrics on reg. Create it before opening
// a bucket; a bucket opened earlier is counted too.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reader: processReader(),
		calls: prometheus.NewDesc("shala_blob_calls_total",
			"Blob storage calls by provider (fileblob, s3blob), method and status (OK or the gocloud.dev error code).",
			[]string{"provider", "method", "status"}, nil),
		duration: prometheus.NewDesc("shala_blob_call_duration_seconds",
			"Blob storage call latency by provider and method (reads and writes until Close), measured in whole milliseconds.",
			[]string{"provider", "method"}, nil),
		bytes: prometheus.NewDesc("shala_blob_bytes_total",
			"Bytes read from and written to blob storage, by provider and direction (read, written).",
			[]string{"provider", "direction"}, nil),
	}
	reg.MustRegister(m)
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.calls
	ch <- m.duration
	ch <- m.bytes
}

// Collect implements prometheus.Collector: it reads the process's
// measurements and reports them under shala's names.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		ch <- prometheus.NewInvalidMetric(m.calls, err)
		return
	}
	type key struct{ provider, method string }
	durations := map[key]*histogram{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != blobScope {
			continue
		}
		provider := scopeProvider(sm)
		for _, md := range sm.Metrics {
			switch data := md.Data.(type) {
			case metricdata.Histogram[float64]:
				if md.Name != latencyInstrument {
					continue
				}
				for _, dp := range data.DataPoints {
					// gocloud.dev names it with its package: gocloud.dev/blob.NewWriter.
					method := after(value(dp.Attributes, methodKey), ".")
					ch <- prometheus.MustNewConstMetric(m.calls, prometheus.CounterValue, float64(dp.Count),
						provider, method, value(dp.Attributes, statusKey))
					k := key{provider, method}
					if durations[k] == nil {
						durations[k] = &histogram{buckets: map[float64]uint64{}}
					}
					durations[k].add(dp)
				}
			case metricdata.Sum[int64]:
				var direction string
				switch md.Name {
				case readInstrument:
					direction = "read"
				case writeInstrument:
					direction = "written"
				default:
					continue
				}
				var total int64
				for _, dp := range data.DataPoints {
					total += dp.Value
				}
				ch <- prometheus.MustNewConstMetric(m.bytes, prometheus.CounterValue, float64(total), provider, direction)
			}
		}
	}
	keys := make([]key, 0, len(durations))
	for k := range durations {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].provider+"\x00"+keys[i].method < keys[j].provider+"\x00"+keys[j].method
	})
	for _, k := range keys {
		h := durations[k]
		ch <- prometheus.MustNewConstHistogram(m.duration, h.count, h.sum, h.buckets, k.provider, k.method)
	}
}

// histogram sums the latency data points of one method (one per status)
// into Prometheus's shape: cumulative counts by upper bound, in seconds.
type histogram struct {
	count   uint64
	sum     float64
	buckets map[float64]uint64
}

func (h *histogram) add(dp metricdata.HistogramDataPoint[float64]) {
	h.count += dp.Count
	h.sum += dp.Sum / 1000
	var cumulative uint64
	for i, bound := range dp.Bounds {
		cumulative += dp.BucketCounts[i]
		h.buckets[bound/1000] += cumulative
	}
}

// scopeProvider is the provider gocloud.dev names a bucket's meter with
// ("gocloud.dev/blob/fileblob" → fileblob), or "unknown".
func scopeProvider(sm metricdata.ScopeMetrics) string {
	if v, ok := sm.Scope.Attributes.Value(providerKey); ok && v.AsString() != "" {
		return after(v.AsString(), "/")
	}
	return "unknown"
}

// after is what follows the last sep in s, or s.
func after(s, sep string) string {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return s
}

func value(set attribute.Set, k attribute.Key) string {
	if v, ok := set.Value(k); ok {
		return v.String()
	}
	return ""
}
