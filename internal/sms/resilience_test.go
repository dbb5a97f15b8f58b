package sms_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/sms/cdac/cdactest"
)

// queuedMessages makes a PROCESSING, expanded HOLIDAY request with n queued
// messages (as the expansion leaves them), last touched age ago.
func (f *fixture) queuedMessages(n int, age time.Duration) (uuid.UUID, []uuid.UUID) {
	f.t.Helper()
	ctx := context.Background()
	var req uuid.UUID
	if err := f.pool.QueryRow(ctx, `INSERT INTO sms_request (school_id, type, variables, status, expanded_at, recipients_total)
		VALUES ($1, 'HOLIDAY', '{"start_date":"a","end_date":"b","reopen_date":"c"}', 'PROCESSING', now(), $2) RETURNING id`,
		f.school, n).Scan(&req); err != nil {
		f.t.Fatal(err)
	}
	var ids []uuid.UUID
	for i := range n {
		var id uuid.UUID
		if err := f.pool.QueryRow(ctx, `INSERT INTO sms_message (request_id, phone, body, created_at, updated_at)
			VALUES ($1, $2, 'body', now() - make_interval(secs => $3), now() - make_interval(secs => $3)) RETURNING id`,
			req, fmt.Sprintf("+9198160%05d", i), age.Seconds()).Scan(&id); err != nil {
			f.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return req, ids
}

func isSnooze(err error) bool {
	var snooze *rivertype.JobSnoozeError
	return errors.As(err, &snooze)
}

// With a slow provider rate, a batch's turn at the rate limiter can lie
// beyond its job's deadline. The job then runs again for the rest (a snooze:
// no attempt used) instead of completing with messages unsent.
func TestBatchBehindTheRateLimiterRunsAgainForTheRest(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, ids := f.queuedMessages(10, 0)
	w := &sms.SendBatchWorker{Sender: &sms.Sender{Pool: f.pool, Provider: f.provider, Limiter: sms.Limiter(1), Log: discard, Metrics: f.metrics}}
	ctx, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
	defer cancel()
	err := w.Work(ctx, &river.Job[sms.SendBatchArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 25}, Args: sms.SendBatchArgs{MessageIDs: ids}})
	queued := f.count(`SELECT count(*) FROM sms_message WHERE id = ANY ($1) AND status = 'queued' AND attempts = 0`, ids)
	if queued == 0 || !isSnooze(err) {
		t.Fatalf("%d messages left, job returned %v; want some left and a snooze", queued, err)
	}
	// The re-run, with time, sends the rest.
	again := &sms.SendBatchWorker{Sender: &sms.Sender{Pool: f.pool, Provider: f.provider, Limiter: sms.Limiter(0), Log: discard, Metrics: f.metrics}}
	if err := again.Work(context.Background(), &river.Job[sms.SendBatchArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 25}, Args: sms.SendBatchArgs{MessageIDs: ids}}); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT count(*) FROM sms_message WHERE id = ANY ($1) AND status = 'sent'`, ids); n != len(ids) {
		t.Errorf("%d of %d sent", n, len(ids))
	}
	if got := len(f.gw.Accepted()); got != len(ids) {
		t.Errorf("the gateway took %d messages, want each of the %d once", got, len(ids))
	}
}

// The same for a retry: its turn beyond the deadline snoozes the job.
func TestRetryBehindTheRateLimiterRunsAgain(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, ids := f.queuedMessages(1, 0)
	if _, err := f.pool.Exec(context.Background(), `UPDATE sms_message SET attempts = 1 WHERE id = $1`, ids[0]); err != nil {
		t.Fatal(err)
	}
	lim := sms.Limiter(1)
	for range 5 { // other workers' turns ahead of this one
		_ = lim.Reserve()
	}
	w := &sms.SendWorker{Sender: &sms.Sender{Pool: f.pool, Provider: f.provider, Limiter: lim, Log: discard, Metrics: f.metrics}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := w.Work(ctx, &river.Job[sms.SendArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 7}, Args: sms.SendArgs{MessageID: ids[0]}})
	if !isSnooze(err) {
		t.Errorf("retry job returned %v, want a snooze", err)
	}
}

// River discards a job whose process was killed during its last attempt
// without running any of its code. A send keeps a spare attempt for that
// (queue.WithSpare): the killed last try is rescued, tried again at once,
// and gives up as it would have, instead of leaving the message sending
// until the stuck sweep hours later.
func TestSendKilledOnItsLastTryStillGivesUp(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_, ids := f.queuedMessages(1, 0)
	busy := cdactest.Behaviour{Answer: "405,Internal Networking Error"}
	f.gw.Script("9816000000", busy, busy, busy)
	ctx := context.Background()
	// What a process killed in the send job's last try leaves: the message
	// claimed and counted (the batch's try and the job's), the job running
	// for longer than any live owner's.
	last := sms.SendAttempts - 1
	if _, err := f.pool.Exec(ctx, `UPDATE sms_message SET status = 'sending', attempts = $2 WHERE id = $1`, ids[0], sms.SendAttempts); err != nil {
		t.Fatal(err)
	}
	var job int64
	if err := f.pool.QueryRow(ctx, `INSERT INTO river_job (args, attempt, attempted_at, attempted_by, kind, max_attempts, priority, queue, state, scheduled_at)
		VALUES (jsonb_build_object('message_id', $1::text), $2, now() - make_interval(secs => $3), '{killed-client}', 'sms.send', $4, 1, $5, 'running', now() - make_interval(secs => $3))
		RETURNING id`, ids[0], last, (queue.RescueAfter + 2*time.Second).Seconds(), sms.SendArgs{}.InsertOpts().MaxAttempts, sms.Queue).Scan(&job); err != nil {
		t.Fatal(err)
	}
	f.newClient(true)
	var status, lastErr, state string
	f.jobs.Await(t, "the killed send's message to finish", func() bool {
		if err := f.pool.QueryRow(ctx, `SELECT m.status, coalesce(m.last_error, ''), j.state::text FROM sms_message m, river_job j
			WHERE m.id = $1 AND j.id = $2`, ids[0], job).Scan(&status, &lastErr, &state); err != nil {
			t.Fatal(err)
		}
		return status != "sending" && status != "queued"
	})
	if status != "failed" || !strings.Contains(lastErr, "gave up after") || !strings.Contains(lastErr, "405") || state != "completed" {
		t.Errorf("got message %s (%q), job %s; want failed with the gateway's reason after giving up, job completed", status, lastErr, state)
	}
}

// Messages waiting hours for their batch at a slow provider rate are not
// "stuck"; messages whose batch is gone are.
func TestStuckSweepSparesMessagesWhoseBatchIsQueued(t *testing.T) {
	t.Parallel()
	f := setup(t)
	q := f.newClient(false)
	waiting, ids := f.queuedMessages(5, 7*time.Hour)
	if _, err := q.Insert(context.Background(), sms.SendBatchArgs{RequestID: waiting, MessageIDs: ids}, nil); err != nil {
		t.Fatal(err)
	}
	lost, _ := f.queuedMessages(3, 7*time.Hour)
	pw := &sms.ProgressWorker{Pool: f.pool}
	for _, req := range []uuid.UUID{waiting, lost} {
		_ = pw.Work(context.Background(), &river.Job[sms.ProgressArgs]{JobRow: &rivertype.JobRow{}, Args: sms.ProgressArgs{RequestID: req}})
	}
	if n := f.count(`SELECT count(*) FROM sms_message WHERE request_id = $1 AND status = 'queued'`, waiting); n != 5 {
		t.Errorf("%d of 5 messages still waiting for their queued batch, want all", n)
	}
	if s := f.state(lost); s.Status != "FAILED" || s.Failed != 3 {
		t.Errorf("request whose batch is gone: %+v, want FAILED with 3 failed", s)
	}
}

// An expansion whose job is gone before it finished — discarded by River's
// rescuer when its process was killed in the last attempt — is queued
// again by the sweep and the request finishes; one with a job, or done, is
// left alone; one lost more times than it is queued again is given up.
func TestLostExpansionIsQueuedAgain(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.student("आरव", 6, "A", "+919816012345")
	id := f.request("MEETING", map[string]string{"meeting_date": "5 दिसंबर"}, nil)
	// What the rescuer leaves: the request PROCESSING and not expanded,
	// its expansion's job discarded.
	if _, err := f.pool.Exec(ctx, `UPDATE sms_request SET status = 'PROCESSING' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.pool.Exec(ctx, `INSERT INTO river_job (args, attempt, attempted_at, kind, max_attempts, priority, queue, state, finalized_at, scheduled_at)
		VALUES (jsonb_build_object('request_id', $1::text), 25, now() - interval '2 minutes', $2, 25, 1, 'default', 'discarded', now(), now() - interval '2 minutes')`,
		id, sms.ExpandArgs{}.Kind()); err != nil {
		t.Fatal(err)
	}
	// Another whose expansion was discarded once more than the sweep
	// queues again (it kills its process every time, say): not queued
	// again, but given up (TestHopelessExpansionIsGivenUp).
	hopeless := f.request("MEETING", map[string]string{"meeting_date": "6 दिसंबर"}, nil)
	if _, err := f.pool.Exec(ctx, `UPDATE sms_request SET status = 'PROCESSING' WHERE id = $1`, hopeless); err != nil {
		t.Fatal(err)
	}
	for range sms.MaxExpandRequeues + 1 {
		if _, err := f.pool.Exec(ctx, `INSERT INTO river_job (args, attempt, attempted_at, kind, max_attempts, priority, queue, state, finalized_at, scheduled_at)
			VALUES (jsonb_build_object('request_id', $1::text), 25, now() - interval '2 minutes', $2, 25, 1, 'default', 'discarded', now(), now() - interval '2 minutes')`,
			hopeless, sms.ExpandArgs{}.Kind()); err != nil {
			t.Fatal(err)
		}
	}
	q := f.newClient(false)
	if n, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 1 {
		t.Fatalf("sweep: %d queued, %v; want the lost expansion queued again, not the hopeless one", n, err)
	}
	if s := f.state(hopeless); s.Status != "FAILED" || !strings.Contains(s.Remarks, fmt.Sprintf("stopped %d times", sms.MaxExpandRequeues+1)) {
		t.Errorf("hopeless request %+v, want FAILED saying its expansion was stopped %d times", s, sms.MaxExpandRequeues+1)
	}
	if n, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 0 {
		t.Fatalf("second sweep: %d queued, %v; want none (its job is queued)", n, err)
	}
	f.newClient(true)
	if s := f.waitFor(id, "DONE", "FAILED"); s.Status != "DONE" || s.Sent != 1 {
		t.Fatalf("request %+v, want DONE with its one message sent", s)
	}
	if n, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 0 {
		t.Errorf("sweep after it finished: %d queued, %v; want none", n, err)
	}
}

