package forms_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
)

// setState sets form household_survey's state and checks what it was.
func (f *fixture) setState(state, wantPrevious string, wantWaiting int) {
	f.t.Helper()
	ch, err := f.catalog.SetState(context.Background(), "household_survey", state)
	if err != nil {
		f.t.Fatalf("SetState(%s): %v", state, err)
	}
	if ch.State != state || ch.Previous != wantPrevious || ch.Waiting != wantWaiting {
		f.t.Errorf("SetState(%s) = %+v, want previous %s and %d waiting", state, ch, wantPrevious, wantWaiting)
	}
}

// listed reports whether the form list offers household_survey.
func (f *fixture) listed() bool {
	f.t.Helper()
	list, err := f.catalog.Latest(context.Background(), true)
	if err != nil {
		f.t.Fatal(err)
	}
	return slices.ContainsFunc(list, func(l forms.Listed) bool { return l.FormID == "household_survey" })
}

func wantClosed(t *testing.T, what string, res *forms.Result, err error) {
	t.Helper()
	if got := fault.As(err); got.Code != forms.CodeFormClosed || got.Kind != fault.Conflict {
		t.Fatalf("%s: %+v %v, want a FORM_CLOSED conflict", what, res, err)
	}
	if res == nil || res.Status != forms.StatusRejected || res.Code != forms.CodeFormClosed {
		t.Errorf("%s: result %+v, want the stored submission rejected as FORM_CLOSED", what, res)
	}
}

func TestFormStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("closing stops the offer, not the submissions", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.register("household_survey.xml", forms.DataCollection)
		if !f.listed() {
			t.Fatal("a new form is not offered")
		}
		f.setState(forms.StateClosing, forms.StateOpen, 0)
		if f.listed() {
			t.Error("a CLOSING form is offered")
		}
		res, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"})
		if err != nil || res.Status != forms.StatusAccepted {
			t.Fatalf("submission of a CLOSING form: %+v %v, want accepted", res, err)
		}
		f.setState(forms.StateOpen, forms.StateClosing, 0)
		if !f.listed() {
			t.Error("a reopened form is not offered")
		}
	})

	t.Run("closed refuses on every path and keeps the XML", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.register("household_survey.xml", forms.DataCollection)
		if _, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"}); err != nil {
			t.Fatal(err)
		}
		f.setState(forms.StateClosed, forms.StateOpen, 0)
		if f.listed() {
			t.Error("a CLOSED form is offered")
		}
		// A new submission (the fast path's kind), one whose values do not
		// fit (the fast path would store it rejected as INVALID_VALUE), an
		// edit (the general path).
		docs := map[string][]byte{
			"new": household(t, firstInstance, "uuid:cccccccc-0000-4000-8000-000000000001"),
			"bad values": household(t, firstInstance, "uuid:cccccccc-0000-4000-8000-000000000002",
				"<monthly_income>18000</monthly_income>", "<monthly_income>lots</monthly_income>"),
			"edit": editOf(t, editInstance, "4"),
		}
		for what, doc := range docs {
			res, err := f.pipeline.Receive(ctx, forms.Input{XML: doc, Source: "openrosa"})
			wantClosed(t, what, res, err)
		}
		if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'rejected' AND error_code = 'FORM_CLOSED'
			AND errors @> '[{"path": "/data"}]'`); n != 3 {
			t.Errorf("%d submissions kept as FORM_CLOSED (at /data), want 3", n)
		}
		if got := f.rooms(); len(got) != 1 || got[0] != "3" {
			t.Errorf("rooms %v: the refused edit changed the response", got)
		}
		if n := f.count(`SELECT count(*) FROM response`); n != 1 {
			t.Errorf("%d responses, want the one from before the closing", n)
		}
		// Sent again while closed: refused again, still one row.
		res, err := f.pipeline.Receive(ctx, forms.Input{XML: docs["new"], Source: "openrosa"})
		wantClosed(t, "sent again", res, err)
		if n := f.count(`SELECT count(*) FROM form_submission WHERE instance_id = 'uuid:cccccccc-0000-4000-8000-000000000001'`); n != 1 {
			t.Errorf("%d live rows for the resent instanceID, want 1", n)
		}
		// Closing again changes nothing.
		f.setState(forms.StateClosed, forms.StateClosed, 0)

		// Opening it (CLOSING is open to submissions) puts all three back;
		// each is then decided as it would have been.
		f.setState(forms.StateClosing, forms.StateClosed, 3)
		if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'received' AND error_code IS NULL AND errors IS NULL`); n != 3 {
			t.Errorf("%d submissions put back, want 3", n)
		}
		res, err = f.pipeline.Receive(ctx, forms.Input{XML: docs["new"], Source: "openrosa"})
		if err != nil || res.Status != forms.StatusAccepted || !res.Duplicate {
			t.Errorf("resent after the reopening: %+v %v, want the kept submission accepted", res, err)
		}
		res, err = f.pipeline.Receive(ctx, forms.Input{XML: docs["bad values"], Source: "openrosa"})
		if err != nil || res.Status != forms.StatusRejected || res.Code != forms.CodeInvalidValue {
			t.Errorf("bad values after the reopening: %+v %v, want INVALID_VALUE", res, err)
		}
		res, err = f.pipeline.Receive(ctx, forms.Input{XML: docs["edit"], Source: "openrosa"})
		if err != nil || res.Status != forms.StatusAccepted {
			t.Errorf("edit after the reopening: %+v %v, want accepted", res, err)
		}
		if got := f.rooms(); !slices.Equal(got, []string{"3", "4"}) {
			t.Errorf("rooms %v, want the new submission's 3 and the edit's 4", got)
		}
		if n := f.count(`SELECT count(*) FROM product_event WHERE event = 'form_state_changed'`); n != 2 {
			t.Errorf("%d form_state_changed events, want 2 (closing again is no change)", n)
		}
	})

	t.Run("bad arguments name their field", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.register("household_survey.xml", forms.DataCollection)
		for _, tt := range []struct {
			id, state string
			kind      fault.Kind
			field     string
		}{
			{"", forms.StateClosed, fault.Invalid, "formId"},
			{"household_survey", "closed", fault.Invalid, "state"},
			{"no_such_form", forms.StateClosed, fault.NotFound, "formId"},
		} {
			_, err := f.catalog.SetState(ctx, tt.id, tt.state)
			if got := fault.As(err); got.Kind != tt.kind || got.Field != tt.field {
				t.Errorf("SetState(%q, %q): %v (kind %v, field %q), want kind %v at %s", tt.id, tt.state, err, got.Kind, got.Field, tt.kind, tt.field)
			}
		}
		if !f.listed() {
			t.Error("a refused change changed the state")
		}
	})
}

