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
	if err := p.Wait(ctx, f.pool); err != nil { // the fourth slot is 3.6 s away, beyond MaxWait
		if !strings.Contains(err.Error(), "wait 3.6s") {
			t.Errorf("a slot beyond MaxWait: got %v, want a wait of 3.6s", err)
		}
	} else {
		t.Errorf("a slot beyond MaxWait: got no error")
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
