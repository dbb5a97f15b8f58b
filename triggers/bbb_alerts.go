package triggers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/lesson"
)

// BBBAlerts handles the bbb_alerts cron trigger: it enqueues the alert
// check, which reads Prometheus' firing alerts and disables (and later
// re-enables) the BBB servers they name. River also runs it every minute;
// the job is unique per minute, so both together run it once.
func BBBAlerts(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewCron("bbb_alerts", log, func(ctx context.Context, c *hasura.CronEvent) (hasura.Ack, error) {
		dup, err := in.Receive(ctx, forCron(c, "bbb_alerts"), func(ctx context.Context, w *inbox.Work) error {
			w.Enqueue(lesson.AlertsArgs{}, nil)
			return nil
		})
		return hasura.Ack{Duplicate: dup}, err
	})
}
