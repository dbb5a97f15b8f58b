package queue_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type slowArgs struct {
	For time.Duration `json:"for"`
}

func (slowArgs) Kind() string { return "test.slow" }

type slowWorker struct {
	river.WorkerDefaults[slowArgs]
	started chan struct{}
}

func (w *slowWorker) Work(ctx context.Context, job *river.Job[slowArgs]) error {
	w.started <- struct{}{}
	select {
	case <-time.After(job.Args.For):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestShutdownLetsRunningJobsFinishOrRequeuesThem: within the deadline a
// running job completes; past it the job is cancelled and left for retry,
// never lost and never marked done.
func TestShutdownLetsRunningJobsFinishOrRequeuesThem(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		job       time.Duration
		deadline  time.Duration
		wantState []string
	}{
		{"finishes within the deadline", 400 * time.Millisecond, 10 * time.Second, []string{"completed"}},
		// River puts an interrupted job back (available, or retryable with
		// backoff): another process works it.
		{"cancelled past the deadline", time.Minute, 300 * time.Millisecond, []string{"available", "retryable"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pool := pgtest.New(t)
			w := &slowWorker{started: make(chan struct{}, 1)}
			workers := river.NewWorkers()
			river.AddWorker(workers, w)
			client, err := queue.New(pool, workers, queue.Config{Workers: 2, FetchCooldown: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			res, err := client.Insert(ctx, slowArgs{For: tt.job}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := client.Start(ctx); err != nil {
				t.Fatal(err)
			}
			select {
			case <-w.started:
			case <-time.After(20 * time.Second):
				t.Fatal("job never started")
			}
			if err := queue.Stop(client, tt.deadline, slog.New(slog.DiscardHandler)); err != nil {
				t.Fatalf("stop: %v", err)
			}
			var state string
			if err := pool.QueryRow(ctx, "SELECT state FROM river_job WHERE id = $1", res.Job.ID).Scan(&state); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(tt.wantState, state) {
				t.Errorf("job state after shutdown: %s, want %s", state, tt.wantState)
			}
		})
	}
}
