package forms_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/collector"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/forms"
)

const editInstance = "uuid:aaaaaaaa-0000-4000-8000-000000000002"

// withInstance is the household submission under another instanceID.
func withInstance(t *testing.T, id string, replace ...string) []byte {
	return household(t, append([]string{"<instanceID>" + firstInstance + "</instanceID>", "<instanceID>" + id + "</instanceID>"}, replace...)...)
}

// editOf is an edit (meta/deprecatedID) of the first submission.
func editOf(t *testing.T, instance, rooms string) []byte {
	return household(t, editReplacing(instance, firstInstance, rooms)...)
}

// editReplacing are the replacements that make the sample an edit
// (instance) of the version of instanceID of, with rooms.
func editReplacing(instance, of, rooms string) []string {
	return []string{"<instanceID>" + firstInstance + "</instanceID>",
		"<instanceID>" + instance + "</instanceID><deprecatedID>" + of + "</deprecatedID>", "<rooms>3</rooms>", "<rooms>" + rooms + "</rooms>"}
}

func (f *fixture) rooms() []string {
	f.t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT a.value_text FROM answer a JOIN form_question q ON q.id = a.question_id
		WHERE q.name = 'rooms' ORDER BY 1`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		_ = rows.Scan(&v)
		out = append(out, v)
	}
	return out
}

// Values the database would refuse are found before it is asked: the fast
// path never loses a submission to a failed batch, and the reasons name the
// fields.
func TestValuesTheDatabaseWouldRefuseAreRejectedAndKept(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	cases := []struct {
		name, path string
		doc        []byte
	}{
		{"a non-repeat element twice", "/data/home/rooms", withInstance(t, "uuid:r-1", "<rooms>3</rooms>", "<rooms>3</rooms><rooms>4</rooms>")},
		{"a text answer over 10,000 characters", "/data/remarks", withInstance(t, "uuid:r-2", "<remarks/>", "<remarks>"+strings.Repeat("x", 10001)+"</remarks>")},
		{"a hex float as a decimal", "/data/economy/monthly_savings", withInstance(t, "uuid:r-3", "<monthly_savings>2500.50</monthly_savings>", "<monthly_savings>0x1p4</monthly_savings>")},
	}
	for _, c := range cases {
		res, err := f.pipeline.Receive(ctx, forms.Input{XML: c.doc, Source: "openrosa"})
		if err != nil || res.Status != forms.StatusRejected || len(res.Errors) != 1 || res.Errors[0].Path != c.path {
			t.Errorf("%s: %+v %v, want rejected with one reason at %s", c.name, res, err, c.path)
		}
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'rejected' AND errors IS NOT NULL`); n != len(cases) {
		t.Errorf("%d of %d submissions kept as rejected", n, len(cases))
	}
	if n := f.count(`SELECT count(*) FROM response`); n != 0 {
		t.Errorf("%d responses from rejected submissions", n)
	}
}

// An edit whose deprecatedID names a submission never received is refused
// as ODK Central refuses it (UNKNOWN_EDIT, 404), kept with its XML, and
// does not hold its instanceID: sent again once the original has arrived,
// it is the edit it says it is.
func TestEditOfASubmissionNeverReceived(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	_, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, editInstance, "4"), Source: "openrosa"})
	if fault.As(err).Code != forms.CodeUnknownEdit || fault.KindOf(err) != fault.NotFound ||
		!strings.Contains(err.Error(), "the submission being edited ("+firstInstance+") was not found") {
		t.Fatalf("edit before its original: %v, want UNKNOWN_EDIT", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'rejected' AND error_code = 'UNKNOWN_EDIT'
		AND errors -> 0 ->> 'path' = '/data/meta/deprecatedID' AND xml LIKE '%<rooms>4</rooms>%'`); n != 1 {
		t.Errorf("the refused edit is not kept with its reason (%d)", n)
	}
	if n := f.count(`SELECT count(*) FROM response`); n != 0 {
		t.Errorf("a refused edit made %d responses", n)
	}
	orig, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"})
	if err != nil || orig.Status != forms.StatusAccepted {
		t.Fatalf("original: %+v %v", orig, err)
	}
	again, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, editInstance, "4"), Source: "openrosa"})
	if err != nil || again.Status != forms.StatusAccepted || again.Duplicate || *again.ResponseID != *orig.ResponseID {
		t.Fatalf("the edit sent again: %+v %v, want it to replace the original's response", again, err)
	}
	if got := f.rooms(); len(got) != 1 || got[0] != "4" {
		t.Errorf("rooms %v, want the edit's [4]", got)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE instance_id = $1 AND status = 'superseded'`, firstInstance); n != 1 {
		t.Error("the original is not superseded")
	}
}

