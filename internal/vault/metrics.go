package vault

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Vault provider's: calls by kind and outcome, and their
// duration. Kinds: kv_read, transit_key, transit_sign, transit_rotate.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the Vault metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shala_vault_calls_total",
			Help: "Calls to Vault by kind (kv_read, transit_key, transit_sign, transit_rotate) and outcome (ok, not_found, error).",
		}, []string{"call", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shala_vault_call_duration_seconds",
			Help:    "Duration of calls to Vault by kind, retries by the client included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"call"}),
	}
	// The series the running service moves (its certificate signer's
	// calls) exist from the start; the others appear when first used.
	for _, c := range []string{"transit_key", "transit_sign"} {
		for _, o := range []string{"ok", "error"} {
			m.calls.WithLabelValues(c, o)
		}
	}
	reg.MustRegister(m.calls, m.duration)
	return m
}

// WithMetrics returns a copy of c counting its calls in m.
func (c *Client) WithMetrics(m *Metrics) *Client {
	cp := *c
	cp.metrics = m
	return &cp
}

// observe counts a call of kind that started at start and ended with err.
func (m *Metrics) observe(kind string, start time.Time, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	switch {
	case errors.Is(err, ErrNotFound):
		outcome = "not_found"
	case err != nil:
		outcome = "error"
	}
	m.calls.WithLabelValues(kind, outcome).Inc()
	m.duration.WithLabelValues(kind).Observe(time.Since(start).Seconds())
}
