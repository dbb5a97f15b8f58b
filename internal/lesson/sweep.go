package lesson

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/queue"
)

// EndMeetingArgs asks for the BBB meeting of an ended lesson to be ended on
// its server. Retried with backoff until the server answers; a meeting
// already gone counts as ended.
type EndMeetingArgs struct {
	LessonID uuid.UUID `json:"lesson_id" river:"unique"`
}

// Kind is the River job kind.
func (EndMeetingArgs) Kind() string { return "lesson.end_meeting" }

// InsertOpts: one per lesson; 10 attempts (about 3 hours of backoff).
func (EndMeetingArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 10, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// EndMeetingWorker works EndMeetingArgs.
type EndMeetingWorker struct {
	river.WorkerDefaults[EndMeetingArgs]
	Pool *pgxpool.Pool
	BBB  *bbb.Client
}

// Timeout is one BBB call (SHALA_BBB_TIMEOUT) with room to spare, within
// the rescue rule (queue.MaxTimeout).
func (w *EndMeetingWorker) Timeout(*river.Job[EndMeetingArgs]) time.Duration { return queue.MaxTimeout }

// Work ends the meeting.
func (w *EndMeetingWorker) Work(ctx context.Context, job *river.Job[EndMeetingArgs]) error {
	var meetingID, url, alg, secret string
	err := w.Pool.QueryRow(ctx, `SELECT l.meeting_id, s.api_url, s.checksum_algorithm, sec.secret
		FROM lesson l JOIN bbb_server s ON s.id = l.server_id JOIN bbb_server_secret sec ON sec.server_id = s.id
		WHERE l.id = $1`, job.Args.LessonID).Scan(&meetingID, &url, &alg, &secret)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("lesson %s or its server is gone", job.Args.LessonID))
	}
	if err != nil {
		return err
	}
	err = w.BBB.End(ctx, bbb.Server{URL: url, Secret: secret, Algorithm: bbb.Algorithm(alg)}, meetingID)
	if bbb.IsNotFound(err) {
		return nil
	}
	return err
}

// SweepArgs asks for the lesson sweep (every minute, on the leader).
type SweepArgs struct{ queue.PerMinute }

// Kind is the River job kind.
func (SweepArgs) Kind() string { return "lesson.sweep" }

// SweepAfter is how old a live lesson must be before the sweep looks at it:
// younger ones may still be starting, or waiting for their first user.
const SweepAfter = 2 * time.Minute

// MaxLessonAge ends lessons that ran this long, whatever their server says.
const MaxLessonAge = 12 * time.Hour

// SweepWorker works SweepArgs.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	Pool   *pgxpool.Pool
	BBB    *bbb.Client
	Log    *slog.Logger
	Policy Policy
}

// Timeout bounds a sweep: a batch of lessons (500 by default), 8 BBB calls
// at a time; a lesson whose check could not start while settleTime was left
// waits for the next sweep (a minute later), first in line, so a run stays
// within the rescue rule (queue.MaxTimeout) however many servers are slow.
func (w *SweepWorker) Timeout(*river.Job[SweepArgs]) time.Duration { return queue.MaxTimeout }

// settleTime is what one lesson's check may take: a BBB call (5 s by
// default) and a transaction.
const settleTime = 8 * time.Second

// Work runs one sweep.
func (w *SweepWorker) Work(ctx context.Context, _ *river.Job[SweepArgs]) error {
	_, err := NewRooms(w.Pool, river.ClientFromContext[pgx.Tx](ctx), w.BBB, w.Log, w.Policy).Sweep(ctx)
	return err
}

// SweepResult counts what a sweep did.
type SweepResult struct {
	Checked, Ended, Settled, Unreachable, Rebooked int
}

