package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
)

type noteArgs struct {
	Name string `json:"name"`
}

func (noteArgs) Kind() string { return "test.note" }

type noteWorker struct {
	river.WorkerDefaults[noteArgs]
	ran chan string
}

func (w *noteWorker) Work(ctx context.Context, job *river.Job[noteArgs]) error {
	w.ran <- job.Args.Name
	return nil
}

type longArgs struct{}

func (longArgs) Kind() string { return "test.long" }

type longWorker struct{ river.WorkerDefaults[longArgs] }

func (longWorker) Timeout(*river.Job[longArgs]) time.Duration { return 5 * time.Minute }
func (longWorker) Work(context.Context, *river.Job[longArgs]) error {
	return nil
}

// A job left running by a dead process is taken over once it has run
// RescueAfter and retried at once; a job younger than that (its owner may be
// alive and slow) is left alone.
func TestDeadOwnersJobsAreRescuedAndRetriedAtOnce(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	// What a SIGKILLed process leaves: rows `running`, attempted by a
	// client that is gone.
	for name, age := range map[string]time.Duration{"dead": queue.RescueAfter + 2*time.Second, "young": queue.RescueAfter - 15*time.Second} {
		if _, err := pool.Exec(ctx, `INSERT INTO river_job (args, attempt, attempted_at, attempted_by, kind, max_attempts, priority, queue, state, scheduled_at)
			VALUES (jsonb_build_object('name', $1::text), 1, now() - make_interval(secs => $2), '{killed-client}', 'test.note', 25, 1, 'default', 'running', now() - make_interval(secs => $2))`,
			name, age.Seconds()); err != nil {
			t.Fatal(err)
		}
	}
	ran := make(chan string, 2)
	workers := river.NewWorkers()
	queue.Add(workers, &noteWorker{ran: ran})
	client, err := queue.New(pool, workers, queue.Config{Workers: 2, FetchCooldown: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(sctx)
	})
	select {
	case name := <-ran:
		if name != "dead" {
			t.Fatalf("ran %q first, want the dead owner's job", name)
		}
	case <-time.After(time.Minute):
		t.Fatal("the dead owner's job was not rescued within a minute")
	}
	// Rescued at the rescuer's first pass, retried without backoff: the
	// scheduler's interval (5 s) and leader election bound it.
	t.Logf("rescued and worked %v after start", time.Since(start).Round(time.Millisecond))
	var state string
	if err := pool.QueryRow(ctx, `SELECT state::text FROM river_job WHERE args->>'name' = 'young'`).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != "running" {
		t.Errorf("the young job is %s, want still running (its owner may be alive)", state)
	}
}

func TestAddRefusesAKindThatOutlivesTheRescueBound(t *testing.T) {
	t.Parallel()
	defer func() {
		p := recover()
		if p == nil || !strings.Contains(p.(string), "test.long") || !strings.Contains(p.(string), "MaxTimeout") {
			t.Errorf("got %v, want a panic naming the kind and queue.MaxTimeout", p)
		}
	}()
	queue.Add(river.NewWorkers(), &longWorker{})
}

type longNoRetryArgs struct{}

func (longNoRetryArgs) Kind() string { return "test.long_no_retry" }

type longNoRetryWorker struct {
	river.WorkerDefaults[longNoRetryArgs]
}

func (longNoRetryWorker) Timeout(*river.Job[longNoRetryArgs]) time.Duration { return 5 * time.Minute }
func (longNoRetryWorker) Work(context.Context, *river.Job[longNoRetryArgs]) error {
	return nil
}

// A long kind that fails after RescueAfter (its own timeout, say) looks
// rescued to the client's policy, which retries at once: AddLong refuses a
// kind that does not choose its own retry time.
func TestAddLongRefusesAKindWithoutItsOwnRetry(t *testing.T) {
	t.Parallel()
	defer func() {
		p := recover()
		s, _ := p.(string)
		if !strings.Contains(s, "test.long_no_retry") || !strings.Contains(s, "NextRetry") {
			t.Errorf("got %v, want a panic naming the kind and NextRetry", p)
		}
	}()
	queue.AddLong(river.NewWorkers(), &longNoRetryWorker{})
}

// A kind inserted WithSpare(n) gives up on its n-th run, and again on the
// spare run that follows a killed n-th; a job inserted before the spare
// (MaxAttempts n) still gets its n runs.
func TestLastAttemptKeepsASpareForARescue(t *testing.T) {
	t.Parallel()
	if got := queue.WithSpare(7); got != 8 {
		t.Fatalf("WithSpare(7) = %d, want 8", got)
	}
	for _, tt := range []struct {
		attempt, maxAttempts int
		want                 bool
	}{
		{1, 8, false}, {6, 8, false}, {7, 8, true}, {8, 8, true},
		{6, 7, false}, {7, 7, true}, // inserted before the spare
	} {
		if got := queue.LastAttempt(&rivertype.JobRow{Attempt: tt.attempt, MaxAttempts: tt.maxAttempts}, 7); got != tt.want {
			t.Errorf("LastAttempt(attempt %d of %d, 7 planned) = %v, want %v", tt.attempt, tt.maxAttempts, got, tt.want)
		}
	}
}
