package forms_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/internal/forms"
	"github.com/shala-edu/shala/internal/promtest"
)

// TestCheckFailingForGood: a response inserted through Hasura whose check
// fails for a reason a retry cannot mend (here its stored definition no
// longer parses) is retried twice, then recorded — a generic reason on its
// submission row, counted as checked, counted in the metric — so neither
// River nor the sweep tries it forever.
func TestCheckFailingForGood(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.register("household_survey.xml", forms.DataCollection)
	var submission uuid.UUID
	if err := pgx.BeginFunc(ctx, f.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('hasura.user', '{"x-hasura-role":"school","x-hasura-user-id":"teacher-1"}', true)`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO response (form_id, form_version) VALUES ('household_survey', $1) RETURNING submission_id`,
			householdVersion).Scan(&submission)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `UPDATE form_version SET xform = '<broken' WHERE form_id = 'household_survey'`); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	// A new process: nothing cached, the definition read from the table.
	p := &forms.Pipeline{Pool: f.pool, Catalog: forms.NewCatalog(f.pool), Rules: forms.NewRules(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: forms.NewMetrics(reg)}
	w := &forms.CheckWorker{Pipeline: p}
	job := func(attempt int) *river.Job[forms.CheckArgs] {
		return &river.Job[forms.CheckArgs]{JobRow: &rivertype.JobRow{Attempt: attempt}, Args: forms.CheckArgs{SubmissionID: submission}}
	}
	for attempt := 1; attempt < 3; attempt++ {
		if err := w.Work(ctx, job(attempt)); err == nil {
			t.Errorf("attempt %d: no error, want one to retry", attempt)
		}
		if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND processed_at IS NULL AND errors IS NULL`, submission); n != 1 {
			t.Errorf("attempt %d: recorded before the third", attempt)
		}
	}
	if err := w.Work(ctx, job(3)); err != nil {
		t.Fatalf("third attempt: %v, want the failure recorded", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND processed_at IS NOT NULL
		AND errors -> 0 ->> 'reason' = 'the form''s rules and receipt could not be run on this response'`, submission); n != 1 {
		t.Error("the failure is not recorded on the submission row")
	}
	if got := promtest.Value(t, reg, "shala_form_response_check_failures_total", nil); got != 1 {
		t.Errorf("failures counted: %v, want 1", got)
	}
	if n, err := forms.Reconcile(ctx, f.pool, nil, 0); err != nil || n != 0 {
		t.Errorf("the sweep: %d jobs, %v; want none", n, err)
	}
}
