package sms_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/sms"
)

// failQuery makes the statements containing match fail, while armed, as if
// the connection had dropped before they were sent (a tracer hands pgx an
// already cancelled context).
type failQuery struct {
	match string
	armed atomic.Bool
}

func (f *failQuery) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	if f.armed.Load() && strings.Contains(data.SQL, f.match) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		return ctx
	}
	return ctx
}

func (f *failQuery) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A failing statement inside the progress transaction fails the job (River
// retries it) instead of being dropped and finishing the request without it.
func TestProgressDoesNotDropErrorsInItsTransaction(t *testing.T) {
	t.Parallel()
	tracer := &failQuery{match: "ORDER BY updated_at DESC LIMIT 1"}
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx := context.Background()
	var school, req uuid.UUID
	if err := pool.QueryRow(ctx, `INSERT INTO school (udise, name, district, block, session)
		VALUES ('02110100101', 'GSSS कुफरी', 'Shimla', 'Mashobra', 'W') RETURNING id`).Scan(&school); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO sms_request (school_id, type, variables, status, expanded_at, recipients_total)
		VALUES ($1, 'HOLIDAY', '{}', 'PROCESSING', now(), 1) RETURNING id`, school).Scan(&req); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO sms_message (request_id, phone, body, status, attempts, last_error)
		VALUES ($1, '+919816012345', 'body', 'failed', 1, 'DND number')`, req); err != nil {
		t.Fatal(err)
	}
	w := &sms.ProgressWorker{Pool: pool}
	job := &river.Job[sms.ProgressArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 25}, Args: sms.ProgressArgs{RequestID: req}}
	state := func() (status, remarks string) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT status, coalesce(remarks, '') FROM sms_request WHERE id = $1`, req).Scan(&status, &remarks); err != nil {
			t.Fatal(err)
		}
		return status, remarks
	}

	tracer.armed.Store(true)
	if err := w.Work(ctx, job); err == nil {
		t.Error("progress with a failing statement: nil error, want the job to fail")
	}
	if status, remarks := state(); status != "PROCESSING" {
		t.Errorf("after the failure: %s %q, want PROCESSING (nothing written)", status, remarks)
	}

	tracer.armed.Store(false)
	if err := w.Work(ctx, job); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if status, remarks := state(); status != "FAILED" || !strings.Contains(remarks, "last error: DND number") {
		t.Errorf("after the retry: %s %q, want FAILED with the last error", status, remarks)
	}
}

// An expansion whose cursor cannot be read fails (and is retried, then
// given up with the reason) instead of starting over from the first
// student.
func TestExpansionRefusesAnUnreadableCursor(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.student("आरव", 6, "A", "9816012345")
	req := f.request("HOLIDAY", map[string]string{"start_date": "a", "end_date": "b", "reopen_date": "c"}, nil)
	if _, err := f.pool.Exec(context.Background(), `UPDATE sms_request SET status = 'PROCESSING', expand_cursor = E'+919816000000\x1fnot-a-uuid' WHERE id = $1`, req); err != nil {
		t.Fatal(err)
	}
	w := &sms.ExpandWorker{Pool: f.pool, Metrics: f.metrics}
	err := w.Work(context.Background(), &river.Job[sms.ExpandArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 25}, Args: sms.ExpandArgs{RequestID: req}})
	if err == nil || !strings.Contains(err.Error(), "cursor") {
		t.Errorf("expansion with an unreadable cursor: %v, want an error naming the cursor", err)
	}
	if n := f.count(`SELECT count(*) FROM sms_message WHERE request_id = $1`, req); n != 0 {
		t.Errorf("%d messages queued from an unreadable cursor, want none", n)
	}
	// Its last attempt gives up: nothing was queued, so the request fails
	// with the reason.
	err = w.Work(context.Background(), &river.Job[sms.ExpandArgs]{JobRow: &rivertype.JobRow{Attempt: 25, MaxAttempts: 25}, Args: sms.ExpandArgs{RequestID: req}})
	if err == nil {
		t.Error("last attempt: no error, want the cursor's (River then discards the job)")
	}
	if s := f.state(req); s.Status != "FAILED" || !strings.Contains(s.Remarks, "recipients could not be resolved") {
		t.Errorf("after the last attempt: %+v, want FAILED saying the recipients could not be resolved", s)
	}
}