// An expansion lost more times than the sweep queues it again used to
// leave its request PROCESSING with no final state (and queued again once
// River deleted the discarded jobs). The sweep gives it up as its last
// attempt would: what was queued is sent and the request finishes; with
// nothing queued it fails saying why.
func TestHopelessExpansionIsGivenUp(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	hopeless := func(vars map[string]string) uuid.UUID {
		id := f.request("MEETING", vars, nil)
		if _, err := f.pool.Exec(ctx, `UPDATE sms_request SET status = 'PROCESSING' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		for range sms.MaxExpandRequeues + 1 {
			if _, err := f.pool.Exec(ctx, `INSERT INTO river_job (args, attempt, attempted_at, kind, max_attempts, priority, queue, state, finalized_at, scheduled_at)
				VALUES (jsonb_build_object('request_id', $1::text), 25, now() - interval '2 minutes', $2, 25, 1, 'default', 'discarded', now(), now() - interval '2 minutes')`,
				id, sms.ExpandArgs{}.Kind()); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	nothing := hopeless(map[string]string{"meeting_date": "5 दिसंबर"})
	// Its first page went out before the kills.
	partial := hopeless(map[string]string{"meeting_date": "6 दिसंबर"})
	if _, err := f.pool.Exec(ctx, `INSERT INTO sms_message (request_id, phone, body, status, attempts, provider, provider_message_id, sent_at)
		VALUES ($1, '+919816012345', 'body', 'sent', 1, 'cdac', 'cdac-1', now())`, partial); err != nil {
		t.Fatal(err)
	}
	q := f.newClient(false)
	if n, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 1 {
		t.Fatalf("sweep: %d queued, %v; want the progress job of the request with a message queued", n, err)
	}
	want := fmt.Sprintf("recipients could not be resolved: the expansion was stopped %d times before it finished", sms.MaxExpandRequeues+1)
	if s := f.state(nothing); s.Status != "FAILED" || !strings.HasPrefix(s.Remarks, want) {
		t.Errorf("request with nothing queued: %+v, want FAILED with remarks %q", s, want)
	}
	f.newClient(true)
	if s := f.waitFor(partial, "DONE", "FAILED"); s.Status != "DONE" || s.Total != 1 || s.Sent != 1 || s.Remarks != "1 of 1 sent; "+sms.CutShortRemark {
		t.Errorf("request with a message queued: %+v, want DONE with what was queued sent, saying the list was cut short", s)
	}
	if n, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 0 {
		t.Errorf("sweep after both ended: %d queued, %v; want none", n, err)
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'sms.expand' AND state <> 'discarded'`); n != 0 {
		t.Errorf("%d expansions queued again, want none", n)
	}
}

// A request whose progress job is gone after its expansion finished —
// deleted by an operator in River UI, or discarded — stayed PROCESSING for
// ever: only that job finishes a request. The sweep queues it again (once,
// however many replicas sweep), leaves a request alone while its job is
// waiting, and the request finishes with its counts.
func TestLostProgressIsQueuedAgain(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	f.student("आरव", 6, "A", "+919816000001")
	f.student("प्रिया", 6, "A", "+919816000002")
	f.student("विवेक", 6, "A", "+919816000003")
	f.student("कविता", 6, "A", nil) // no phone: skipped
	f.gw.Script("9816000003", cdactest.Behaviour{Answer: "ERROR : 406 Invalid mobile number\r\n"})
	id := f.request("MEETING", map[string]string{"meeting_date": "5 दिसंबर"}, nil)
	q := f.newClient(false)
	// The request's progress job, snoozed far ahead: the expansion's own
	// insert is then a duplicate of it, so this is the job that would
	// finish the request.
	progress, err := q.Insert(ctx, sms.ProgressArgs{RequestID: id}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 1 {
		t.Fatalf("sweep of the new request: %d queued, %v; want its expansion", n, err)
	}
	f.newClient(true)
	f.jobs.Await(t, "the expansion and every send to finish", func() bool {
		return f.count(`SELECT count(*) FROM sms_request WHERE id = $1 AND expanded_at IS NOT NULL`, id) == 1 &&
			f.count(`SELECT count(*) FROM sms_message WHERE request_id = $1 AND status IN ('queued', 'sending')`, id) == 0 &&
			f.count(`SELECT count(*) FROM river_job WHERE kind IN ('sms.expand', 'sms.send_batch', 'sms.send')
				AND args ->> 'request_id' = $1::text AND finalized_at IS NULL`, id) == 0
	})
	if n, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 0 {
		t.Fatalf("sweep with the progress job waiting: %d queued, %v; want none", n, err)
	}
	// The operator deletes the progress job.
	if _, err := f.pool.Exec(ctx, `DELETE FROM river_job WHERE id = $1`, progress.Job.ID); err != nil {
		t.Fatal(err)
	}
	if s := f.state(id); s.Status != "PROCESSING" || s.Sent != 0 {
		t.Fatalf("before the sweep: %+v, want PROCESSING with nothing counted (nothing else finishes it)", s)
	}
	// Two replicas sweep at once: one progress job.
	var swept [2]int
	var errs [2]error
	var wg sync.WaitGroup
	for i := range swept {
		wg.Add(1)
		go func() {
			defer wg.Done()
			swept[i], errs[i] = sms.Reconcile(ctx, f.pool, q, 0)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || swept[0]+swept[1] != 1 {
		t.Fatalf("two sweeps at once: %v queued, errors %v; want one progress job in all", swept, errs)
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'sms.progress' AND args ->> 'request_id' = $1::text`, id); n != 1 {
		t.Errorf("%d progress jobs, want 1", n)
	}
	s := f.waitFor(id, "DONE", "FAILED")
	if want := (requestState{Status: "DONE", Remarks: "2 of 3 sent, 1 failed, 1 skipped", Total: 3, Sent: 2, Failed: 1, Skipped: 1, Messages: 3}); s != want {
		t.Errorf("request %+v, want %+v", s, want)
	}
	if n, err := sms.Reconcile(ctx, f.pool, q, 0); err != nil || n != 0 {
		t.Errorf("sweep after it finished: %d queued, %v; want none", n, err)
	}
}

// 150 students share one phone (a teacher's number entered for those
// without one): their message names three and counts the rest, and the
// request finishes for everyone.
func TestSharedPhoneListsAFewNamesAndTheRequestFinishes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	for i := range 150 {
		f.student(fmt.Sprintf("विद्यार्थी नाम %03d", i), 6, "A", "+919816012345")
	}
	f.student("अन्य", 6, "A", "+919816099999")
	id := f.request("MEETING", map[string]string{"meeting_date": "5 दिसंबर"}, nil)
	f.newClient(true)
	if _, err := sms.Reconcile(context.Background(), f.pool, f.newClient(false), 0); err != nil {
		t.Fatal(err)
	}
	f.waitFor(id, "DONE")
	if s := f.state(id); s.Sent != 2 {
		t.Errorf("%+v, want both phones sent", s)
	}
	var body string
	_ = f.pool.QueryRow(context.Background(), `SELECT body FROM sms_message WHERE request_id = $1 AND phone = '+919816012345'`, id).Scan(&body)
	// Three names (which three depends on the students' random ids) and the count of the rest.
	if !strings.Contains(body, "और 147 अन्य") || strings.Count(body, "विद्यार्थी नाम") != 3 {
		t.Errorf("shared phone's message: %q", body)
	}
}

// A variable long enough to push a message past 2,000 characters skips that
// recipient with the reason; nothing strands the request.
func TestOverlongMessageIsSkippedWithTheReason(t *testing.T) {
	t.Parallel()
	f := setup(t)
	f.student("एक", 6, "A", "+919816012345")
	id := f.request("MEETING", map[string]string{"meeting_date": strings.Repeat("५", 1990)}, nil)
	f.newClient(true)
	if _, err := sms.Reconcile(context.Background(), f.pool, f.newClient(false), 0); err != nil {
		t.Fatal(err)
	}
	f.waitFor(id, "FAILED")
	if s := f.state(id); !strings.Contains(s.Remarks, "more than 2000") {
		t.Errorf("remarks %q, want the length named", s.Remarks)
	}
}

// A Twilio callback can beat shala's own record of the send: it waits, and
// is applied when the send is recorded.
type racingTwilio struct {
	sms.Provider
	f *fixture
}

func (r racingTwilio) ReportsByCallback() {}

func (r racingTwilio) Send(ctx context.Context, m sms.Message) (string, error) {
	sid, err := r.Provider.Send(ctx, m)
	if err != nil {
		return sid, err
	}
	if code, err := r.f.twilio.Callback(sid, "undelivered", "30003", ""); err != nil || code != 204 {
		r.f.t.Errorf("early callback: %d %v", code, err)
	}
	return sid, nil
}

func TestTwilioCallbackBeforeTheSendIsRecorded(t *testing.T) {
	t.Parallel()
	f := setup(t, withTwilio())
	_, ids := f.queuedMessages(1, 0)
	w := &sms.SendBatchWorker{Sender: &sms.Sender{Pool: f.pool, Provider: racingTwilio{f.provider, f}, Limiter: sms.Limiter(0), Log: discard, Metrics: f.metrics}}
	if err := w.Work(context.Background(), &river.Job[sms.SendBatchArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 25}, Args: sms.SendBatchArgs{MessageIDs: ids}}); err != nil {
		t.Fatal(err)
	}
	var status, lastErr string
	_ = f.pool.QueryRow(context.Background(), `SELECT status, coalesce(last_error, '') FROM sms_message WHERE id = $1`, ids[0]).Scan(&status, &lastErr)
	if status != "failed" || lastErr != "twilio undelivered 30003" {
		t.Errorf("message %s (%q), want failed with the early report's reason", status, lastErr)
	}
	if n := f.count(`SELECT count(*) FROM sms_report_early`); n != 0 {
		t.Errorf("%d early reports left over", n)
	}
}
