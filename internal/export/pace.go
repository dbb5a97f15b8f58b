package export

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
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
	// MaxWait is the longest a run sleeps for its slot; when the next free
	// slot is further, the run takes none, ends, and the job comes back when
	// it is within reach (0: always take the next slot and sleep).
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
	return &Pacer{Interval: time.Minute / time.Duration(perMinute), Key: "sheets", MaxWait: 2 * time.Second}
}

// maxWait is the longest Wait may sleep (nil-safe; 0 when unpaced or
// unbounded).
func (p *Pacer) maxWait() time.Duration {
	if p == nil {
		return 0
	}
	return p.MaxWait
}

// Wait takes the next write slot and sleeps until it starts. When the next
// free slot is more than MaxWait away, no slot is taken and a waitErr says
// when to come back (when it would be MaxWait away): a slot taken and left
// unused is lost to every writer, and with more runs waiting than MaxWait
// holds (several replicas, many exports with a backlog) runs that took a
// far slot and left would push the next one ever further while nobody
// writes.
func (p *Pacer) Wait(ctx context.Context, q querier) error {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	t := now()
	var reach *time.Time // the furthest slot worth taking; nil: any
	if p.MaxWait > 0 {
		r := t.Add(p.MaxWait)
		reach = &r
	}
	var slot time.Time
	err := q.QueryRow(ctx, `INSERT INTO sheets_quota (key, next_at) VALUES ($1, $2::timestamptz + $3::interval)
		ON CONFLICT (key) DO UPDATE SET next_at = greatest(sheets_quota.next_at, $2::timestamptz) + $3::interval
		  WHERE $4::timestamptz IS NULL OR sheets_quota.next_at <= $4::timestamptz
		RETURNING next_at - $3::interval`, p.Key, t, p.Interval, reach).Scan(&slot)
	if errors.Is(err, pgx.ErrNoRows) {
		// The next slot is beyond reach and was left to others.
		var next time.Time
		if err := q.QueryRow(ctx, `SELECT next_at FROM sheets_quota WHERE key = $1`, p.Key).Scan(&next); err != nil {
			return err
		}
		return waitErr(max(next.Sub(*reach), p.Interval))
	}
	if err != nil {
		return err
	}
	d := slot.Sub(t)
	if d <= 0 {
		return nil
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
