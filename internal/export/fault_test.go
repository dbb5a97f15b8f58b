package export_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/sheets/sheetstest"
)

type killed struct{ step string }

// TestFaultInjection faults or kills the exporter at 200 random points while
// 2,000 responses arrive — some committed after later ones — and checks that
// the sheet ends with exactly one row per response, in order. Everything is
// drawn from one seed (SHALA_FAULT_SEED to replay another): when responses
// arrive, which API call fails and how (429, 500 before or after applying, a
// connection dropped before or after applying, a timeout after applying),
// and at which step of which run the process dies.
func TestFaultInjection(t *testing.T) {
	t.Parallel()
	seed := uint64(20261201)
	if v := os.Getenv("SHALA_FAULT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SHALA_FAULT_SEED: %v", err)
		}
		seed = n
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ctx := context.Background()
	s := setupSheets(t, 250*time.Millisecond)
	s.exporter.BatchRows = 97

	const total, wantFaults = 2000, 200
	inserted := 0
	names := map[string]string{}
	var late pgx.Tx
	arrive := func(n int) {
		for ; n > 0 && inserted < total; n-- {
			name := "r" + strconv.Itoa(inserted)
			id := s.respond("1", a("name", name), a("age", strconv.Itoa(inserted%90)))
			names[id.String()] = name
			inserted++
		}
	}
	commitLate := func() {
		if late != nil {
			if err := late.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			late = nil
		}
	}
	defer func() {
		if late != nil {
			_ = late.Rollback(ctx)
		}
	}()

	faults := map[string]int{}
	fired := 0
	for runs := 0; fired < wantFaults || inserted < total; runs++ {
		if runs > 5000 {
			t.Fatalf("%d runs without reaching %d faults and %d responses", runs, wantFaults, total)
		}
		arrive(rng.IntN(21))
		switch p := rng.Float64(); {
		case late == nil && inserted < total && p < 0.1:
			// A response whose transaction started now but commits after
			// responses inserted later.
			tx, err := s.pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			name := "r" + strconv.Itoa(inserted)
			id, err := insertResponse(tx, "1", []ans{a("name", name)})
			if err != nil {
				t.Fatal(err)
			}
			late, names[id.String()] = tx, name
			inserted++
		case late != nil && p < 0.3:
			commitLate()
		}

		var hit atomic.Bool
		var what string
		s.srv.SetFault(nil)
		s.exporter.Hook = nil
		if fired < wantFaults {
			switch rng.IntN(2) {
			case 0: // the n-th API call of this run fails
				n := 1 + rng.IntN(2)
				f := []sheetstest.Fault{sheetstest.TooMany, sheetstest.ServerError, sheetstest.ServerErrorAfterApply,
					sheetstest.Drop, sheetstest.DropAfterApply, sheetstest.TimeoutAfterApply}[rng.IntN(6)]
				what = "sheets " + f.String()
				var calls atomic.Int32
				s.srv.SetFault(func(c sheetstest.Call) sheetstest.Fault {
					if calls.Add(1) == int32(n) {
						hit.Store(true)
						return f
					}
					return sheetstest.None
				})
			case 1: // the process dies at the n-th step of this run after taking the lock (or right then)
				n := rng.IntN(5)
				steps := 0
				s.exporter.Hook = func(step string) {
					if step != export.StepLocked {
						steps++
					}
					if (n == 0 && step == export.StepLocked) || (n > 0 && steps == n) {
						hit.Store(true)
						panic(killed{step})
					}
				}
			}
		}
		func() {
			defer func() {
				if p := recover(); p != nil {
					k, ok := p.(killed)
					if !ok {
						panic(p)
					}
					what = "kill at " + k.step
				}
			}()
			_, _ = s.exporter.Run(ctx, s.exportID) // a faulted run fails; the next one recovers
		}()
		if hit.Load() {
			fired++
			faults[what]++
		}
	}
	commitLate()
	s.srv.SetFault(nil)
	s.exporter.Hook = nil
	for i := 0; ; i++ {
		if i > 50 {
			t.Fatal("the exporter does not catch up")
		}
		out := s.run()
		var pending bool
		if err := s.pool.QueryRow(ctx, `SELECT pending_response_id IS NOT NULL FROM sheet_export WHERE id = $1`, s.exportID).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if out.Rows == 0 && !pending {
			break
		}
	}
	t.Logf("faults fired: %v", faults)

	want := s.ordered()
	got := s.keys()
	if len(want) != total {
		t.Fatalf("responses: got %d, want %d", len(want), total)
	}
	if !slices.Equal(got, want) {
		seen := map[string]int{}
		for _, k := range got {
			seen[k]++
		}
		var dup, missing int
		for _, k := range want {
			switch seen[k] {
			case 0:
				missing++
			case 1:
			default:
				dup += seen[k] - 1
			}
		}
		t.Fatalf("sheet rows: got %d (%d duplicated, %d missing, or out of order), want exactly one per response in order (%d)",
			len(got), dup, missing, len(want))
	}
	rows := s.srv.Rows(book, "Responses")
	for i, r := range rows[1:] {
		if r[3] != names[r[0].(string)] {
			t.Fatalf("row %d: name %v, want %s", i+2, r[3], names[r[0].(string)])
		}
	}
	if n, enabled, lastErr := s.state(s.exportID); n != total || !enabled || lastErr != "" {
		t.Errorf("state: got rows %d enabled %v error %q, want %d, true, none", n, enabled, lastErr, total)
	}
	if len(faults) < 8 {
		t.Errorf("fault kinds fired: got %v, want most of the six Sheets faults and several kill points", faults)
	}
}
