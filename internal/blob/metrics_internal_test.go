package blob

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// TestOtherLibrariesMetricsAreDropped: the process-wide provider keeps only
// gocloud.dev/blob's instruments; another library's (the Google API
// client's HTTP metrics) are not aggregated.
func TestOtherLibrariesMetricsAreDropped(t *testing.T) {
	NewMetrics(prometheus.NewRegistry())
	c, err := otel.Meter("go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp").Int64Counter("http.client.request.body.size")
	if err != nil {
		t.Fatal(err)
	}
	c.Add(t.Context(), 42)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != blobScope && len(sm.Metrics) > 0 {
			t.Errorf("scope %s: %d metrics kept; want none outside %s", sm.Scope.Name, len(sm.Metrics), blobScope)
		}
	}
}