// An edit of a version that was stored but refused (bad values) stands in
// for it: Collect edits the copy it sent, so the edit replaces what that
// copy would have replaced; a stale branch is still refused.
func TestEditOfARefusedEdit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	const refusedEdit, fixed = "uuid:aaaaaaaa-0000-4000-8000-0000000000a1", "uuid:aaaaaaaa-0000-4000-8000-0000000000a2"
	orig, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, refusedEdit, "lots"), Source: "openrosa"}); err != nil || res.Status != forms.StatusRejected {
		t.Fatalf("edit with a bad value: %+v %v", res, err)
	}
	edit := household(t, "<instanceID>"+firstInstance+"</instanceID>",
		"<instanceID>"+fixed+"</instanceID><deprecatedID>"+refusedEdit+"</deprecatedID>", "<rooms>3</rooms>", "<rooms>5</rooms>")
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: edit, Source: "openrosa"})
	if err != nil || res.Status != forms.StatusAccepted || *res.ResponseID != *orig.ResponseID {
		t.Fatalf("edit of the refused edit: %+v %v, want the original's response replaced", res, err)
	}
	if got := f.rooms(); len(got) != 1 || got[0] != "5" {
		t.Errorf("rooms %v, want [5]", got)
	}
	_, err = f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, "uuid:aaaaaaaa-0000-4000-8000-0000000000a3", "6"), Source: "openrosa"})
	if fault.As(err).Code != forms.CodeStaleEdit {
		t.Errorf("another edit of the original after it was replaced: %v, want STALE_EDIT", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE status = 'accepted'`); n != 1 {
		t.Errorf("%d live versions, want 1", n)
	}
}

// originalAndARefusedEdit receives the sample (accepted) and an edit of it
// (refused) that is refused (its rooms not a number), and returns the
// original's result.
func (f *fixture) originalAndARefusedEdit(refused string) *forms.Result {
	f.t.Helper()
	ctx := context.Background()
	orig, err := f.pipeline.Receive(ctx, forms.Input{XML: read(f.t, "household_submission.xml"), Source: "openrosa"})
	if err != nil || orig.Status != forms.StatusAccepted {
		f.t.Fatalf("the original: %+v %v", orig, err)
	}
	if res, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(f.t, refused, "lots"), Source: "openrosa"}); err != nil || res.Status != forms.StatusRejected {
		f.t.Fatalf("edit with a bad value: %+v %v", res, err)
	}
	return orig
}

// An edit that follows a refused edit back takes the locks it reaches
// without waiting for them: a resend of the refused edit processed at the
// same time holds the original's lock and waits for the refused edit's,
// which the edit holds, so waiting would close a cycle that Postgres breaks
// by failing one of the two (40P01). The edit runs again taking every lock
// in order first, after the resend.
func TestAnEditAndAResendOfTheRefusedEditItFollowsDoNotDeadlock(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	// firstInstance sorts before both: the resend takes the original's lock
	// first, the edit the refused edit's and its own.
	const refusedEdit, fixed = "uuid:aaaaaaaa-0000-4000-8000-0000000000b1", "uuid:aaaaaaaa-0000-4000-8000-0000000000b2"
	orig := f.originalAndARefusedEdit(refusedEdit)
	edit := f.storeReceived(editReplacing(fixed, refusedEdit, "5")...)
	resend := f.storeReceived(editReplacing(refusedEdit, firstInstance, "lots")...)
	free, edited := f.pausedInDecide(edit)
	type processed struct {
		res *forms.Result
		err error
	}
	resent := make(chan processed, 1)
	go func() {
		res, err := f.pipeline.Process(ctx, resend)
		resent <- processed{res, err}
	}()
	// The resend holds the original's lock and waits for the refused edit's.
	waitForAdvisoryWait(f, "form_submission:", resent)
	free()
	if err := <-edited; err != nil {
		t.Fatalf("the edit: %v, want it accepted", err)
	}
	if got := <-resent; got.err != nil || got.res.Status != forms.StatusRejected || got.res.Code != forms.CodeInvalidValue {
		t.Fatalf("the resend: %+v %v, want the refused edit's own answer (rejected, INVALID_VALUE)", got.res, got.err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'accepted' AND instance_id = $2`, edit, fixed); n != 1 {
		t.Error("the edit is not the accepted version")
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'duplicate'`, resend); n != 1 {
		t.Error("the resend is not kept as a duplicate of the refused edit")
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE instance_id = $1 AND status = 'superseded'`, firstInstance); n != 1 {
		t.Error("the original is not superseded")
	}
	if got := f.rooms(); len(got) != 1 || got[0] != "5" {
		t.Errorf("rooms %v, want the edit's [5]", got)
	}
	if n := f.count(`SELECT count(*) FROM response WHERE id = $1 AND (SELECT count(*) FROM response) = 1`, *orig.ResponseID); n != 1 {
		t.Error("the edit did not replace the original's response")
	}
}

