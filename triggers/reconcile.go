package triggers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/assessment"
	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/inbox"
	"github.com/shala-edu/shala/internal/lesson"
	"github.com/shala-edu/shala/internal/ping"
	"github.com/shala-edu/shala/internal/sms"
)

// Reconcile handles the reconcile cron trigger: it enqueues every
// reconciler sweep. River also runs them periodically, so shala heals
// without Hasura; the sweeps are unique per period, so both together run each
// once.
func Reconcile(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewCron("reconcile", log, func(ctx context.Context, c *hasura.CronEvent) (hasura.Ack, error) {
		dup, err := in.Receive(ctx, forCron(c, "reconcile"), func(ctx context.Context, w *inbox.Work) error {
			w.Enqueue(ping.ReconcileArgs{}, nil)
			w.Enqueue(sms.ReconcileArgs{}, nil)
			w.Enqueue(forms.ReconcileArgs{}, nil)
			w.Enqueue(lesson.SweepArgs{}, nil)
			w.Enqueue(assessment.SweepArgs{}, nil)
			return nil
		})
		return hasura.Ack{Duplicate: dup}, err
	})
}
