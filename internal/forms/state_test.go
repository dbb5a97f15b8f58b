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

// pausedInDecide processes submission id until it holds its locks inside
// decide, and returns then: release lets it go on (a failing test's
// cleanup does too, so its connection goes back), processed gives its
// error.
func (f *fixture) pausedInDecide(id uuid.UUID) (release func(), processed <-chan error) {
	inside, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(proceed) }) }
	f.t.Cleanup(release)
	forms.SetInDecide(f.pipeline, func() {
		close(inside)
		<-proceed
	})
	done := make(chan error, 1)
	go func() {
		_, err := f.pipeline.Process(context.Background(), id)
		done <- err
	}()
	<-inside
	forms.SetInDecide(f.pipeline, nil)
	return release, done
}

// waitForAdvisoryWait returns once a statement taking the advisory lock
// named prefix ('form_state:', 'form_version:') exclusively waits for it;
// what ends first (the other side, not having waited) fails the test.
func waitForAdvisoryWait[T any](f *fixture, prefix string, ended <-chan T) {
	f.t.Helper()
	for f.count(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND wait_event = 'advisory'
			AND query LIKE '%pg_advisory_xact_lock(hashtextextended(''' || $1 || '''%'`, prefix) == 0 {
		select {
		case got := <-ended:
			f.t.Fatalf("it did not wait for the processing's %s lock: %+v", prefix, got)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// A state change waits for the processings of the form in flight only so
// long — processings that come after it queue behind it meanwhile — and
// then tells the caller to try again, changing nothing.
func TestAStateChangeWaitsForProcessingsABoundedTime(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	forms.SetStateWait(f.catalog, 100*time.Millisecond)
	var id uuid.UUID
	if err := f.pool.QueryRow(context.Background(), `INSERT INTO form_submission (xml, source) VALUES ($1, 'hasura') RETURNING id`,
		string(read(t, "household_submission.xml"))).Scan(&id); err != nil {
		t.Fatal(err)
	}
	free, processed := f.pausedInDecide(id)
	// A bound on the test, not on SetState: waiting for ever fails it here.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ch, err := f.catalog.SetState(ctx, "household_survey", forms.StateClosed)
	if got := fault.As(err); got.Kind != fault.Unavailable || got.Code != fault.CodeUnavailable || got.Field != "formId" {
		t.Fatalf("SetState while a processing holds the form: %+v %v, want UNAVAILABLE naming formId", ch, err)
	}
	if n := f.count(`SELECT count(*) FROM form WHERE id = 'household_survey' AND state = 'OPEN'`); n != 1 {
		t.Error("a state change that gave up changed the form")
	}
	free()
	if err := <-processed; err != nil {
		t.Fatalf("the processing: %v, want it accepted", err)
	}
	f.setState(forms.StateClosed, forms.StateOpen, 0)
}

// A processing that read the form CLOSED holds the form's state lock until
// its refusal commits: a reopening meanwhile waits for it and puts it back, so
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
	free, processed := f.pausedInDecide(id)
	changed := make(chan *forms.StateChange, 1)
	go func() {
		ch, err := f.catalog.SetState(ctx, "household_survey", forms.StateOpen)
		if err != nil {
			t.Error(err)
		}
		changed <- ch
	}()
	// The reopening waits on the form's state lock the processing holds.
	waitForAdvisoryWait(f, "form_state:", changed)
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

// A copy sent again with changed content under the same instanceID (ODK
// Collect resends a form saved again; its end time changes at least) takes
// the place of an older copy still waiting for its form — closed, or not
// registered, or put back and not yet processed — when the same sender
// sends it for the same form; another sender's, or another form's, is a
// conflict, as it is once the first was decided; and of two copies
// processed out of order the one that arrived last wins.
func TestNewerCopyReplacesAWaitingOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	changed := func(t *testing.T) []byte { return household(t, "<rooms>3</rooms>", "<rooms>6</rooms>") }
	closed := func(f *fixture) {
		f.register("household_survey.xml", forms.DataCollection)
		f.setState(forms.StateClosed, forms.StateOpen, 0)
	}
	reopen := func(f *fixture) int {
		ch, err := f.catalog.SetState(ctx, "household_survey", forms.StateOpen)
		if err != nil {
			f.t.Fatal(err)
		}
		return ch.Waiting
	}
	send := func(f *fixture, doc []byte, by string) (*forms.Result, error) {
		return f.pipeline.Receive(ctx, forms.Input{XML: doc, Source: "action", SubmittedBy: by, Role: "school"})
	}
	// accepted checks that id, processed now, is accepted with rooms.
	accepted := func(f *fixture, id uuid.UUID, rooms string) {
		f.t.Helper()
		got, err := f.pipeline.Process(ctx, id)
		if err != nil || got.Status != forms.StatusAccepted {
			f.t.Fatalf("processed once its form is ready: %+v %v, want accepted", got, err)
		}
		if got := f.rooms(); !slices.Equal(got, []string{rooms}) {
			f.t.Errorf("rooms %v, want %s", got, rooms)
		}
	}

	for _, tt := range []struct {
		name  string
		wait  func(f *fixture)
		code  fault.Code
		ready func(f *fixture) (waiting int)
	}{
		{"closed", closed, forms.CodeFormClosed, reopen},
		{"not registered", func(*fixture) {}, forms.CodeUnknownForm, func(f *fixture) int {
			return f.register("household_survey.xml", forms.DataCollection).Waiting
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			tt.wait(f)
			if _, err := send(f, read(t, "household_submission.xml"), "teacher-1"); fault.As(err).Code != tt.code {
				t.Fatalf("first copy: %v, want %s", err, tt.code)
			}
			if _, err := send(f, changed(t), "teacher-2"); fault.As(err).Code != forms.CodeDuplicateInstance {
				t.Errorf("another sender's copy: %v, want DUPLICATE_INSTANCE", err)
			}
			res, err := send(f, changed(t), "teacher-1")
			if fault.As(err).Code != tt.code || res == nil {
				t.Fatalf("newer copy: %+v %v, want it waiting (%s) in the first one's place", res, err, tt.code)
			}
			// The first copy, and teacher-2's conflict with it, point at
			// the newer one now.
			if n := f.count(`SELECT count(*) FROM form_submission WHERE duplicate_of = $1`, res.SubmissionID); n != 2 {
				t.Errorf("%d copies point at the newer one, want the first and the conflict", n)
			}
			if n := tt.ready(f); n != 1 {
				t.Errorf("%d submissions waiting, want the newer copy alone", n)
			}
			accepted(f, res.SubmissionID, "6")
			// The first copy sent again, now that the newer one is accepted,
			// is a conflict that changes nothing.
			if _, err := send(f, read(t, "household_submission.xml"), "teacher-1"); fault.As(err).Code != forms.CodeDuplicateInstance {
				t.Errorf("first copy sent again: %v, want DUPLICATE_INSTANCE", err)
			}
			if got := f.rooms(); !slices.Equal(got, []string{"6"}) {
				t.Errorf("rooms %v after the first copy came again, want 6", got)
			}
		})
	}

	t.Run("put back, not yet processed", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		closed(f)
		if _, err := send(f, read(t, "household_submission.xml"), "teacher-1"); fault.As(err).Code != forms.CodeFormClosed {
			t.Fatalf("first copy: %v", err)
		}
		if n := reopen(f); n != 1 {
			t.Fatalf("%d put back, want 1", n)
		}
		// Sent before the sweep took the first copy.
		res, err := send(f, changed(t), "teacher-1")
		if err != nil || res.Status != forms.StatusAccepted || res.Duplicate {
			t.Fatalf("newer copy after the reopening: %+v %v, want it accepted", res, err)
		}
		if got := f.rooms(); !slices.Equal(got, []string{"6"}) {
			t.Errorf("rooms %v, want the newer copy's 6", got)
		}
		if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'received'`); n != 0 {
			t.Errorf("%d copies still waiting for the sweep", n)
		}
	})

	t.Run("processed out of order, the last to arrive wins", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		closed(f)
		insert := func(doc []byte, age string) uuid.UUID {
			var id uuid.UUID
			if err := f.pool.QueryRow(ctx, `INSERT INTO form_submission (xml, source, submitted_by, submitted_role, received_at)
				VALUES ($1, 'hasura', 'teacher-1', 'school', now() - $2::interval) RETURNING id`, string(doc), age).Scan(&id); err != nil {
				t.Fatal(err)
			}
			return id
		}
		older, newer := insert(read(t, "household_submission.xml"), "2 minutes"), insert(changed(t), "1 minute")
		if _, err := f.pipeline.Process(ctx, newer); fault.As(err).Code != forms.CodeFormClosed {
			t.Fatalf("newer copy: %v", err)
		}
		if _, err := f.pipeline.Process(ctx, older); fault.As(err).Code != forms.CodeDuplicateInstance {
			t.Errorf("older copy processed last: %v, want DUPLICATE_INSTANCE", err)
		}
		if n := reopen(f); n != 1 {
			t.Errorf("%d put back, want the newer copy alone", n)
		}
		accepted(f, newer, "6")
	})

	t.Run("a later copy not yet processed wins over the put-back one", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		closed(f)
		first, err := send(f, read(t, "household_submission.xml"), "teacher-1")
		if fault.As(err).Code != forms.CodeFormClosed {
			t.Fatalf("first copy: %v", err)
		}
		// The newer copy inserted through Hasura, its event not delivered
		// yet when the form opens and the sweep takes the older copy first.
		var newer uuid.UUID
		if err := f.pool.QueryRow(ctx, `INSERT INTO form_submission (xml, source, submitted_by, submitted_role)
			VALUES ($1, 'hasura', 'teacher-1', 'school') RETURNING id`, string(changed(t))).Scan(&newer); err != nil {
			t.Fatal(err)
		}
		if n := reopen(f); n != 1 {
			t.Errorf("%d put back, want the first copy", n)
		}
		res, err := f.pipeline.Process(ctx, first.SubmissionID)
		if err != nil || res.Status != forms.StatusAccepted || res.SubmissionID != newer {
			t.Errorf("the put-back copy processed: %+v %v, want the newer copy's acceptance", res, err)
		}
		if got := f.rooms(); !slices.Equal(got, []string{"6"}) {
			t.Errorf("rooms %v, want the newer copy's 6", got)
		}
		if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'duplicate' AND duplicate_of = $2`, first.SubmissionID, newer); n != 1 {
			t.Error("the first copy is not kept as the newer one's duplicate")
		}
		accepted(f, newer, "6")
	})

	t.Run("another form's copy does not retire it", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		closed(f)
		if _, err := send(f, read(t, "household_submission.xml"), "teacher-1"); fault.As(err).Code != forms.CodeFormClosed {
			t.Fatalf("first copy: %v", err)
		}
		other := household(t, `id="household_survey"`, `id="household_survey_b"`)
		if _, err := send(f, other, "teacher-1"); fault.As(err).Code != forms.CodeDuplicateInstance {
			t.Errorf("another form's copy: %v, want DUPLICATE_INSTANCE", err)
		}
		if n := reopen(f); n != 1 {
			t.Errorf("%d put back, want the first copy", n)
		}
	})

	t.Run("copies sent at once", func(t *testing.T) {
		t.Parallel()
		for round := range 5 {
			f := setup(t)
			closed(f)
			if _, err := send(f, read(t, "household_submission.xml"), "teacher-1"); fault.As(err).Code != forms.CodeFormClosed {
				t.Fatalf("round %d: first copy: %v", round, err)
			}
			var mine, theirs error
			var wg sync.WaitGroup
			wg.Go(func() { _, mine = send(f, changed(t), "teacher-1") })
			wg.Go(func() { _, theirs = send(f, household(t, "<rooms>3</rooms>", "<rooms>7</rooms>"), "teacher-2") })
			wg.Wait()
			if fault.As(mine).Code != forms.CodeFormClosed || fault.As(theirs).Code != forms.CodeDuplicateInstance {
				t.Errorf("round %d: teacher-1's newer copy %v, teacher-2's %v; want waiting, and a conflict", round, mine, theirs)
			}
			var by string
			if err := f.pool.QueryRow(ctx, `SELECT submitted_by FROM form_submission WHERE instance_id = $1 AND status <> 'duplicate'`,
				firstInstance).Scan(&by); err != nil || by != "teacher-1" {
				t.Errorf("round %d: the instanceID is held by %q (%v), want teacher-1's copy", round, by, err)
			}
		}
	})
}

// A processing that finds its form version not registered takes the
// version's lock before the submission's row, as Register does: a
// registration meanwhile waits for the refusal and puts it back (taken the
// other way round, the two deadlocked).
func TestRegisteringWaitsForAProcessingOfItsVersion(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	if _, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"}); fault.As(err).Code != forms.CodeUnknownForm {
		t.Fatalf("first copy: %v", err)
	}
	var id uuid.UUID
	if err := f.pool.QueryRow(ctx, `SELECT id FROM form_submission`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	free, processed := f.pausedInDecide(id)
	registered := make(chan *forms.Registered, 1)
	go func() {
		r, err := f.catalog.Register(ctx, read(t, "household_survey.xml"), forms.DataCollection, "admin-1")
		if err != nil {
			t.Error(err)
		}
		registered <- r
	}()
	waitForAdvisoryWait(f, "form_version:", registered)
	free()
	if err := <-processed; fault.As(err).Code != forms.CodeUnknownForm {
		t.Fatalf("processing: %v, want UNKNOWN_FORM", err)
	}
	if r := <-registered; r == nil || r.Waiting != 1 {
		t.Fatalf("registration: %+v, want the refusal put back", r)
	}
}