// An edit that finds a lock it follows back taken runs again taking that
// lock first, in order, and waits for it there: it does not give up while
// another processing (a resend of the original) holds it.
func TestAnEditWaitsInOrderForTheOriginalItFollowsBack(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	const refusedEdit, fixed = "uuid:aaaaaaaa-0000-4000-8000-0000000000c1", "uuid:aaaaaaaa-0000-4000-8000-0000000000c2"
	f.originalAndARefusedEdit(refusedEdit)
	resend := f.storeReceived()
	edit := f.storeReceived(editReplacing(fixed, refusedEdit, "5")...)
	// The resend of the original holds the original's lock.
	free, resent := f.pausedInDecide(resend)
	edited := make(chan error, 1)
	go func() {
		_, err := f.pipeline.Process(ctx, edit)
		edited <- err
	}()
	// The edit reaches the original's lock through the refused edit, and
	// waits for it when it runs again.
	waitForAdvisoryWait(f, "form_submission:", edited)
	free()
	if err := <-resent; err != nil {
		t.Fatalf("the resend: %v, want the original's answer", err)
	}
	if err := <-edited; err != nil {
		t.Fatalf("the edit: %v, want it accepted", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'accepted'`, edit); n != 1 {
		t.Error("the edit is not the accepted version")
	}
	if got := f.rooms(); len(got) != 1 || got[0] != "5" {
		t.Errorf("rooms %v, want the edit's [5]", got)
	}
}

// An original and its edits processed at the same time end as if they had
// come in order: an edit that finds its original stored but not processed
// yet (a Hasura insert whose job has not run) processes it first; two edits
// of one version leave one live and refuse the other as STALE_EDIT.
func TestConcurrentVersionsOfOneSubmission(t *testing.T) {
	t.Parallel()
	for round := range 5 {
		f := setup(t)
		f.register("household_survey.xml", forms.DataCollection)
		ctx := context.Background()
		var original uuid.UUID
		if err := f.pool.QueryRow(ctx, `INSERT INTO form_submission (xml, source) VALUES ($1, 'hasura') RETURNING id`,
			string(read(t, "household_submission.xml"))).Scan(&original); err != nil {
			t.Fatal(err)
		}
		docs := [][]byte{editOf(t, editInstance, "4"), editOf(t, "uuid:bbbbbbbb-0000-4000-8000-000000000003", "5")}
		errs := make([]error, len(docs)+1)
		var wg sync.WaitGroup
		wg.Go(func() { _, errs[len(docs)] = f.pipeline.Process(ctx, original) })
		for i, doc := range docs {
			wg.Go(func() { _, errs[i] = f.pipeline.Receive(ctx, forms.Input{XML: doc, Source: "openrosa"}) })
		}
		wg.Wait()
		stale := 0
		for _, err := range errs {
			switch {
			case err == nil:
			case fault.As(err).Code == "STALE_EDIT" && fault.KindOf(err) == fault.Conflict:
				stale++
			default:
				t.Errorf("round %d: %v", round, err)
			}
		}
		if n := f.count(`SELECT count(*) FROM response`); n != 1 {
			t.Errorf("round %d: %d responses, want 1", round, n)
		}
		live := f.count(`SELECT count(*) FROM form_submission WHERE status = 'accepted'`)
		if live != 1 || f.count(`SELECT count(*) FROM form_submission`) != 3 {
			t.Errorf("round %d: %d accepted submissions of 3 stored, want 1", round, live)
		}
		// Both edits replace the original; one of them is live, and the
		// response holds its answers; the other is refused as stale.
		var liveRooms string
		_ = f.pool.QueryRow(ctx, `SELECT CASE instance_id WHEN $1 THEN '4' WHEN 'uuid:bbbbbbbb-0000-4000-8000-000000000003' THEN '5' ELSE '3' END
			FROM form_submission WHERE status = 'accepted'`, editInstance).Scan(&liveRooms)
		if got := f.rooms(); len(got) != 1 || got[0] != liveRooms || liveRooms == "3" {
			t.Errorf("round %d: rooms %v; the live version says %s", round, got, liveRooms)
		}
		if stale != 1 {
			t.Errorf("round %d: %d stale edits, want 1", round, stale)
		}
	}
}

// Processing the same stored submission twice at once (a Collect retry and
// the reconciler, two Hasura inserts) records one outcome: the second finds
// it decided.
func TestConcurrentProcessingKeepsTheOutcome(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	_, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa"})
	if fault.As(err).Code != "UNKNOWN_FORM" {
		t.Fatalf("want UNKNOWN_FORM, got %v", err)
	}
	var id uuid.UUID
	if err := f.pool.QueryRow(ctx, `SELECT id FROM form_submission`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	f.register("household_survey.xml", forms.DataCollection)
	var wg sync.WaitGroup
	results := make([]*forms.Result, 4)
	errs := make([]error, len(results))
	for i := range results {
		wg.Go(func() { results[i], errs[i] = f.pipeline.Process(ctx, id) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i].Status != forms.StatusAccepted || results[i].ResponseID == nil {
			t.Errorf("process %d: %+v %v", i, results[i], errs[i])
		}
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE id = $1 AND status = 'accepted'`, id); n != 1 {
		t.Error("the submission is not accepted")
	}
	if n := f.count(`SELECT count(*) FROM response WHERE submission_id = $1`, id); n != 1 {
		t.Errorf("%d responses", n)
	}
}

// As many submissions processed at once as the pool has connections (River
// workers, Hasura inserts) all finish: processing never waits for a second
// connection while holding one.
func TestProcessingNeverNeedsTwoConnections(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	const conns = 4
	cfg, err := pgxpool.ParseConfig(f.pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = conns
	small, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	// A fresh catalog: the definition is not cached yet either.
	p := &forms.Pipeline{Pool: small, Catalog: forms.NewCatalog(small), Rules: forms.NewRules(), Log: f.pipeline.Log}
	ids := make([]uuid.UUID, 2*conns)
	for i := range ids {
		doc := withInstance(t, uuid.NewString(), "<monthly_savings>2500.50</monthly_savings>", "<monthly_savings>25000</monthly_savings>")
		if err := f.pool.QueryRow(ctx, `INSERT INTO form_submission (xml) VALUES ($1) RETURNING id`, string(doc)).Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := forms.NewRules().SaveRule(ctx, f.catalog, "household_survey", "savings", "monthly_savings <= monthly_income", "बचत आय से अधिक", "t"); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() { _, errs[i] = p.Process(tctx, id) })
	}
	wg.Wait()
	for i, err := range errs {
		if errors.Is(err, context.DeadlineExceeded) || err != nil {
			t.Errorf("process %d: %v", i, err)
		}
	}
	if n := f.count(`SELECT count(*) FROM response_flag`); n != len(ids) {
		t.Errorf("%d flags, want one per response (%d)", n, len(ids))
	}
}

// An edit replaces only a submission of its own form, and only its
// submitter's (the same collector, or the same user) unless an admin edits.
func TestEditsReplaceOnlyYourOwnSubmissionsOfTheSameForm(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	collectors := collector.NewStore(f.pool)
	a, _, err := collectors.Create(ctx, "A", "9816011111", "admin")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := collectors.Create(ctx, "B", "9816022222", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "household_submission.xml"), Source: "openrosa", CollectorID: &a.ID}); err != nil {
		t.Fatal(err)
	}
	// B edits A's submission.
	_, err = f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, editInstance, "9"), Source: "openrosa", CollectorID: &b.ID})
	if fault.KindOf(err) != fault.Forbidden || !strings.Contains(err.Error(), "only your own submission") {
		t.Errorf("another collector's edit: %v, want FORBIDDEN", err)
	}
	// A school user edits it through the action.
	_, err = f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, "uuid:cccccccc-0000-4000-8000-000000000004", "9"), Source: "action",
		SubmittedBy: "17", Role: "school"})
	if fault.KindOf(err) != fault.Forbidden {
		t.Errorf("a school user's edit of a collector's submission: %v, want FORBIDDEN", err)
	}
	if got := f.rooms(); len(got) != 1 || got[0] != "3" {
		t.Fatalf("rooms %v: a refused edit changed the response", got)
	}
	// A's own edit, and an admin's, go through.
	if res, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, "uuid:dddddddd-0000-4000-8000-000000000005", "4"), Source: "openrosa", CollectorID: &a.ID}); err != nil || res.Status != forms.StatusAccepted {
		t.Fatalf("the collector's own edit: %+v %v", res, err)
	}
	adminEdit := household(t, "<instanceID>"+firstInstance+"</instanceID>",
		"<instanceID>uuid:eeeeeeee-0000-4000-8000-000000000006</instanceID><deprecatedID>uuid:dddddddd-0000-4000-8000-000000000005</deprecatedID>",
		"<rooms>3</rooms>", "<rooms>5</rooms>")
	if res, err := f.pipeline.Receive(ctx, forms.Input{XML: adminEdit, Source: "action", SubmittedBy: "1", Role: "state_admin"}); err != nil || res.Status != forms.StatusAccepted {
		t.Fatalf("an admin's edit: %+v %v", res, err)
	}
	if got := f.rooms(); len(got) != 1 || got[0] != "5" {
		t.Errorf("rooms %v, want the admin's 5", got)
	}
}

