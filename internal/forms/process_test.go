package forms_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/queue"
)

// processAttempts is how many times a processing job plans to try (its
// InsertOpts keep one more spare for a rescue).
func processAttempts() int {
	if got, want := (forms.ProcessArgs{}).InsertOpts().MaxAttempts, queue.WithSpare(forms.ProcessAttempts); got != want {
		panic(fmt.Sprintf("ProcessArgs MaxAttempts %d, want %d (ProcessAttempts and a spare)", got, want))
	}
	return forms.ProcessAttempts
}

// processJob works a processing job of submission at attempt (of
// processAttempts) with w, a panic reported as an error.
func processJob(ctx context.Context, w *forms.ProcessWorker, submission uuid.UUID, attempt int) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("Work panicked: %v", p)
		}
	}()
	return w.Work(ctx, &river.Job[forms.ProcessArgs]{
		JobRow: &rivertype.JobRow{Attempt: attempt, MaxAttempts: queue.WithSpare(processAttempts())},
		Args:   forms.ProcessArgs{SubmissionID: submission}})
}

// storeReceived stores the sample submission as a Hasura insert does,
// unprocessed.
func (f *fixture) storeReceived(replace ...string) uuid.UUID {
	f.t.Helper()
	var id uuid.UUID
	if err := f.pool.QueryRow(context.Background(), `INSERT INTO form_submission (xml, source) VALUES ($1, 'hasura') RETURNING id`,
		string(household(f.t, replace...))).Scan(&id); err != nil {
		f.t.Fatal(err)
	}
	return id
}

const processFailed = "could not be processed: it failed unexpectedly on every attempt; it is kept, and can be processed again once the fault is mended"

// TestProcessingFailingForGood: a submission whose processing fails for a
// reason no retry mends — its stored definition no longer parses, or the
// processing panics — is retried, and on the job's last attempt recorded
// as rejected with INTERNAL and a generic reason, so neither River nor the
// sweep takes it for ever and its submitter sees a final state. An
// operator who mended the fault puts it back and the sweep processes it.
func TestProcessingFailingForGood(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.register("household_survey.xml", forms.DataCollection)
	broken := f.storeReceived()
	panicking := f.storeReceived(firstInstance, "uuid:panics-0001")
	var xform string
	if err := f.pool.QueryRow(ctx, `SELECT xform FROM form_version WHERE form_id = 'household_survey'`).Scan(&xform); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE form_version SET xform = '<broken' WHERE form_id = 'household_survey'`); err != nil {
		t.Fatal(err)
	}
	// A new process: nothing cached, the definition read from the table.
	p := freshPipeline(f.pool)
	w := &forms.ProcessWorker{Pipeline: p}
	// The other panics while parsing its XML.
	panics := freshPipeline(f.pool)
	forms.SetOnParse(panics, func() { panic("boom") })
	wp := &forms.ProcessWorker{Pipeline: panics}

	last := processAttempts()
	if last >= river.MaxAttemptsDefault {
		t.Errorf("a processing is tried %d times (weeks of backoff), want fewer", last)
	}
	for attempt := 1; attempt < last; attempt++ {
		if err := processJob(ctx, w, broken, attempt); err == nil {
			t.Errorf("attempt %d: no error, want one to retry", attempt)
		}
		if err := processJob(ctx, wp, panicking, attempt); err == nil {
			t.Errorf("attempt %d of the panicking one: no error, want one to retry", attempt)
		}
		if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'received' AND errors IS NULL AND processed_at IS NULL`); n != 2 {
			t.Errorf("attempt %d: %d submissions still received, want 2 (recorded before the last attempt)", attempt, n)
		}
	}
	if err := processJob(ctx, w, broken, last); err != nil {
		t.Errorf("last attempt: %v, want the failure recorded", err)
	}
	if err := processJob(ctx, wp, panicking, last); err != nil {
		t.Errorf("last attempt of the panicking one: %v, want the failure recorded", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'rejected' AND error_code = 'INTERNAL'
		AND processed_at IS NOT NULL AND errors -> 0 ->> 'reason' = $1`, processFailed); n != 2 {
		t.Errorf("%d submissions recorded as failed for good, want 2", n)
	}
	q, err := queue.New(f.pool, nil, queue.Config{}) // no worker: jobs stay queued
	if err != nil {
		t.Fatal(err)
	}
	if n, err := forms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 0 {
		t.Errorf("the sweep: %d jobs, %v; want none", n, err)
	}

	// The operator mends the definition and puts the submission back, as
	// the README says; the sweep takes it and it is processed.
	if _, err := f.pool.Exec(ctx, `UPDATE form_version SET xform = $1 WHERE form_id = 'household_survey'`, xform); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE form_submission SET status = 'received', error_code = NULL, errors = NULL,
		processed_at = NULL, swept_at = NULL WHERE id = $1 AND error_code = 'INTERNAL'`, broken); err != nil {
		t.Fatal(err)
	}
	if n, err := forms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 1 {
		t.Errorf("the sweep after the put-back: %d jobs, %v; want 1", n, err)
	}
	mended := &forms.ProcessWorker{Pipeline: freshPipeline(f.pool)}
	if err := processJob(ctx, mended, broken, 1); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'accepted'`, broken); n != 1 {
		t.Error("the submission put back was not accepted")
	}
}

// Giving up takes the locks a processing takes: a processing deciding the
// submission meanwhile (another replica, a resend) decides first, and the
// give-up then leaves its decision alone.
func TestGivingUpWaitsForAProcessingDecidingIt(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.register("household_survey.xml", forms.DataCollection)
	id := f.storeReceived()
	free, processed := f.pausedInDecide(id)
	panics := freshPipeline(f.pool)
	forms.SetOnParse(panics, func() { panic("boom") })
	gaveUp := make(chan error, 1)
	go func() { gaveUp <- processJob(ctx, &forms.ProcessWorker{Pipeline: panics}, id, processAttempts()) }()
	// The give-up waits for the instanceID's lock the processing holds.
	waitForAdvisoryWait(f, "form_submission:", gaveUp)
	free()
	if err := <-processed; err != nil {
		t.Fatalf("the processing: %v, want it accepted", err)
	}
	if err := <-gaveUp; err != nil {
		t.Fatalf("the give-up: %v", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'accepted'`, id); n != 1 {
		t.Error("the give-up overrode the processing's decision")
	}
}

// TestProcessingDoesNotGiveUpWhileTheDatabaseIsDown: a processing that
// cannot reach the database fails its last attempt too, recording
// nothing: the row stays received for the sweep to queue again.
func TestProcessingDoesNotGiveUpWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.register("household_survey.xml", forms.DataCollection)
	id := f.storeReceived()
	down, err := pgxpool.New(ctx, f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	down.Close()
	w := &forms.ProcessWorker{Pipeline: freshPipeline(down)}
	var cancel *river.JobCancelError
	if err := processJob(ctx, w, id, processAttempts()); !errors.As(err, &cancel) {
		t.Errorf("last attempt with the database down: %v, want the job ended (cancelled) for the sweep to queue it again", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'received' AND errors IS NULL`, id); n != 1 {
		t.Error("a processing that could not reach the database recorded an outcome")
	}
}
