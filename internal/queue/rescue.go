package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// What "running" means, and when a job whose process died is taken over.
//
// River marks a job `running` when a process fetches it and only that
// process finishes it. If the process is killed (SIGKILL, OOM, a lost
// machine) the row stays `running`; River's rescuer, on the elected leader,
// makes such a job retryable once it has been running RescueAfter. The
// rescuer cannot tell a dead owner from a slow one, so the rule that keeps a
// live owner's job from being taken is about time:
//
//   - every job kind's timeout is at most MaxTimeout (Add refuses more);
//     River cancels the job's context at its timeout;
//   - every call a job makes honours that context, and outside calls carry
//     their own shorter deadline, so the job returns at its timeout;
//   - what a job records after it is cancelled (the outcome of a provider
//     call that went out) is written within Grace;
//
// so a live owner has finished or failed its own job by MaxTimeout + Grace,
// well before RescueAfter. Work that takes longer is split: it checkpoints
// and snoozes (an SMS expansion commits a page at a time; a send batch stops
// starting calls when the next one might not finish in time), so each run
// fits. A rescued job is retried at once (its owner died; it did not fail).
//
// The bound that follows: a dead process's job is running again within
// RescueAfter + the rescuer's 30 s interval + River's 5 s scheduler interval
// of its start (about 80 s); the README's Guarantees give the measured
// figures.
const (
	MaxTimeout  = 20 * time.Second
	Grace       = 10 * time.Second
	RescueAfter = 40 * time.Second
)

// Add registers worker, refusing (by panicking at startup) a kind whose
// timeout breaks the rescue rule: none, or longer than MaxTimeout. Use it
// instead of river.AddWorker.
func Add[T river.JobArgs](workers *river.Workers, worker river.Worker[T]) {
	job := &river.Job[T]{JobRow: &rivertype.JobRow{}}
	if t := worker.Timeout(job); t < 0 || t > MaxTimeout {
		var args T
		panic(fmt.Sprintf("queue: job kind %s has timeout %v; every kind must time out within queue.MaxTimeout (%v): split longer work into steps that snooze",
			args.Kind(), t, MaxTimeout))
	}
	river.AddWorker(workers, worker)
}

// AddLong registers a worker whose runs may outlast MaxTimeout. River
// rescues a job only once it has run the longer of RescueAfter and its
// kind's timeout, so a killed process's job of this kind waits its whole
// timeout before another process takes it. Use it only where that delay is
// acceptable and a second run while the first still works is harmless: the
// daily orphan sweep of exam files (each run deletes only files no upload
// names; a file already gone is no error).
//
// The worker must choose its own retry time (Worker.NextRetry non-zero;
// AddLong panics otherwise): the client's policy takes a job that ran
// RescueAfter for a rescued one and retries it at once, which for a long
// kind that failed or timed out by itself would be a retry loop without
// backoff.
func AddLong[T river.JobArgs](workers *river.Workers, worker river.Worker[T]) {
	job := &river.Job[T]{JobRow: &rivertype.JobRow{Attempt: 1}}
	if worker.NextRetry(job).IsZero() {
		var args T
		panic(fmt.Sprintf("queue: long job kind %s has no NextRetry of its own; the client's policy would retry it at once after every failure past queue.RescueAfter",
			args.Kind()))
	}
	river.AddWorker(workers, worker)
}

// WithGrace is the context for recording what a cancelled job did (the
// outcome of a call that went out): not cancelled with the job, but bounded
// by Grace so the owner still finishes before RescueAfter.
func WithGrace(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), Grace)
}

// rescuedAtOnce retries a rescued job immediately and defers every other
// retry to inner. A job is rescued only after running RescueAfter, which no
// live owner reaches (see above), so that is how it is told apart.
type rescuedAtOnce struct{ inner river.ClientRetryPolicy }

func (p rescuedAtOnce) NextRetry(job *rivertype.JobRow) time.Time {
	if Rescued(job) {
		return time.Now()
	}
	return p.inner.NextRetry(job)
}

// Rescued reports whether job is being rescued (still running RescueAfter
// after its attempt began, which no live owner of a kind under the rule
// reaches). River asks a worker's own NextRetry before the client's policy,
// also for a rescued job: a worker with its own backoff returns time.Now()
// when Rescued, or a dead owner's job would wait out a backoff it did not
// earn (up to an hour after a few failed attempts).
func Rescued(job *rivertype.JobRow) bool {
	return job.State == rivertype.JobStateRunning && job.AttemptedAt != nil && time.Since(*job.AttemptedAt) >= RescueAfter
}

// WithSpare is the MaxAttempts of a kind that gives up by itself (marks its
// rows failed, says why) on its attempts-th run: one more, kept for a
// rescue. River discards a job whose process died during its last attempt
// without running any of the kind's code, so with MaxAttempts = attempts a
// killed last run would leave its rows pending with no job to finish them.
// With the spare, the killed run is rescued (RescueAfter and the rescuer's
// interval after it began) and retried at once, and that retry may give up
// (LastAttempt). Only a process killed in both runs loses the job: the
// kind's own sweep must cover that.
func WithSpare(attempts int) int { return attempts + 1 }

// LastAttempt reports whether job's run is one in which a kind that plans
// attempts runs gives up when it fails: the last planned one, or the spare
// after it (WithSpare). It counts from attempts, not from the row's
// MaxAttempts, so a job inserted before the kind kept a spare still gets
// every planned attempt.
func LastAttempt(job *rivertype.JobRow, attempts int) bool { return job.Attempt >= attempts }