// An edit naming a submission of another form (e.g. an assessment builder)
// is refused: it cannot block or replace that submission.
func TestEditOfAnotherFormIsRefused(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	f.builderReady()
	ctx := context.Background()
	res, err := f.pipeline.Receive(ctx, forms.Input{XML: read(t, "assessment_submission.xml"), Source: "action", SubmittedBy: "1", Role: "state_admin"})
	if err != nil || res.AssessmentID == nil {
		t.Fatalf("builder: %+v %v", res, err)
	}
	attack := household(t, "<instanceID>"+firstInstance+"</instanceID>",
		"<instanceID>uuid:attacker-1</instanceID><deprecatedID>uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60</deprecatedID>")
	_, err = f.pipeline.Receive(ctx, forms.Input{XML: attack, Source: "action", SubmittedBy: "17", Role: "school"})
	if fault.KindOf(err) != fault.Forbidden || !strings.Contains(err.Error(), "not a submission of form household_survey") {
		t.Errorf("edit naming the builder: %v, want FORBIDDEN", err)
	}
	if n := f.count(`SELECT count(*) FROM form_submission WHERE deprecated_id = 'uuid:0a7c3e1f-5d2b-4c8a-9e6f-1b2c3d4e5f60' AND status = 'accepted'`); n != 0 {
		t.Error("the builder counts as replaced")
	}
}