// Sweep settles live lessons older than SweepAfter with their servers (a
// batch of the least recently checked ones, Policy.SweepBatch): a
// lesson whose meeting is gone is ended and its seats released; a lesson
// left "starting" by a start that never finished becomes running if its
// meeting exists; lessons older than MaxLessonAge are ended. It then
// corrects any server whose booked seats differ from its live lessons'.
func (r *Rooms) Sweep(ctx context.Context) (SweepResult, error) {
	type row struct {
		id          uuid.UUID
		status, mid string
		old         bool
		server      *bbb.Server
	}
	rows, err := r.pool.Query(ctx, `SELECT l.id, l.status, l.meeting_id, l.started_at < now() - make_interval(secs => $2),
			s.api_url, s.checksum_algorithm, sec.secret
		FROM lesson l LEFT JOIN bbb_server s ON s.id = l.server_id LEFT JOIN bbb_server_secret sec ON sec.server_id = s.id
		WHERE l.ended_at IS NULL AND l.started_at < now() - make_interval(secs => $1)
		ORDER BY l.checked_at NULLS FIRST, l.started_at LIMIT $3`, SweepAfter.Seconds(), MaxLessonAge.Seconds(), r.sweepBatch())
	if err != nil {
		return SweepResult{}, err
	}
	var todo []row
	for rows.Next() {
		var x row
		var url, alg, secret *string
		if err := rows.Scan(&x.id, &x.status, &x.mid, &x.old, &url, &alg, &secret); err != nil {
			rows.Close()
			return SweepResult{}, err
		}
		if url != nil && secret != nil {
			x.server = &bbb.Server{URL: *url, Secret: *secret, Algorithm: bbb.Algorithm(deref(alg))}
		}
		todo = append(todo, x)
	}
	if err := rows.Err(); err != nil {
		return SweepResult{}, err
	}
	// Checks start in that order, 8 at a time, while settleTime is left.
	// Each lesson is marked checked as its check starts: one this run did
	// not reach keeps its place at the front for the next run, and one whose
	// check fails or hangs still goes to the back.
	var mu sync.Mutex
	var res SweepResult
	var errs []error
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	deadline, hasDeadline := ctx.Deadline()
	for _, x := range todo {
		sem <- struct{}{}
		if ctx.Err() != nil || hasDeadline && time.Until(deadline) < settleTime {
			<-sem
			break // the next sweep checks the rest first
		}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := r.pool.Exec(ctx, `UPDATE lesson SET checked_at = now() WHERE id = $1`, x.id)
			outcome := ""
			if err == nil {
				outcome, err = r.settle(ctx, x.id, x.status, x.mid, x.old, x.server)
			}
			mu.Lock()
			defer mu.Unlock()
			res.Checked++
			switch outcome {
			case "ended":
				res.Ended++
			case "settled":
				res.Settled++
			case "unreachable":
				res.Unreachable++
			}
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}
	res.Rebooked, err = r.rebook(ctx)
	if res.Ended+res.Settled+res.Rebooked > 0 {
		r.log.InfoContext(ctx, "lesson sweep", "checked", res.Checked, "ended", res.Ended, "settled", res.Settled,
			"unreachable", res.Unreachable, "rebooked", res.Rebooked)
	}
	return res, err
}

// DefaultSweepBatch is how many live lessons a sweep checks when the
// policy does not say.
const DefaultSweepBatch = 500

func (r *Rooms) sweepBatch() int {
	if r.policy.SweepBatch > 0 {
		return r.policy.SweepBatch
	}
	return DefaultSweepBatch
}

// settle checks one live lesson against its server.
func (r *Rooms) settle(ctx context.Context, id uuid.UUID, status, meetingID string, old bool, srv *bbb.Server) (string, error) {
	end := func(status, reason string, endMeeting bool) (string, error) {
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			ended, err := endLesson(ctx, tx, id, status, reason)
			if err != nil || !ended || !endMeeting {
				return err
			}
			_, err = r.queue.InsertTx(ctx, tx, EndMeetingArgs{LessonID: id}, nil)
			return err
		})
		return "ended", err
	}
	if srv == nil {
		return end("failed", "lesson has no server", false)
	}
	if old {
		return end("ended", fmt.Sprintf("ran longer than %s", MaxLessonAge), true)
	}
	info, err := r.client.GetMeetingInfo(ctx, *srv, meetingID)
	switch {
	case meetingGone(info, err):
		if status == "starting" {
			return end("failed", "the start never finished and the meeting does not exist", false)
		}
		return end("ended", "the meeting is gone from its server", false)
	case err != nil:
		return "unreachable", nil // try again next sweep
	case status == "starting":
		_, err := r.pool.Exec(ctx, `UPDATE lesson SET status = 'running', create_time = $2 WHERE id = $1 AND status = 'starting'`, id, info.CreateTime)
		return "settled", err
	}
	return "", nil
}

// rebook sets every server's booked seats to the sum over its live lessons
// (under the allocation lock), returning how many servers were off.
func (r *Rooms) rebook(ctx context.Context) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, allocationLock); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE bbb_server s SET booked = x.seats
			FROM (SELECT s2.id, coalesce((SELECT sum(l.booked) FROM lesson l WHERE l.server_id = s2.id AND l.ended_at IS NULL), 0) AS seats
			      FROM bbb_server s2) x
			WHERE s.id = x.id AND s.booked <> x.seats`)
		n = int(tag.RowsAffected())
		return err
	})
	if n > 0 {
		r.log.WarnContext(ctx, "bbb server bookings corrected", "servers", n)
	}
	return n, err
}
