package lesson

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/queue"
)

// AlertSource reads Prometheus' active alerts (GET /api/v1/alerts);
// client_golang's v1.API implements it.
type AlertSource interface {
	Alerts(ctx context.Context) (v1.AlertsResult, error)
}

// AlertsArgs asks for the alert check (the bbb_alerts cron, and every
// minute on the leader): at most one per minute.
type AlertsArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (AlertsArgs) Kind() string { return "lesson.bbb_alerts" }

// AlertsWorker works AlertsArgs.
type AlertsWorker struct {
	river.WorkerDefaults[AlertsArgs]
	Pool *pgxpool.Pool
	Log  *slog.Logger
	// Source is Prometheus; nil when SHALA_PROMETHEUS_URL is unset (the job
	// then does nothing).
	Source AlertSource
}

// Timeout is one Prometheus call (at most half of it) and one transaction,
// within the rescue rule (queue.MaxTimeout).
func (w *AlertsWorker) Timeout(*river.Job[AlertsArgs]) time.Duration { return queue.MaxTimeout }

// Work applies the firing alerts to the pool.
func (w *AlertsWorker) Work(ctx context.Context, _ *river.Job[AlertsArgs]) error {
	if w.Source == nil {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, queue.MaxTimeout/2)
	defer cancel()
	res, err := w.Source.Alerts(actx)
	if err != nil {
		// Never read a failed fetch as "no alerts": nothing is re-enabled.
		return err
	}
	_, _, err = NewServers(w.Pool, nil, nil, w.Log, nil).ApplyAlerts(ctx, res.Alerts)
	return err
}

// AlertClearAfter is how long a server's alerts must stay clear before the
// alert check re-enables a server it disabled: a flapping alert keeps the
// server out instead of toggling it every minute.
const AlertClearAfter = 5 * time.Minute

// alertLabels are the labels that name a server: hostname (host[:port] as
// registered) or instance (an exporter's host:port on the server).
var alertLabels = []string{"hostname", "instance"}

// matches reports whether label value v names server hostname h.
func matches(v, h string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	if v == "" {
		return false
	}
	if v == h {
		return true
	}
	host, _, err := net.SplitHostPort(v)
	return err == nil && host == h
}

// ApplyAlerts disables enabled servers that have a firing alert labelled
// with their hostname (disabled_by alert, the alert's name as the reason),
// and re-enables the servers it disabled whose alerts have stayed clear for
// AlertClearAfter. Servers an operator disabled are left alone, and so are
// self-registered servers whose connection check has not passed (only the
// check enables those). Pending alerts do not count.
func (s *Servers) ApplyAlerts(ctx context.Context, alerts []v1.Alert) (disabled, enabled int, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, hostname, enabled, coalesce(disabled_by, ''),
				coalesce(alert_seen_at < now() - make_interval(secs => $1), true)
			FROM bbb_server ORDER BY id FOR UPDATE`, AlertClearAfter.Seconds())
		if err != nil {
			return err
		}
		type srv struct {
			id        uuid.UUID
			host, by  string
			enabled   bool
			quiet     bool // no firing alert seen for AlertClearAfter
			firing    string
			firingSet bool
		}
		var all []srv
		for rows.Next() {
			var x srv
			if err := rows.Scan(&x.id, &x.host, &x.enabled, &x.by, &x.quiet); err != nil {
				rows.Close()
				return err
			}
			all = append(all, x)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := range all {
			for _, a := range alerts {
				if a.State != v1.AlertStateFiring {
					continue
				}
				for _, l := range alertLabels {
					if matches(string(a.Labels[model.LabelName(l)]), all[i].host) {
						all[i].firing, all[i].firingSet = string(a.Labels["alertname"]), true
					}
				}
			}
		}
		for _, x := range all {
			if x.firingSet {
				if _, err := tx.Exec(ctx, `UPDATE bbb_server SET alert_seen_at = now() WHERE id = $1`, x.id); err != nil {
					return err
				}
			}
			switch {
			case x.firingSet && (x.enabled || x.by == DisabledUnreachable):
				if _, err := tx.Exec(ctx, `UPDATE bbb_server SET enabled = false, disabled_by = 'alert', disabled_reason = $2, disabled_at = now() WHERE id = $1`,
					x.id, truncate("alert "+x.firing+" is firing", 500)); err != nil {
					return err
				}
				disabled++
				s.log.WarnContext(ctx, "bbb server disabled by an alert", "server_id", x.id, "host", x.host, "alert", x.firing)
			case !x.firingSet && x.quiet && !x.enabled && x.by == DisabledAlert:
				if _, err := tx.Exec(ctx, `UPDATE bbb_server SET enabled = true WHERE id = $1`, x.id); err != nil {
					return err
				}
				enabled++
				s.log.InfoContext(ctx, "bbb server re-enabled: its alerts cleared", "server_id", x.id, "host", x.host)
			}
		}
		return nil
	})
	return disabled, enabled, err
}