// A rejected submission is put back for processing on the code it was
// rejected with (UNKNOWN_FORM) when its form version is registered, whatever
// its message says; a message that merely reads like one is not enough.
func TestRegisteringPutsBackByCodeNotWording(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	insert := func(instance, code, reason string) uuid.UUID {
		var id uuid.UUID
		if err := f.pool.QueryRow(ctx, `INSERT INTO form_submission (xml, instance_id, form_id, form_version, status, error_code, errors)
			VALUES ($1, $2, 'household_survey', '2026111501', 'rejected', $3, jsonb_build_array(jsonb_build_object('path', '/data', 'reason', $4::text)))
			RETURNING id`, string(withInstance(t, instance)), instance, code, reason).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	waiting := insert("uuid:w-1", "UNKNOWN_FORM", "फ़ॉर्म पंजीकृत नहीं है") // reworded, translated
	lookalike := insert("uuid:w-2", "INVALID_VALUE", `form "x" version "y" is not registered`)
	if r := f.register("household_survey.xml", forms.DataCollection); r.Waiting != 1 {
		t.Errorf("registration put back %d submissions, want 1", r.Waiting)
	}
	for id, want := range map[uuid.UUID]string{waiting: forms.StatusReceived, lookalike: forms.StatusRejected} {
		var got string
		if err := f.pool.QueryRow(ctx, `SELECT status FROM form_submission WHERE id = $1`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("submission %s is %s, want %s", id, got, want)
		}
	}
	res, err := f.pipeline.Process(ctx, waiting)
	if err != nil || res.Status != forms.StatusAccepted || res.ResponseID == nil {
		t.Errorf("processing the put-back submission: %+v %v", res, err)
	}
	if res, err := f.pipeline.Process(ctx, lookalike); err != nil || res.Status != forms.StatusRejected || res.Code != forms.CodeInvalidValue {
		t.Errorf("processing the look-alike: %+v %v, want it left rejected as INVALID_VALUE", res, err)
	}
}

// A form version registered between a processing's read of the definition
// (none) and its transaction: the processing sees the registration and
// accepts the submission, instead of recording UNKNOWN_FORM after the
// registration already put such submissions back (which left it rejected
// for good).
func TestFormRegisteredWhileASubmissionIsProcessed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	var id uuid.UUID
	if err := f.pool.QueryRow(ctx, `INSERT INTO form_submission (xml) VALUES ($1) RETURNING id`, string(read(t, "household_submission.xml"))).Scan(&id); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	forms.SetAfterRead(f.pipeline, func() { once.Do(func() { f.register("household_survey.xml", forms.DataCollection) }) })
	res, err := f.pipeline.Process(ctx, id)
	if err != nil || res.Status != forms.StatusAccepted || res.ResponseID == nil {
		t.Fatalf("processed: %+v %v, want accepted", res, err)
	}
	if n := f.count(`SELECT count(*) FROM response WHERE submission_id = $1`, id); n != 1 {
		t.Errorf("%d responses", n)
	}
}

