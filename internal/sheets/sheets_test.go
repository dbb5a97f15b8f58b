package sheets_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/sheets"
	"github.com/shala-edu/shala/internal/sheets/sheetstest"
)

type bundle struct {
	srv    *sheetstest.Server
	client *sheets.Client
}

func setup(t *testing.T) bundle {
	t.Helper()
	srv := sheetstest.New(t)
	srv.AddSpreadsheet("book-1234567890")
	c, err := sheets.New(context.Background(), sheets.Config{URL: srv.URL, CredentialsJSON: srv.CredentialsJSON(), CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return bundle{srv: srv, client: c}
}

func TestClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("tabs, header, append and read through the official client with service-account auth", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, _, found, err := b.client.Tab(ctx, "book-1234567890", "Responses"); found || err != nil {
			t.Fatalf("Tab of a missing tab: got found %v, %v; want not found", found, err)
		}
		id, cols, err := b.client.AddTab(ctx, "book-1234567890", "Responses")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.client.WriteHeader(ctx, "book-1234567890", id, cols, 0, []string{"KEY", "x", "y"}, 30); err != nil {
			t.Fatal(err)
		}
		gotID, gotCols, found, err := b.client.Tab(ctx, "book-1234567890", "Responses")
		if err != nil || !found || gotCols != 30 || gotID != id {
			t.Fatalf("Tab: got id %d, %d columns, found %v, %v; want id %d with 30 columns", gotID, gotCols, found, err, id)
		}
		rg, err := b.client.Append(ctx, "book-1234567890", "Responses", [][]any{{"r1", "=1+1", 3.5}, {"r2", "-2", 7}})
		if err != nil {
			t.Fatal(err)
		}
		if rg != "'Responses'!A2:C3" {
			t.Errorf("appended range: got %q, want 'Responses'!A2:C3", rg)
		}
		rows, err := b.client.Read(ctx, "book-1234567890", "Responses", "A2:A")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 2 || rows[0][0] != "r1" || rows[1][0] != "r2" {
			t.Errorf("read back column A: got %v, want [[r1] [r2]]", rows)
		}
		all := b.srv.Rows("book-1234567890", "Responses")
		if all[0][1] != "x" || all[1][1] != "=1+1" || all[1][2] != 3.5 {
			t.Errorf("stored rows: got %v, want the header, the formula kept as text and the number as a number", all)
		}
	})

	classify := func(err error) (transient, unknown bool) {
		var se *sheets.Error
		if !errors.As(err, &se) {
			t.Fatalf("got %v (%T), want a *sheets.Error", err, err)
		}
		return se.Transient(), se.Unknown()
	}
	t.Run("errors are classified", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv.SetFault(func(c sheetstest.Call) sheetstest.Fault { return sheetstest.TooMany })
		_, err := b.client.Append(ctx, "book-1234567890", "Sheet1", [][]any{{"a"}})
		if tr, un := classify(err); !tr || un {
			t.Errorf("429: got transient %v unknown %v (%v), want transient, known not applied", tr, un, err)
		}
		b.srv.SetFault(func(c sheetstest.Call) sheetstest.Fault { return sheetstest.DropAfterApply })
		_, err = b.client.Append(ctx, "book-1234567890", "Sheet1", [][]any{{"a"}})
		if tr, un := classify(err); !tr || !un {
			t.Errorf("dropped connection: got transient %v unknown %v (%v), want both", tr, un, err)
		}
		b.srv.SetFault(nil)
		b.srv.Deny("book-1234567890")
		_, _, _, err = b.client.Tab(ctx, "book-1234567890", "Sheet1")
		if tr, un := classify(err); tr || un {
			t.Errorf("403: got transient %v unknown %v (%v), want permanent", tr, un, err)
		}
		_, _, _, err = b.client.Tab(ctx, "no-such-book-123", "Sheet1")
		var se *sheets.Error
		if !errors.As(err, &se) || se.Status != 404 {
			t.Errorf("missing spreadsheet: got %v, want HTTP 404", err)
		}
	})

	t.Run("a timeout after the append was applied is unknown, and the rows are there", func(t *testing.T) {
		t.Parallel()
		srv := sheetstest.New(t)
		srv.AddSpreadsheet("book-1234567890")
		c, err := sheets.New(ctx, sheets.Config{URL: srv.URL, CredentialsJSON: srv.CredentialsJSON(), CallTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		srv.SetFault(func(c sheetstest.Call) sheetstest.Fault {
			if c.Method == "values.append" {
				return sheetstest.TimeoutAfterApply
			}
			return sheetstest.None
		})
		_, err = c.Append(ctx, "book-1234567890", "Sheet1", [][]any{{"a"}})
		var se *sheets.Error
		if !errors.As(err, &se) || !se.Unknown() || !se.Timeout() {
			t.Fatalf("got %v, want an unknown outcome from a timeout", err)
		}
		if rows := srv.Rows("book-1234567890", "Sheet1"); len(rows) != 1 {
			t.Errorf("rows: got %v, want the applied row", rows)
		}
	})

	t.Run("a key that is not a service account is refused", func(t *testing.T) {
		t.Parallel()
		for _, key := range []string{``, `{}`, `{"type":"authorized_user","client_email":"a","private_key":"b"}`} {
			if _, err := sheets.New(ctx, sheets.Config{CredentialsJSON: []byte(key)}); err == nil {
				t.Errorf("key %q: got no error", key)
			}
		}
	})
}
