package export_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/jobs"
	"github.com/shala-edu/shala/internal/queue"
)

// TestKilledExportIsResumed kills a process in the middle of a sheet
// export — Google applied its append, the process died before recording
// it — and checks that another process, with the workers as shala registers
// them, takes the export's job over within the queue's rescue bound (as for
// every job kind: RescueAfter plus the rescuer's interval, not the export's
// own timeout or its backoff) and that the sheet ends with one row per
// response, the landed batch not sent again.
func TestKilledExportIsResumed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupSheets(t, 5*time.Second)
	s.exporter.UnknownWait = 0
	for _, name := range []string{"Asha", "Ravi", "Meena"} {
		s.respond("1", a("name", name))
	}
	func() {
		s.exporter.Hook = func(step string) {
			if step == export.StepAppended {
				panic(killed{step})
			}
		}
		defer func() {
			if p := recover(); p == nil {
				t.Fatal("the run was not killed")
			}
			s.exporter.Hook = nil
		}()
		s.run()
	}()
	// What the killed process left in River: its job still running,
	// attempted by a client that is gone, RescueAfter ago, after five
	// failed attempts (Google had been failing for a while).
	if _, err := s.pool.Exec(ctx, `INSERT INTO river_job (args, attempt, attempted_at, attempted_by, kind, max_attempts, priority, queue, state, scheduled_at)
		VALUES (jsonb_build_object('export_id', $1::uuid), 6, now() - make_interval(secs => $2), '{killed-client}', 'sheets.export', 12, 1, $3, 'running', now() - make_interval(secs => $2))`,
		s.exportID, (queue.RescueAfter + 2*time.Second).Seconds(), export.Queue); err != nil {
		t.Fatal(err)
	}

	client, err := queue.New(s.pool, jobs.Workers(jobs.Deps{Pool: s.pool, Exporter: s.exporter}),
		queue.Config{Workers: 1, Queues: map[string]int{export.Queue: 1}, FetchCooldown: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done, cancel := client.Subscribe(river.EventKindJobCompleted)
	defer cancel()
	if err := client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Stop(sctx); err != nil {
			t.Error(err)
		}
	})
	start := time.Now()
	bound := time.After(time.Minute)
wait:
	for {
		select {
		case ev := <-done:
			if ev.Job.Kind == "sheets.export" {
				break wait
			}
		case <-bound:
			t.Fatal("the killed process's export was not taken over within a minute (RescueAfter is 40 s)")
		}
	}
	t.Logf("export resumed and completed %v after start", time.Since(start).Round(time.Millisecond))
	if got, want := s.keys(), s.ordered(); !slices.Equal(got, want) {
		t.Errorf("keys: got %v, want %v (one row per response, in order)", got, want)
	}
	if n, enabled, lastErr := s.state(s.exportID); n != 3 || !enabled || lastErr != "" {
		t.Errorf("state: got rows %d enabled %v error %q, want 3, true, none", n, enabled, lastErr)
	}
	if calls := s.srv.Calls(); calls["values.append"] != 1 {
		t.Errorf("appends: got %d, want 1 (the landed batch is read back, not sent again)", calls["values.append"])
	}
}

// A run starts a Google call only while export.CallTimeout of its job's
// time is left: with less, it ends asking to come back (More) without
// calling Google or recording a pending batch, so no call outlives the job.
func TestRunStartsNoCallItCannotFinish(t *testing.T) {
	t.Parallel()
	s := setupSheets(t, 5*time.Second)
	s.respond("1", a("name", "Asha"))
	s.run() // the tab and header exist; the next run only appends
	s.respond("1", a("name", "Ravi"))
	before := s.srv.Calls()

	ctx, cancel := context.WithTimeout(context.Background(), export.CallTimeout-time.Second)
	defer cancel()
	out, err := s.exporter.Run(ctx, s.exportID)
	if err != nil {
		t.Fatal(err)
	}
	if !out.More || out.Rows != 0 {
		t.Errorf("outcome: got %+v, want More and no rows", out)
	}
	if got := s.srv.Calls(); !maps.Equal(got, before) {
		t.Errorf("calls: got %v, want none beyond %v", got, before)
	}
	var pending bool
	if err := s.pool.QueryRow(context.Background(), `SELECT pending_response_id IS NOT NULL FROM sheet_export WHERE id = $1`, s.exportID).Scan(&pending); err != nil {
		t.Fatal(err)
	}
	if pending {
		t.Error("a pending batch was recorded")
	}
	if out := s.run(); out.Rows != 1 {
		t.Errorf("a run with time: got %d rows, want 1", out.Rows)
	}
}
