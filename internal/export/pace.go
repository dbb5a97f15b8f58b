package export

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Pacer spaces Google Sheets writes Interval apart across every replica,
// through the sheets_quota row of Key: Google's write quota (60 a minute)
// is per service account, and one account writes every spreadsheet, so the
// exporter keeps all its writes — appends and header writes — under
// 60/Interval a minute together (50 with the default 1.2 s), which also
// keeps each spreadsheet under it.
type Pacer struct {
	Interval time.Duration
	Key      string
	// MaxWait is the longest a run sleeps for its slot; beyond it the run
	// ends and the job comes back at its slot.
	MaxWait time.Duration
	Now     func() time.Time
	// Sleep waits d or until ctx ends (a timer when nil).
	Sleep func(ctx context.Context, d time.Duration) error
}

// NewPacer allows perMinute writes a minute (0: unpaced).
func NewPacer(perMinute int) *Pacer {
	if perMinute <= 0 {
		return nil
	}
	return &Pacer{Interval: time.Minute / time.Duration(perMinute), Key: "sheets", MaxWait: 20 * time.Second}
}

// Wait takes the next write slot and sleeps until it starts. A slot more
// than MaxWait away is kept and reported as a waitErr.
func (p *Pacer) Wait(ctx context.Context, q querier) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	t := now()
	var slot time.Time
	if err := q.QueryRow(ctx, `INSERT INTO sheets_quota (key, next_at) VALUES ($1, $2::timestamptz + $3::interval)
		ON CONFLICT (key) DO UPDATE SET next_at = greatest(sheets_quota.next_at, $2::timestamptz) + $3::interval
		RETURNING next_at - $3::interval`, p.Key, t, p.Interval).Scan(&slot); err != nil {
		return err
	}
	d := slot.Sub(t)
	if d <= 0 {
		return nil
	}
	if p.MaxWait > 0 && d > p.MaxWait {
		return waitErr(d)
	}
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Metrics count what the exporter does (nil-safe).
type Metrics struct {
	calls    *prometheus.CounterVec
	appended prometheus.Counter
	checks   *prometheus.CounterVec
}

// NewMetrics registers the exporter's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shala_sheets_calls_total",
			Help: "Google Sheets appends and read-backs by call and outcome (ok, error)."}, []string{"call", "outcome"}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{Name: "shala_sheets_rows_appended_total",
			Help: "Response rows appended to Google Sheets and confirmed."}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shala_sheets_pending_checks_total",
			Help: "Appends of unknown outcome settled by reading the sheet back, by result (landed, missing)."}, []string{"result"}),
	}
	reg.MustRegister(m.calls, m.appended, m.checks)
	return m
}

func (m *Metrics) call(name string, err error) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.calls.WithLabelValues(name, outcome).Inc()
}

func (m *Metrics) rows(n int) {
	if m != nil {
		m.appended.Add(float64(n))
	}
}

func (m *Metrics) resolved(landed bool) {
	if m == nil {
		return
	}
	r := "missing"
	if landed {
		r = "landed"
	}
	m.checks.WithLabelValues(r).Inc()
}