// An original whose instanceID an accepted edit already replaced (kept
// from before edits of unknown submissions were refused, or one an edit
// stood in for) is kept as superseded and changes nothing, whether its
// values fit (the fast path declines it) or not.
func TestOriginalAfterItsAcceptedEdit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `INSERT INTO form_submission (xml, instance_id, deprecated_id, form_id, form_version, status)
		VALUES ('<data/>', 'uuid:e-1', $1, 'household_survey', '2026111501', 'accepted'),
		       ('<data/>', 'uuid:e-2', 'uuid:o-2', 'household_survey', '2026111501', 'accepted')`, firstInstance); err != nil {
		t.Fatal(err)
	}
	for _, doc := range [][]byte{read(t, "household_submission.xml"),
		withInstance(t, "uuid:o-2", "<monthly_income>18000</monthly_income>", "<monthly_income>lots</monthly_income>")} {
		res, err := f.pipeline.Receive(ctx, forms.Input{XML: doc, Source: "openrosa"})
		if err != nil || res.Status != forms.StatusSuperseded || res.ResponseID != nil {
			t.Errorf("original after its edit: %+v %v, want superseded", res, err)
		}
	}
	if n := f.count(`SELECT count(*) FROM response`); n != 0 {
		t.Errorf("%d responses from superseded originals", n)
	}
}

