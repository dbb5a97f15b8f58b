package export

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/queue"
)

// Queue is the River queue of sheet exports. Writes are paced to Google's
// per-account quota anyway, so a few exports at a time use it fully; each
// holds a database connection while it runs, and its own queue keeps
// hundreds of forms' exports from taking the pool or the default workers.
const Queue = "sheets"

// QueueWorkers is how many exports one process runs at once.
const QueueWorkers = 4

// ExportArgs runs one sheet export until it has caught up (or its budget
// is spent). Unique per export while queued or running.
type ExportArgs struct {
	ExportID uuid.UUID `json:"export_id" river:"unique"`
}

// Kind is the River job kind.
func (ExportArgs) Kind() string { return "sheets.export" }

// InsertOpts makes the job unique per export until it finishes.
func (ExportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 12, UniqueOpts: queue.UniqueUntilFinished()}
}

// ErrNotConfigured fails export jobs when no Google service account is
// configured (the job retries; connectSheet refuses new exports).
var ErrNotConfigured = errors.New("google sheets is not configured (SHALA_SHEETS_CREDENTIALS)")

// ExportWorker works ExportArgs with Exporter (nil: not configured).
type ExportWorker struct {
	river.WorkerDefaults[ExportArgs]
	Exporter *Exporter
}

// Work runs the export once. A failure Google may get over (429, 5xx, a
// timeout) fails the job for a retry with backoff; one a person must fix
// disables the export (last_error says why) and completes the job.
func (w *ExportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	if w.Exporter == nil {
		return ErrNotConfigured
	}
	out, err := w.Exporter.Run(ctx, job.Args.ExportID)
	switch {
	case err != nil:
		return err
	case out.Wait > 0:
		return river.JobSnooze(out.Wait)
	case out.More:
		return river.JobSnooze(time.Millisecond)
	case out.Busy:
		// Another run holds the export; it will see what we would have.
		return nil
	}
	return nil
}

// Timeout is the rescue rule's (queue.MaxTimeout): a run appends for its
// Budget, starts a Google call only while CallTimeout is left, and snoozes
// for the rest, so a killed process's export is taken over within the
// queue's rescue bound (about 80 s) instead of after a long timeout.
func (w *ExportWorker) Timeout(*river.Job[ExportArgs]) time.Duration { return queue.MaxTimeout }

// NextRetry backs off from Google exponentially with jitter: 30 s, 1, 2, 4
// … minutes, at most an hour (Google asks for truncated exponential backoff
// on 429 and 5xx). A rescued job (its process died) goes again at once: it
// did not fail.
func (w *ExportWorker) NextRetry(job *river.Job[ExportArgs]) time.Time {
	if queue.Rescued(job.JobRow) {
		return time.Now()
	}
	d := min(time.Hour, 30*time.Second<<min(job.Attempt-1, 7))
	return time.Now().Add(d/2 + rand.N(d/2+1))
}

// SweepArgs is the periodic job that queues exports with work (Sweep).
type SweepArgs struct {
	queue.PerMinute
}

// Kind is the River job kind.
func (SweepArgs) Kind() string { return "sheets.sweep" }
