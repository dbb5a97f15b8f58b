package sms_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertest"
	"github.com/riverqueue/river/rivertype"

	"github.com/shala-edu/shala/internal/sms"
	"github.com/shala-edu/shala/internal/sms/cdac/cdactest"
)

// The attempt counter does not lie: every provider call is counted before
// it is made, and a call whose outcome shala never learned is counted as
// unconfirmed, so a message that may have reached the phone twice says so.
func TestAttemptsCountEveryCallAndUnconfirmedOnesAreMarked(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := rivertest.WorkContext(context.Background(), f.newClient(false)) // retries are inserted through the job's client
	worker := &sms.SendBatchWorker{Sender: &sms.Sender{Pool: f.pool, Provider: f.provider, Limiter: sms.Limiter(0), Log: discard, Metrics: f.metrics}}
	run := func(ids ...uuid.UUID) error {
		return worker.Work(ctx, &river.Job[sms.SendBatchArgs]{JobRow: &rivertype.JobRow{Attempt: 2, MaxAttempts: 25}, Args: sms.SendBatchArgs{MessageIDs: ids}})
	}
	type row struct {
		Status                string
		Attempts, Unconfirmed int
	}
	get := func(id uuid.UUID) row {
		var r row
		if err := f.pool.QueryRow(ctx, `SELECT status, attempts, unconfirmed_attempts FROM sms_message WHERE id = $1`, id).
			Scan(&r.Status, &r.Attempts, &r.Unconfirmed); err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("a process died between the call and its record", func(t *testing.T) {
		_, ids := f.queuedMessages(1, 0)
		// What a killed owner leaves: the message claimed, the gateway
		// holding it, no outcome recorded.
		if _, err := f.pool.Exec(ctx, `UPDATE sms_message SET status = 'sending', attempts = 1 WHERE id = $1`, ids[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := f.provider.Send(ctx, sms.Message{To: "+919816000000", Body: "body", DLTTemplateID: "1107161234567890123"}); err != nil {
			t.Fatal(err)
		}
		// The batch runs again (rescued, or on another replica).
		if err := run(ids[0]); err != nil {
			t.Fatal(err)
		}
		got := get(ids[0])
		if got != (row{"sent", 2, 1}) {
			t.Errorf("got %+v, want sent after 2 attempts, 1 of them unconfirmed", got)
		}
		if n := f.gw.Accepted()["9816000000"]; n != 2 || n > got.Unconfirmed+1 {
			t.Errorf("the gateway took %d; the row allows at most %d", n, got.Unconfirmed+1)
		}
	})

	t.Run("the batch's process died twice", func(t *testing.T) {
		_, ids := f.queuedMessages(1, 0)
		if _, err := f.pool.Exec(ctx, `UPDATE sms_message SET phone = '+919816000003' WHERE id = $1`, ids[0]); err != nil {
			t.Fatal(err)
		}
		// A crash loop: the batch claimed the message, its process was
		// killed; the rescued batch claimed it again and was killed too.
		// Both calls may have reached the gateway; no outcome is recorded.
		if _, err := f.pool.Exec(ctx, `UPDATE sms_message SET status = 'sending', attempts = 2, unconfirmed_attempts = 1 WHERE id = $1`, ids[0]); err != nil {
			t.Fatal(err)
		}
		// The batch runs a third time: the message is still its own (it
		// never got a retry job), so it is sent, not left for the stuck
		// sweep to fail hours later.
		if err := run(ids[0]); err != nil {
			t.Fatal(err)
		}
		if got := get(ids[0]); got != (row{"sent", 3, 2}) {
			t.Errorf("got %+v, want sent after 3 attempts, 2 of them unconfirmed", got)
		}
	})

	t.Run("a message in its retries is not the batch's", func(t *testing.T) {
		_, ids := f.queuedMessages(1, 0)
		if _, err := f.pool.Exec(ctx, `UPDATE sms_message SET phone = '+919816000004' WHERE id = $1`, ids[0]); err != nil {
			t.Fatal(err)
		}
		// Its first attempt failed transiently (recorded, a retry job
		// queued) and the retry job has claimed it: a re-run of the batch
		// leaves it to that job.
		if _, err := f.pool.Exec(ctx, `UPDATE sms_message SET status = 'sending', attempts = 2, last_error = 'gateway 503' WHERE id = $1`, ids[0]); err != nil {
			t.Fatal(err)
		}
		if err := run(ids[0]); err != nil {
			t.Fatal(err)
		}
		if got := get(ids[0]); got != (row{"sending", 2, 0}) {
			t.Errorf("got %+v, want untouched (sending, 2 attempts): its retry job owns it", got)
		}
		if n := f.gw.Accepted()["9816000004"]; n != 0 {
			t.Errorf("the batch sent it %d times, want 0", n)
		}
	})

	t.Run("the gateway never answered", func(t *testing.T) {
		_, ids := f.queuedMessages(1, 0)
		if _, err := f.pool.Exec(ctx, `UPDATE sms_message SET phone = '+919816000001' WHERE id = $1`, ids[0]); err != nil {
			t.Fatal(err)
		}
		f.gw.Script("9816000001", cdactest.Behaviour{Delay: time.Second}) // beyond the client's timeout
		if err := run(ids[0]); err != nil {
			t.Fatal(err)
		}
		if got := get(ids[0]); got != (row{"queued", 1, 1}) {
			t.Errorf("after a timeout: %+v, want queued for its retry, 1 attempt, unconfirmed", got)
		}
	})

	t.Run("a refusal is not unconfirmed", func(t *testing.T) {
		_, ids := f.queuedMessages(1, 0)
		if _, err := f.pool.Exec(ctx, `UPDATE sms_message SET phone = '+919816000002' WHERE id = $1`, ids[0]); err != nil {
			t.Fatal(err)
		}
		f.gw.Script("9816000002", cdactest.Behaviour{Answer: "ERROR : 406 Invalid mobile number"})
		if err := run(ids[0]); err != nil {
			t.Fatal(err)
		}
		if got := get(ids[0]); got != (row{"failed", 1, 0}) {
			t.Errorf("after a refusal: %+v, want failed, 1 attempt, none unconfirmed", got)
		}
	})
}