// A processing that read the form CLOSED holds the form row until its
// refusal commits: a reopening meanwhile waits for it and puts it back, so
// no refusal outlives the closing.
func TestReopeningWaitsForARefusalInFlight(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.register("household_survey.xml", forms.DataCollection)
	f.setState(forms.StateClosed, forms.StateOpen, 0)
	var id uuid.UUID
	if err := f.pool.QueryRow(ctx, `INSERT INTO form_submission (xml, source) VALUES ($1, 'hasura') RETURNING id`,
		string(read(t, "household_submission.xml"))).Scan(&id); err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // a failing test lets the processing end, and its connection go back
	forms.SetInDecide(f.pipeline, func() {
		close(inside)
		<-release
	})
	processed := make(chan error, 1)
	go func() {
		_, err := f.pipeline.Process(ctx, id)
		processed <- err
	}()
	<-inside
	forms.SetInDecide(f.pipeline, nil)
	changed := make(chan *forms.StateChange, 1)
	go func() {
		ch, err := f.catalog.SetState(ctx, "household_survey", forms.StateOpen)
		if err != nil {
			t.Error(err)
		}
		changed <- ch
	}()
	// The reopening waits on the form row the processing holds.
	for f.count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND query LIKE 'SELECT state FROM form WHERE id = $1 FOR UPDATE'`) == 0 {
		select {
		case ch := <-changed:
			t.Fatalf("the reopening did not wait for the processing: %+v", ch)
		case <-time.After(5 * time.Millisecond):
		}
	}
	free()
	if err := <-processed; fault.As(err).Code != forms.CodeFormClosed {
		t.Fatalf("processing: %v, want FORM_CLOSED", err)
	}
	if ch := <-changed; ch == nil || ch.Waiting != 1 {
		t.Fatalf("reopening: %+v, want the refusal put back", ch)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'received'`, id); n != 1 {
		t.Fatal("the refusal outlived the reopening")
	}
	res, err := f.pipeline.Process(ctx, id)
	if err != nil || res.Status != forms.StatusAccepted {
		t.Errorf("processed after the reopening: %+v %v, want accepted", res, err)
	}
}
