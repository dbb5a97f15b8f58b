package export_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/export"
	"github.com/shala-edu/shala/internal/sheets/sheetstest"
)

func TestSheetExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("appends each response once, in order, under a header written once", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		r1 := s.respond("1", a("name", "आरव"), a("age", "41"), a("income", "-1500.50"), a("water", "tap"),
			choice("sources", 0, "farm"), choice("sources", 1, "wages"), a("formula", "=cmd|' /C calc'!A0"),
			rep("member_name", "1", "Asha"), rep("member_age", "1", "12"), rep("member_name", "2", "Ravi"))
		out := s.run()
		if out.Rows != 1 {
			t.Fatalf("first run: got %d rows, want 1", out.Rows)
		}
		rows := s.srv.Rows(book, "Responses")
		wantHeader := []any{"KEY", "SubmissionDate", "FormVersion", "Name", "Age", "Monthly income", "Water source",
			"Income sources", `=HYPERLINK("x")`, "Name (member_name)", "Member age", "instanceID"}
		if !slices.Equal(rows[0], wantHeader) {
			t.Errorf("header:\n got %q\nwant %q", rows[0], wantHeader)
		}
		got := rows[1]
		if got[0] != r1.String() || got[2] != "1" || got[3] != "आरव" || got[4] != 41.0 || got[5] != -1500.5 ||
			got[6] != "tap" || got[7] != "farm wages" || got[8] != "=cmd|' /C calc'!A0" ||
			got[9] != "1: Asha\n2: Ravi" || got[10] != "1: 12" {
			t.Errorf("row: got %q", got)
		}
		if _, err := time.Parse(time.RFC3339, got[1].(string)); err != nil {
			t.Errorf("SubmissionDate %q: %v", got[1], err)
		}

		r2 := s.respond("1", a("name", "Meena"))
		r3 := s.respond("1", a("name", "Kamla"))
		if out := s.run(); out.Rows != 2 {
			t.Errorf("second run: got %d rows, want 2", out.Rows)
		}
		if out := s.run(); out.Rows != 0 {
			t.Errorf("third run with nothing new: got %d rows, want 0", out.Rows)
		}
		if got, want := s.keys(), []string{r1.String(), r2.String(), r3.String()}; !slices.Equal(got, want) {
			t.Errorf("keys: got %v, want %v", got, want)
		}
		calls := s.srv.Calls()
		if calls["values.append"] != 2 || calls["spreadsheets.batchUpdate"] != 2 {
			t.Errorf("calls: got %v, want 2 appends and 2 batchUpdates (add the tab, write the header)", calls)
		}
		if n, enabled, lastErr := s.state(s.exportID); n != 3 || !enabled || lastErr != "" {
			t.Errorf("state: got rows %d enabled %v error %q, want 3, true, none", n, enabled, lastErr)
		}
	})

	t.Run("a cell over Google's 50,000 characters is cut, not refused", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		long := strings.Repeat("😀", 9000) // 18,000 UTF-16 units, as Google counts
		s.respond("1", rep("member_name", "1", long), rep("member_name", "2", long), rep("member_name", "3", long))
		s.run()
		rows := s.srv.Rows(book, "Responses")
		cell, _ := rows[1][9].(string)
		units := 0
		for _, r := range cell {
			units += len(utf16.Encode([]rune{r}))
		}
		if units > 50000 || !strings.HasSuffix(cell, "…[truncated]") || !strings.HasPrefix(cell, "1: 😀") {
			t.Errorf("cell: %d units, ends %q; want at most 50,000 ending with the marker", units, cell[max(0, len(cell)-20):])
		}
	})

	t.Run("a number JSON cannot carry (NaN, Infinity) goes as text instead of stalling the export", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		nan := s.respond("1", a("name", "A"), a("age", "41"))
		inf := s.respond("1", a("name", "B"), a("age", "42"))
		for id, v := range map[uuid.UUID]string{nan: "NaN", inf: "Infinity"} {
			// numeric holds them; the forms pipeline never stores them, SQL can.
			if _, err := s.pool.Exec(ctx, `UPDATE answer SET value_number = $2::numeric WHERE response_id = $1 AND value_number IS NOT NULL`, id, v); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := s.exporter.Run(ctx, s.exportID); err != nil || out.Rows != 2 {
			t.Fatalf("run: got %+v, %v; want both rows appended", out, err)
		}
		if rows := s.srv.Rows(book, "Responses"); rows[1][4] != "41" || rows[2][4] != "42" {
			t.Errorf("age cells: got %q and %q, want the text as submitted", rows[1][4], rows[2][4])
		}
	})

	t.Run("a later form version adds its columns at the end without reordering", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		s.respond("1", a("name", "A"))
		s.run()
		s.register("survey_v2.xml")
		r2 := s.respond("2", a("name", "B"), a("remarks", "new question"))
		s.run()
		rows := s.srv.Rows(book, "Responses")
		if got := rows[0][len(rows[0])-1]; got != "Remarks" || rows[0][3] != "Name" || len(rows[0]) != 13 {
			t.Errorf("header: got %q, want the 12 columns then Remarks", rows[0])
		}
		if rows[2][0] != r2.String() || rows[2][12] != "new question" || rows[2][3] != "B" {
			t.Errorf("row of version 2: got %q", rows[2])
		}
	})

	t.Run("a label renamed by a later version is rewritten in row 1", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		s.respond("1", a("name", "A"))
		s.run()
		// Someone retitled Name in the sheet: cells before the renamed
		// label are left as they are.
		rows := s.srv.Rows(book, "Responses")
		rows[0][3] = "Name (edited)"
		s.srv.SetCells(book, "Responses", rows)
		due := s.sweep
		if n := due(); n != 0 {
			t.Fatalf("sweep before the new version: %d runs queued, want none", n)
		}
		v3 := strings.ReplaceAll(string(s.testdata("survey_v2.xml")), `version="2"`, `version="3"`)
		v3 = strings.ReplaceAll(v3, "<value>Monthly income</value>", "<value>Income per month</value>")
		s.registerXML([]byte(v3))
		// No response comes: the new version alone makes the export due.
		if n := due(); n != 1 {
			t.Fatalf("sweep after a version that renames a label: %d runs queued, want 1", n)
		}
		s.run()
		rows = s.srv.Rows(book, "Responses")
		want := []any{"KEY", "SubmissionDate", "FormVersion", "Name (edited)", "Age", "Income per month", "Water source"}
		if !slices.Equal(rows[0][:len(want)], want) || rows[0][len(rows[0])-1] != "Remarks" {
			t.Errorf("header: got %q, want it to start %q and end with Remarks", rows[0], want)
		}
		if n := due(); n != 0 {
			t.Errorf("sweep after the header was rewritten: %d runs queued, want none", n)
		}
		// Another version that renames nothing: checked once, not rewritten.
		calls := s.srv.Calls()["spreadsheets.batchUpdate"]
		s.registerXML([]byte(strings.ReplaceAll(v3, `version="3"`, `version="4"`)))
		if n := due(); n != 1 {
			t.Fatalf("sweep after a version that renames nothing: %d runs queued, want 1", n)
		}
		s.run()
		if got := s.srv.Calls()["spreadsheets.batchUpdate"]; got != calls {
			t.Errorf("batchUpdates: %d after a version that renames nothing, want still %d", got, calls)
		}
		if n := due(); n != 0 {
			t.Errorf("sweep after that run: %d runs queued, want none", n)
		}
	})

	t.Run("a header written before its labels were kept is written again once, whole", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		s.respond("1", a("name", "A"))
		s.run()
		if _, err := s.pool.Exec(context.Background(), `UPDATE sheet_export SET header = '{}', header_layout_at = NULL WHERE id = $1`, s.exportID); err != nil {
			t.Fatal(err)
		}
		rows := s.srv.Rows(book, "Responses")
		rows[0][3] = "stale"
		s.srv.SetCells(book, "Responses", rows)
		if n := s.sweep(); n != 1 {
			t.Fatalf("sweep: %d runs queued, want 1", n)
		}
		s.run()
		if got := s.srv.Rows(book, "Responses")[0][3]; got != "Name" {
			t.Errorf("D1: got %q, want Name written again", got)
		}
		if n := s.sweep(); n != 0 {
			t.Errorf("sweep after the run: %d runs queued, want none", n)
		}
	})

	t.Run("an edited response is written over its row", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		r1 := s.respond("1", a("name", "A"), a("age", "30"))
		r2 := s.respond("1", a("name", "B"), a("age", "40"))
		r3 := s.respond("1", a("name", "C"), a("age", "50"))
		s.run()
		// Someone deleted B's row by hand: C's moved up.
		s.srv.DeleteRows(book, "Responses", 3, 3)
		before := s.srv.Rows(book, "Responses")
		s.edit(r2, "1", a("name", "B (corrected)"))
		s.edit(r3, "1", a("name", "C (corrected)"), a("age", "51"))
		r4 := s.respond("1", a("name", "D"))
		s.edit(r4, "1", a("name", "D (corrected)")) // not in the sheet yet: appended as it is now
		if n := s.sweep(); n != 1 {
			t.Fatalf("sweep after edits: %d runs queued, want 1", n)
		}
		calls := s.srv.Calls()["values.batchUpdate"]
		out := s.run()
		if out.Rewritten != 1 || out.Rows != 1 {
			t.Errorf("run: %+v, want 1 row rewritten (C; B's row is gone) and 1 appended (D)", out)
		}
		rows := s.srv.Rows(book, "Responses")
		if len(rows) != 4 || rows[1][0] != r1.String() || rows[2][0] != r3.String() || rows[3][0] != r4.String() {
			t.Fatalf("sheet: got %q, want the header, A, C, D", rows)
		}
		if rows[2][3] != "C (corrected)" || rows[2][4] != float64(51) || rows[3][3] != "D (corrected)" {
			t.Errorf("rows: C %q, D %q; want C's and D's edited values", rows[2], rows[3])
		}
		if !slices.Equal(rows[1], before[1]) {
			t.Errorf("A's row: got %q, want it untouched (%q)", rows[1], before[1])
		}
		if got := s.srv.Calls()["values.batchUpdate"]; got != calls+1 {
			t.Errorf("values.batchUpdate calls: %d, want %d", got, calls+1)
		}
		// Done: nothing is due, and another run writes nothing.
		if n := s.sweep(); n != 0 {
			t.Errorf("sweep after the rewrite: %d runs queued, want none", n)
		}
		if out := s.run(); out.Rewritten != 0 || out.Rows != 0 {
			t.Errorf("run with nothing new: %+v", out)
		}
		// Edited again, and nothing else new: due for the edit alone, and
		// written again.
		s.edit(r1, "1", a("name", "A (corrected)"))
		if n := s.sweep(); n != 1 {
			t.Errorf("sweep after a second edit: %d runs queued, want 1", n)
		}
		if out := s.run(); out.Rewritten != 1 {
			t.Errorf("run after a second edit: %+v, want 1 row rewritten", out)
		}
		if got := s.srv.Rows(book, "Responses")[1][3]; got != "A (corrected)" {
			t.Errorf("A's name: %q, want the edit", got)
		}
	})

	t.Run("a rewrite of unknown outcome holds off the next, and never stops the appends", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 300*time.Millisecond)
		now := time.Now()
		s.exporter.Now = func() time.Time { return now }
		s.exporter.UnknownWait = 2 * time.Minute
		r1 := s.respond("1", a("name", "A"))
		s.run()
		s.edit(r1, "1", a("name", "A1"))
		s.srv.SetFault(faultOn("values.batchUpdate", sheetstest.TimeoutAfterApply))
		r2 := s.respond("1", a("name", "B"))
		if out := s.run(); out.Rewritten != 0 || out.Rows != 1 {
			t.Fatalf("run with a timed-out rewrite: %+v, want B appended all the same", out)
		}
		// A second edit while the first write may still land: nothing is
		// written until it surely has or has not.
		s.srv.SetFault(nil)
		s.edit(r1, "1", a("name", "A2"))
		if out := s.run(); out.Rewritten != 0 {
			t.Errorf("run within UnknownWait: %+v, want no rewrite", out)
		}
		now = now.Add(s.exporter.UnknownWait + time.Second)
		if out := s.run(); out.Rewritten != 1 {
			t.Errorf("run after UnknownWait: %+v, want A's row written", out)
		}
		rows := s.srv.Rows(book, "Responses")
		if len(rows) != 3 || rows[1][3] != "A2" || rows[2][0] != r2.String() {
			t.Errorf("sheet: %q, want the header, A2, B", rows)
		}
		// Refused for a while (429): the appends go on and the edit is
		// written at a later run.
		s.edit(r2, "1", a("name", "B1"))
		s.srv.SetFault(faultOn("values.batchUpdate", sheetstest.TooMany))
		s.respond("1", a("name", "C"))
		if out := s.run(); out.Rewritten != 0 || out.Rows != 1 {
			t.Errorf("run with a 429 on the rewrite: %+v, want C appended all the same", out)
		}
		if n := s.sweep(); n != 1 {
			t.Errorf("sweep with B's edit left: %d runs queued, want 1", n)
		}
		s.srv.SetFault(nil)
		if out := s.run(); out.Rewritten != 1 {
			t.Errorf("run after the 429: %+v, want B's row written", out)
		}
		if rows := s.srv.Rows(book, "Responses"); rows[2][3] != "B1" {
			t.Errorf("B's name: %q, want B1", rows[2][3])
		}
	})

	t.Run("a refused rewrite stops the export and keeps its edits", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		r1 := s.respond("1", a("name", "A"))
		s.run()
		s.edit(r1, "1", a("name", "A1"))
		s.srv.SetFault(faultOn("values.batchUpdate", sheetstest.Protected))
		if out := s.run(); !out.Disabled {
			t.Fatalf("run with the rewrite refused: %+v, want the export stopped", out)
		}
		if _, enabled, lastErr := s.state(s.exportID); enabled || !strings.Contains(lastErr, "protected") {
			t.Errorf("state: enabled %v, last error %q; want stopped with Google's reason", enabled, lastErr)
		}
		// Protection lifted, connected again: the edit is written.
		s.srv.SetFault(nil)
		if _, err := export.Connect(context.Background(), s.pool, nil, formID, book, "Responses", "admin-1"); err != nil {
			t.Fatal(err)
		}
		if out := s.run(); out.Rewritten != 1 {
			t.Errorf("run after connecting again: %+v, want the edit written", out)
		}
		if got := s.srv.Rows(book, "Responses")[1][3]; got != "A1" {
			t.Errorf("A's name: %q, want A1", got)
		}
	})

	t.Run("the first append's unknown outcome does not make earlier edits be written again", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 300*time.Millisecond)
		r1 := s.respond("1", a("name", "A"))
		s.edit(r1, "1", a("name", "A1"))
		s.srv.SetFault(faultOn("values.append", sheetstest.TimeoutAfterApply))
		if _, err := s.exporter.Run(context.Background(), s.exportID); err == nil {
			t.Fatal("run with a timed-out append: no error, want one")
		}
		s.srv.SetFault(nil)
		if out := s.run(); out.Rows != 1 || out.Rewritten != 0 || s.srv.Calls()["values.batchUpdate"] != 0 {
			t.Errorf("run that settles the append: %+v, %d rewrites; want A found landed and no rewrite", out, s.srv.Calls()["values.batchUpdate"])
		}
	})

	t.Run("edits made before an export was connected are not written again", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		r1 := s.respond("1", a("name", "A"))
		s.edit(r1, "1", a("name", "A1"))
		out := s.run()
		if out.Rows != 1 || out.Rewritten != 0 {
			t.Fatalf("first run: %+v, want A appended as edited", out)
		}
		if n := s.sweep(); n != 0 {
			t.Errorf("sweep: %d runs queued, want none (the edit is in the appended row)", n)
		}
		if out := s.run(); out.Rewritten != 0 || s.srv.Calls()["values.batchUpdate"] != 0 {
			t.Errorf("second run: %+v, %d batchUpdates; want no rewrite", out, s.srv.Calls()["values.batchUpdate"])
		}
		if got := s.srv.Rows(book, "Responses")[1][3]; got != "A1" {
			t.Errorf("A's name: %q, want A1", got)
		}
	})

	t.Run("a timeout after Google applied the append does not duplicate the rows", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 300*time.Millisecond)
		s.respond("1", a("name", "A"))
		s.respond("1", a("name", "B"))
		s.srv.SetFault(faultOn("values.append", sheetstest.TimeoutAfterApply))
		if _, err := s.exporter.Run(ctx, s.exportID); err == nil {
			t.Fatal("run with a timed-out append: got no error")
		}
		if n, _, lastErr := s.state(s.exportID); n != 0 || lastErr == "" {
			t.Errorf("after the timeout: got rows %d error %q, want 0 and the error recorded", n, lastErr)
		}
		s.srv.SetFault(nil)
		s.respond("1", a("name", "C"))
		out := s.run()
		if got, want := s.keys(), s.ordered(); !slices.Equal(got, want) {
			t.Errorf("keys: got %v, want %v (each once)", got, want)
		}
		if out.Rows != 3 {
			t.Errorf("rows settled and appended by the second run: got %d, want 3", out.Rows)
		}
		if n, _, lastErr := s.state(s.exportID); n != 3 || lastErr != "" {
			t.Errorf("state: got rows %d error %q, want 3 and no error", n, lastErr)
		}
	})

	t.Run("a response committed after later ones is not skipped", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		early := s.respond("1", a("name", "early"))
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		late, err := insertResponse(tx, "1", []ans{a("name", "late")}) // submitted_at = now, committed later
		if err != nil {
			t.Fatal(err)
		}
		after := s.respond("1", a("name", "after"))
		s.run()
		if got := s.keys(); !slices.Equal(got, []string{early.String()}) {
			t.Errorf("while the late transaction is open: got %v, want only the response before it", got)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		s.run()
		if got, want := s.keys(), []string{early.String(), late.String(), after.String()}; !slices.Equal(got, want) {
			t.Errorf("keys: got %v, want %v", got, want)
		}
	})

	t.Run("a response whose transaction waited for a lock before writing is not skipped", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second) // Settle 0: only the horizon protects
		early := s.respond("1", a("name", "early"))
		holder, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Rollback(ctx)
		if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock(20261201)`); err != nil {
			t.Fatal(err)
		}
		// The forms pipeline takes a lock on the instanceID before it
		// writes; its response is stamped with its transaction's start.
		lateID := make(chan any, 1) // the response's id once committed, or an error
		go func() {
			var id uuid.UUID
			err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(20261201)`); err != nil {
					return err
				}
				var err error
				id, err = insertResponse(tx, "1", []ans{a("name", "late")})
				return err
			})
			if err != nil {
				lateID <- err
				return
			}
			lateID <- id
		}()
		for waiting := false; !waiting; {
			if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND wait_event = 'advisory')`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
		}
		after := s.respond("1", a("name", "after"))
		s.run()
		if got := s.keys(); !slices.Equal(got, []string{early.String()}) {
			t.Errorf("while a transaction waits to write: got %v, want only the response before it", got)
		}
		if err := holder.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		got := <-lateID
		late, ok := got.(uuid.UUID)
		if !ok {
			t.Fatalf("the waiting transaction: %v", got)
		}
		s.run()
		if got, want := s.keys(), []string{early.String(), late.String(), after.String()}; !slices.Equal(got, want) {
			t.Errorf("keys: got %v, want %v", got, want)
		}
	})

	t.Run("a sheet holding other data is never written; the export is disabled with the reason", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		s.srv.SetCells(book, "Responses", [][]any{{"Budget 2026"}, {"rent", 1200.0}})
		s.respond("1", a("name", "A"))
		out := s.run()
		n, enabled, lastErr := s.state(s.exportID)
		if !out.Disabled || enabled || n != 0 || !strings.Contains(lastErr, "already holds other data") {
			t.Errorf("got outcome %+v, rows %d enabled %v error %q; want disabled with the reason", out, n, enabled, lastErr)
		}
		if rows := s.srv.Rows(book, "Responses"); len(rows) != 2 || rows[0][0] != "Budget 2026" {
			t.Errorf("sheet: got %v, want it untouched", rows)
		}
	})

	t.Run("a tab deleted or emptied stops the export; connecting again writes every response again, once", func(t *testing.T) {
		t.Parallel()
		for _, how := range []string{"deleted", "deleted and made again empty", "emptied", "deleted with a batch pending"} {
			t.Run(how, func(t *testing.T) {
				t.Parallel()
				s := setupSheets(t, 200*time.Millisecond)
				s.respond("1", a("name", "A"))
				s.respond("1", a("name", "B"))
				s.run()
				switch how {
				case "deleted":
					s.srv.DeleteTab(book, "Responses")
				case "deleted and made again empty":
					s.srv.DeleteTab(book, "Responses")
					s.srv.SetCells(book, "Responses", nil)
				case "emptied":
					s.srv.SetCells(book, "Responses", nil)
				case "deleted with a batch pending":
					s.srv.SetFault(func(c sheetstest.Call) sheetstest.Fault {
						if c.Method == "values.append" {
							return sheetstest.TimeoutAfterApply
						}
						return sheetstest.None
					})
					s.respond("1", a("name", "C"))
					if _, err := s.exporter.Run(ctx, s.exportID); err == nil {
						t.Fatal("a timed-out append: got no error")
					}
					s.srv.SetFault(nil)
					s.srv.DeleteTab(book, "Responses")
				}
				s.respond("1", a("name", "D"))
				if out := s.run(); !out.Disabled {
					t.Errorf("the tab %s: got %+v, want the export disabled", how, out)
				}
				if how == "emptied" || how == "deleted and made again empty" {
					// D landed at row 1, with no header above: the export
					// stops and says what to do, which a person does.
					if _, _, lastErr := s.state(s.exportID); !strings.Contains(lastErr, "lost its header") {
						t.Errorf("last error: got %q, want it to say the tab lost its header", lastErr)
					}
					s.srv.SetCells(book, "Responses", nil)
				}
				c, err := export.Connect(ctx, s.pool, nil, formID, book, "Responses", "admin-1")
				if err != nil || !c.Enabled {
					t.Fatalf("connect again: %+v, %v", c, err)
				}
				s.run()
				rows := s.srv.Rows(book, "Responses")
				if len(rows) == 0 || rows[0][0] != "KEY" {
					t.Fatalf("sheet: got %v, want the header first", rows)
				}
				if got, want := s.keys(), s.ordered(); !slices.Equal(got, want) {
					t.Errorf("keys: got %v, want every response once, in order: %v", got, want)
				}
				if n, enabled, lastErr := s.state(s.exportID); n != int64(len(s.ordered())) || !enabled || lastErr != "" {
					t.Errorf("state: got rows %d enabled %v error %q, want %d, enabled, no error", n, enabled, lastErr, len(s.ordered()))
				}
			})
		}
	})

	t.Run("a spreadsheet not shared with the service account disables the export", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		s.srv.Deny(book)
		s.respond("1", a("name", "A"))
		s.run()
		if _, enabled, lastErr := s.state(s.exportID); enabled || !strings.Contains(lastErr, "403") {
			t.Errorf("got enabled %v error %q, want disabled with HTTP 403", enabled, lastErr)
		}
	})

	t.Run("429 fails the run for a retry and nothing is pending", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		s.respond("1", a("name", "A"))
		s.srv.SetFault(faultOn("values.append", sheetstest.TooMany))
		if _, err := s.exporter.Run(ctx, s.exportID); err == nil {
			t.Fatal("got no error")
		}
		var pending *string
		if err := s.pool.QueryRow(ctx, `SELECT pending_response_id::text FROM sheet_export WHERE id = $1`, s.exportID).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending != nil {
			t.Errorf("pending after a refused append: got %s, want none", *pending)
		}
		s.srv.SetFault(nil)
		s.run()
		if got := len(s.keys()); got != 1 {
			t.Errorf("rows: got %d, want 1", got)
		}
		if reads := s.srv.Calls()["values.get"]; reads != 0 {
			t.Errorf("read-backs: got %d, want 0 (a 429 is known not applied)", reads)
		}
	})

	t.Run("one run at a time per export", func(t *testing.T) {
		t.Parallel()
		s := setupSheets(t, 5*time.Second)
		s.respond("1", a("name", "A"))
		inside := make(chan struct{})
		release := make(chan struct{})
		s.exporter.Hook = func(step string) {
			if step == "locked" {
				close(inside)
				<-release
			}
		}
		done := make(chan error, 1)
		go func() {
			_, err := s.exporter.Run(ctx, s.exportID)
			done <- err
		}()
		<-inside
		other := *s.exporter
		other.Hook = nil
		out, err := other.Run(ctx, s.exportID)
		if err != nil || !out.Busy {
			t.Errorf("second run while the first holds the export: got %+v, %v; want busy", out, err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := len(s.keys()); got != 1 {
			t.Errorf("rows: got %d, want 1", got)
		}
	})
}

// A batch of unknown outcome is settled even when a person has since
// deleted rows so that the tab is shorter than the rows written: Google
// refuses a read starting below the grid ("exceeds grid limits", 400), and
// that must not stop the export for good (connecting again would find the
// same pending batch and fail the same way).
func TestPendingBatchAfterRowsWereDeleted(t *testing.T) {
	t.Parallel()
	s := setupSheets(t, 5*time.Second)
	s.exporter.UnknownWait = 0
	for _, name := range []string{"Asha", "Ravi", "Meena"} {
		s.respond("1", a("name", name))
	}
	s.run()
	r4, r5 := s.respond("1", a("name", "Kamla")), s.respond("1", a("name", "Lata"))
	// The append lands; the process dies before recording it.
	func() {
		s.exporter.Hook = func(step string) {
			if step == export.StepAppended {
				panic(killed{step})
			}
		}
		defer func() {
			s.exporter.Hook = nil
			if recover() == nil {
				t.Fatal("the run was not killed")
			}
		}()
		s.run()
	}()
	// The person archives the first three responses and deletes the
	// tab's empty rows: rows 2–4 and everything below the two new ones.
	s.srv.DeleteRows(book, "Responses", 2, 4)
	s.srv.DeleteRows(book, "Responses", 4, 1002)

	out := s.run()
	if n, enabled, lastErr := s.state(s.exportID); n != 5 || !enabled || lastErr != "" || out.Disabled {
		t.Errorf("state: got rows %d enabled %v error %q (outcome %+v), want 5, true, none", n, enabled, lastErr, out)
	}
	if got, want := s.keys(), []string{r4.String(), r5.String()}; !slices.Equal(got, want) {
		t.Errorf("keys: got %v, want %v (the landed batch once)", got, want)
	}
	if calls := s.srv.Calls(); calls["values.append"] != 2 {
		t.Errorf("appends: got %d, want 2 (the landed batch is not sent again)", calls["values.append"])
	}
}