// A refused version is stood in for once: a second edit of it edits a copy
// an accepted edit already replaced, and is STALE_EDIT (409) like any edit
// of a replaced version — not a constraint's conflict.
func TestSecondEditOfARefusedVersionIsStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const e1, e2, e3 = "uuid:aaaaaaaa-0000-4000-8000-0000000000b1", "uuid:aaaaaaaa-0000-4000-8000-0000000000b2", "uuid:aaaaaaaa-0000-4000-8000-0000000000b3"
	t.Run("a refused original", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.register("household_survey.xml", forms.DataCollection)
		if res, err := f.pipeline.Receive(ctx, forms.Input{XML: household(t, "<rooms>3</rooms>", "<rooms>lots</rooms>"), Source: "openrosa"}); err != nil || res.Status != forms.StatusRejected {
			t.Fatalf("original with a bad value: %+v %v", res, err)
		}
		if res, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, e1, "4"), Source: "openrosa"}); err != nil || res.Status != forms.StatusAccepted {
			t.Fatalf("first edit: %+v %v", res, err)
		}
		_, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, e2, "5"), Source: "openrosa"})
		if got := fault.As(err); got.Code != forms.CodeStaleEdit || got.Kind != fault.Conflict || !strings.Contains(got.Message, "already replaced") {
			t.Errorf("second edit of the refused original: %v, want STALE_EDIT", err)
		}
		if n := f.count(`SELECT count(*) FROM form_submission WHERE instance_id = $1 AND error_code = 'STALE_EDIT'`, e2); n != 1 {
			t.Errorf("the second edit is not kept as STALE_EDIT")
		}
		if got := f.rooms(); len(got) != 1 || got[0] != "4" {
			t.Errorf("rooms %v, want the first edit's [4]", got)
		}
	})
	t.Run("stood in for, then edited again", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		f.register("household_survey.xml", forms.DataCollection)
		if _, err := f.pipeline.Receive(ctx, forms.Input{XML: household(t, "<rooms>3</rooms>", "<rooms>lots</rooms>"), Source: "openrosa"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, e1, "4"), Source: "openrosa"}); err != nil {
			t.Fatal(err)
		}
		next := household(t, "<instanceID>"+firstInstance+"</instanceID>", "<instanceID>"+e2+"</instanceID><deprecatedID>"+e1+"</deprecatedID>",
			"<rooms>3</rooms>", "<rooms>5</rooms>")
		if res, err := f.pipeline.Receive(ctx, forms.Input{XML: next, Source: "openrosa"}); err != nil || res.Status != forms.StatusAccepted {
			t.Fatalf("edit of the edit: %+v %v", res, err)
		}
		_, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, e3, "6"), Source: "openrosa"})
		if fault.As(err).Code != forms.CodeStaleEdit {
			t.Errorf("an edit of the refused original after two edits: %v, want STALE_EDIT", err)
		}
		if got := f.rooms(); len(got) != 1 || got[0] != "5" {
			t.Errorf("rooms %v, want [5]", got)
		}
	})
}

// A refused original stood in for through a refused edit of it (original
// refused, its edit refused, an edit of that edit accepted) is not stood in
// for again by another edit of the original: one live version.
func TestRefusedOriginalStoodInForThroughARefusedEdit(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.register("household_survey.xml", forms.DataCollection)
	ctx := context.Background()
	const e1, e2, e3 = "uuid:aaaaaaaa-0000-4000-8000-0000000000c1", "uuid:aaaaaaaa-0000-4000-8000-0000000000c2", "uuid:aaaaaaaa-0000-4000-8000-0000000000c3"
	if res, err := f.pipeline.Receive(ctx, forms.Input{XML: household(t, "<rooms>3</rooms>", "<rooms>lots</rooms>"), Source: "openrosa"}); err != nil || res.Status != forms.StatusRejected {
		t.Fatalf("original with a bad value: %+v %v", res, err)
	}
	if res, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, e1, "many"), Source: "openrosa"}); err != nil || res.Status != forms.StatusRejected {
		t.Fatalf("its edit with a bad value: %+v %v", res, err)
	}
	fixed := household(t, "<instanceID>"+firstInstance+"</instanceID>", "<instanceID>"+e2+"</instanceID><deprecatedID>"+e1+"</deprecatedID>",
		"<rooms>3</rooms>", "<rooms>5</rooms>")
	if res, err := f.pipeline.Receive(ctx, forms.Input{XML: fixed, Source: "openrosa"}); err != nil || res.Status != forms.StatusAccepted {
		t.Fatalf("edit of the refused edit: %+v %v", res, err)
	}
	_, err := f.pipeline.Receive(ctx, forms.Input{XML: editOf(t, e3, "6"), Source: "openrosa"})
	if fault.As(err).Code != forms.CodeStaleEdit {
		t.Errorf("another edit of the refused original: %v, want STALE_EDIT", err)
	}
	if got := f.rooms(); len(got) != 1 || got[0] != "5" {
		t.Errorf("rooms %v, want [5]: one live version", got)
	}
}
