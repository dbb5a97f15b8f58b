package triggers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/inbox"
)

// ExpireExamUploads handles the expire_exam_uploads cron trigger (hourly):
// it enqueues the expiry sweep, which River also runs every hour; the sweep
// is unique per minute, so both together run it once.
func ExpireExamUploads(log *slog.Logger, in *inbox.Inbox) http.Handler {
	return hasura.NewCron("expire_exam_uploads", log, func(ctx context.Context, c *hasura.CronEvent) (hasura.Ack, error) {
		dup, err := in.Receive(ctx, forCron(c, "expire_exam_uploads"), func(ctx context.Context, w *inbox.Work) error {
			w.Enqueue(exam.ExpireArgs{}, nil)
			return nil
		})
		return hasura.Ack{Duplicate: dup}, err
	})
}
