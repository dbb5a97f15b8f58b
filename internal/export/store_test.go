package export_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
)

func TestConnect(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t)

	c, err := export.Connect(ctx, f.pool, nil, formID, "https://docs.google.com/spreadsheets/d/"+book+"/edit#gid=0", "  Responses ", "admin-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.SpreadsheetID != book || c.SheetName != "Responses" || !c.Enabled {
		t.Errorf("connection: got %+v, want the id from the URL and the trimmed name", c)
	}

	if _, err := f.pool.Exec(ctx, `UPDATE sheet_export SET enabled = false, last_error = 'HTTP 403', rows_written = 7 WHERE id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	again, err := export.Connect(ctx, f.pool, nil, formID, book, "Responses", "admin-2")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != c.ID || !again.Enabled || again.LastError != nil || again.RowsWritten != 7 {
		t.Errorf("connecting again: got %+v, want the same export re-enabled, error cleared, its progress kept", again)
	}

	other, err := os.ReadFile(filepath.Join("testdata", "survey_v1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	otherDef := strings.Replace(string(other), `id="village_survey"`, `id="other_survey"`, 1)
	if _, err := forms.NewCatalog(f.pool).Register(ctx, []byte(otherDef), forms.DataCollection, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := export.Connect(ctx, f.pool, nil, "other_survey", book, "Responses", "admin-1"); fault.As(err).Code != export.CodeSheetInUse {
		t.Errorf("another form on the same tab: got %v, want %s", err, export.CodeSheetInUse)
	}
	if _, err := export.Connect(ctx, f.pool, nil, "other_survey", book, "Other", "admin-1"); err != nil {
		t.Errorf("another form on another tab: %v", err)
	}

	for _, tt := range []struct {
		form, book, sheet, field string
		kind                     fault.Kind
	}{
		{"nope", book, "Responses", "", fault.NotFound},
		{formID, "short", "Responses", "spreadsheetId", fault.Invalid},
		{formID, "https://example.com/not/a/sheet", "Responses", "spreadsheetId", fault.Invalid},
		{formID, book, "", "sheetName", fault.Invalid},
		{formID, book, strings.Repeat("x", 101), "sheetName", fault.Invalid},
		{formID, book, "tab\x07", "sheetName", fault.Invalid},
	} {
		_, err := export.Connect(ctx, f.pool, nil, tt.form, tt.book, tt.sheet, "admin-1")
		if fe := fault.As(err); fe.Kind != tt.kind || fe.Field != tt.field {
			t.Errorf("Connect(%q, %q, %q): got %v (field %q), want kind %v on %q", tt.form, tt.book, tt.sheet, err, fe.Field, tt.kind, tt.field)
		}
	}
}

func TestPacer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var slept []time.Duration
	p := &export.Pacer{Interval: 1200 * time.Millisecond, Key: "sheets", MaxWait: 3 * time.Second,
		Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error {
			slept = append(slept, d)
			return nil
		}}
	// Two replicas share the row: whoever asks gets the next free slot.
	for range 3 {
		if err := p.Wait(ctx, f.pool); err != nil {
			t.Fatal(err)
		}
	}
	if want := []time.Duration{1200 * time.Millisecond, 2400 * time.Millisecond}; len(slept) != 2 || slept[0] != want[0] || slept[1] != want[1] {
		t.Errorf("waits of three writes at once: got %v, want none, then %v", slept, want)
	}
	// The fourth slot is 3.6 s away, beyond MaxWait: it is not taken (asking
	// twice gets the same answer), and the run is told to come back when it
	// is within reach (0.6 s, at least one interval).
	for range 2 {
		if err := p.Wait(ctx, f.pool); err == nil || err.Error() != "wait 1.2s" {
			t.Errorf("a slot beyond MaxWait: got %v, want a wait of 1.2s", err)
		}
	}
	now = now.Add(1200 * time.Millisecond) // back when told: the slot 2.4 s away is taken
	slept = nil
	if err := p.Wait(ctx, f.pool); err != nil || len(slept) != 1 || slept[0] != 2400*time.Millisecond {
		t.Errorf("back within reach: got %v, slept %v; want the slot 2.4 s away", err, slept)
	}
	now = now.Add(time.Minute) // quiet for a minute: no wait
	slept = nil
	if err := p.Wait(ctx, f.pool); err != nil || len(slept) != 0 {
		t.Errorf("after a quiet minute: got %v, slept %v; want no wait", err, slept)
	}
	if export.NewPacer(0) != nil || export.NewPacer(50).Interval != 1200*time.Millisecond {
		t.Errorf("NewPacer: 0 must be unpaced and 50/min 1.2 s apart")
	}
}

// TestPacerUnderContention has more runs wanting to write than MaxWait
// holds (several replicas, many exports with a backlog): a run whose slot
// is far off comes back later. Slots taken and then left unused would be
// lost to everyone — the next slot moving ever further while nobody
// writes — so the writes must still come at the paced rate, and never
// faster.
// It holds for a long MaxWait and for production's (NewPacer: 2 s, so a
// paced write fits the job's queue.MaxTimeout).
func TestPacerUnderContention(t *testing.T) {
	t.Parallel()
	for _, maxWait := range []time.Duration{20 * time.Second, export.NewPacer(50).MaxWait} {
		t.Run(maxWait.String(), func(t *testing.T) {
			t.Parallel()
			pacerUnderContention(t, maxWait)
		})
	}
}

func pacerUnderContention(t *testing.T, maxWait time.Duration) {
	ctx := context.Background()
	f := setup(t)
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	now := start
	p := &export.Pacer{Interval: 1200 * time.Millisecond, Key: "sheets", MaxWait: maxWait,
		Now:   func() time.Time { return now },
		Sleep: func(context.Context, time.Duration) error { return nil }}

	// 25 runs (seven replicas of four workers: more than MaxWait holds),
	// each writing as soon as it has a slot and asking again 300 ms after
	// its write; a run told to wait comes back when told.
	const runs, horizon = 25, 5 * time.Minute
	wake := make([]time.Time, runs)
	for i := range wake {
		wake[i] = start.Add(time.Duration(i) * time.Millisecond)
	}
	var writes []time.Time
	for steps := 0; ; steps++ {
		if steps > 100_000 {
			t.Fatalf("no end after %d steps (%d writes)", steps, len(writes))
		}
		next := 0
		for i := range wake {
			if wake[i].Before(wake[next]) {
				next = i
			}
		}
		if wake[next].Sub(start) >= horizon {
			break
		}
		now = wake[next]
		var slept time.Duration
		p.Sleep = func(_ context.Context, d time.Duration) error { slept = d; return nil }
		err := p.Wait(ctx, f.pool)
		if err != nil {
			d, perr := time.ParseDuration(strings.TrimPrefix(err.Error(), "wait "))
			if perr != nil || d <= 0 {
				t.Fatalf("Wait: got %v, want nil or a wait", err)
			}
			wake[next] = now.Add(d)
			continue
		}
		at := now.Add(slept)
		writes = append(writes, at)
		wake[next] = at.Add(300 * time.Millisecond)
	}
	// At most 50 writes in any minute, and (slots used, not lost) at
	// least 90% of the 250 the five minutes allow.
	for i := range writes {
		j := i
		for j < len(writes) && writes[j].Sub(writes[i]) < time.Minute {
			j++
		}
		if j-i > 50 {
			t.Fatalf("%d writes in the minute from %v, want at most 50", j-i, writes[i].Sub(start))
		}
	}
	if len(writes) < 225 {
		t.Errorf("writes in %v with %d runs contending: got %d, want about 250 (slots lost to runs that waited)", horizon, runs, len(writes))
	}
}
