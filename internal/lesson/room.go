package lesson

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
)

// Policy is how servers are chosen and joins counted.
type Policy struct {
	// HeartbeatMaxAge: a server whose last heartbeat is older is not chosen.
	HeartbeatMaxAge time.Duration
	// MaxLoadPerCPU: a server whose 5-minute load per CPU is at or above it
	// is not chosen.
	MaxLoadPerCPU float64
	// MaxServers is how many servers one start tries (the first and, when
	// it fails, the next ones).
	MaxServers int
	// SessionsPerToken bounds a student's live sessions.
	SessionsPerToken int
	// JoinGrace is how long a handed-out join link counts as a live session
	// before its browser shows up in getMeetingInfo.
	JoinGrace time.Duration
	// SweepBatch is how many live lessons one sweep checks (0: 500).
	SweepBatch int
}

// DefaultPolicy is the issue's: heartbeat within 60 s, load per CPU < 0.8,
// the first server and at most 2 more, 2 sessions per token.
func DefaultPolicy() Policy {
	return Policy{HeartbeatMaxAge: time.Minute, MaxLoadPerCPU: 0.8, MaxServers: 3, SessionsPerToken: 2, JoinGrace: time.Minute}
}

// Rooms starts and ends lessons on the server pool and lets students in.
type Rooms struct {
	pool   *pgxpool.Pool
	queue  queue.Inserter
	client *bbb.Client
	log    *slog.Logger
	policy Policy
	// contended, if set, is called when a start waits for another start
	// of the same group (tests synchronise on it).
	contended func()
}

// NewRooms returns the lesson service.
func NewRooms(pool *pgxpool.Pool, q queue.Inserter, client *bbb.Client, log *slog.Logger, p Policy) *Rooms {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Rooms{pool: pool, queue: q, client: client, log: log, policy: p}
}

// Lock keys. The allocation lock serialises choosing-and-booking across
// every shala process (one bigint key); group locks (two int keys, another
// key space) serialise the starts of one group.
const (
	allocationLock int64 = 0x5348414c414c4c4f // "SHALALLO"
	groupLockSpace int32 = 0x4c53             // "LS"
)

// Started is the answer to a start.
type Started struct {
	LessonID uuid.UUID
	// JoinURL enters the moderator into the meeting. A capability: never log
	// it.
	JoinURL string
	// Reused is true when the group's running meeting was reused.
	Reused bool
}

// live is a group's live lesson with what calling its server takes.
type live struct {
	ID                      uuid.UUID
	Status                  string
	MeetingID               string
	CreateTime              int64
	ServerID                *uuid.UUID
	Enabled                 bool
	Server                  bbb.Server
	AttendeePW, ModeratorPW string
	GroupName               string
}

// Start starts a lesson for group groupID and returns the moderator's join
// URL, reusing the group's running meeting if it has one.
//
// A start is a handful of round trips: the reads and the group lock in one
// batch, the placement in another, the BBB create, and the durable update
// that marks the lesson running together with the unlock.
func (r *Rooms) Start(ctx context.Context, c Caller, groupID uuid.UUID) (Started, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return Started{}, postgres.Translate(err, "database")
	}
	defer conn.Release()

	// Starts of one group run one at a time, across processes (a session
	// advisory lock): the second of two concurrent starts finds the first
	// one's meeting and reuses it.
	key := groupID.String()
	b := &pgx.Batch{}
	b.Queue(`SELECT id, display_name FROM moderator WHERE user_id = $1`, c.UserID)
	b.Queue(`SELECT pg_try_advisory_lock($1, hashtext($2))`, groupLockSpace, key)
	b.Queue(`SELECT g.id, g.name, g.region, (SELECT count(*) FROM group_student st WHERE st.group_id = g.id)
		FROM lesson_group g WHERE g.id = $1
		  AND EXISTS (SELECT 1 FROM group_moderator gm JOIN moderator m ON m.id = gm.moderator_id
			WHERE gm.group_id = g.id AND m.user_id = $2)`, groupID, c.UserID)
	b.Queue(liveSQL, groupID)
	br := conn.SendBatch(ctx, b)
	mod := Moderator{UserID: c.UserID}
	modErr := br.QueryRow().Scan(&mod.ID, &mod.DisplayName)
	var locked bool
	lockErr := br.QueryRow().Scan(&locked)
	var g Group
	var roster int
	groupErr := br.QueryRow().Scan(&g.ID, &g.Name, &g.Region, &roster)
	lv, liveErr := scanLive(br.QueryRow())
	closeErr := br.Close()
	if locked {
		defer r.unlock(ctx, conn, key, &locked)
	}
	switch {
	case lockErr != nil || closeErr != nil:
		return Started{}, postgres.Translate(errors.Join(lockErr, closeErr), "group lock")
	case errors.Is(modErr, pgx.ErrNoRows):
		return Started{}, fault.New(fault.Forbidden, CodeNotModerator, "you have no moderator profile; an admin must add you as a moderator")
	case modErr != nil:
		return Started{}, postgres.Translate(modErr, "moderator")
	case groupErr != nil:
		return Started{}, postgres.Translate(groupErr, "group "+key)
	}
	if !locked {
		if r.contended != nil {
			r.contended()
		}
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, groupLockSpace, key); err != nil {
			return Started{}, postgres.Translate(err, "group lock")
		}
		locked = true
		defer r.unlock(ctx, conn, key, &locked)
		// The start we waited for may have made the lesson.
		lv, liveErr = scanLive(conn.QueryRow(ctx, liveSQL, groupID))
	}
	if liveErr != nil {
		return Started{}, postgres.Translate(liveErr, "lesson")
	}
	if lv != nil {
		s, ok, err := r.reuse(ctx, conn, lv, mod, key, &locked)
		if err != nil || ok {
			return s, err
		}
	}
	return r.startNew(ctx, conn, g, mod, roster, key, &locked)
}

// unlock releases the group lock unless the success path already did.
func (r *Rooms) unlock(ctx context.Context, conn *pgxpool.Conn, key string, locked *bool) {
	if !*locked {
		return
	}
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, groupLockSpace, key); err != nil {
		// A session lock dies with its connection: close it rather than
		// return it to the pool still holding the lock.
		r.log.WarnContext(ctx, "group unlock failed; closing the connection", "err", err)
		if err := conn.Conn().Close(uctx); err != nil {
			r.log.WarnContext(ctx, "close connection", "err", err)
		}
	}
	*locked = false
}

// markRunning records the meeting's session and releases the group lock in
// one durable round trip.
func (r *Rooms) markRunning(ctx context.Context, conn *pgxpool.Conn, lessonID uuid.UUID, createTime int64, key string, locked *bool) error {
	b := &pgx.Batch{}
	b.Queue(`UPDATE lesson SET status = 'running', create_time = $2 WHERE id = $1 AND ended_at IS NULL`, lessonID, createTime)
	b.Queue(`SELECT pg_advisory_unlock($1, hashtext($2))`, groupLockSpace, key)
	br := conn.SendBatch(ctx, b)
	tag, err := br.Exec()
	_, uerr := br.Exec()
	if err := errors.Join(err, uerr, br.Close()); err != nil {
		return postgres.Translate(err, "lesson")
	}
	*locked = false
	if tag.RowsAffected() == 0 {
		return fault.New(fault.Conflict, "", "the lesson was ended while it was starting")
	}
	return nil
}

const liveSQL = `SELECT l.id, l.status, l.meeting_id, coalesce(l.create_time, 0), l.server_id, s.enabled,
		s.api_url, s.checksum_algorithm, sec.secret, ls.attendee_pw, ls.moderator_pw, g.name
	FROM lesson l JOIN lesson_group g ON g.id = l.group_id
	LEFT JOIN bbb_server s ON s.id = l.server_id
	LEFT JOIN bbb_server_secret sec ON sec.server_id = l.server_id
	LEFT JOIN lesson_secret ls ON ls.lesson_id = l.id
	WHERE l.group_id = $1 AND l.ended_at IS NULL`

// scanLive reads liveSQL's row: nil when the group has no live lesson.
func scanLive(row pgx.Row) (*live, error) {
	var lv live
	var url, alg, secret, apw, mpw *string
	var enabled *bool
	err := row.Scan(&lv.ID, &lv.Status, &lv.MeetingID, &lv.CreateTime, &lv.ServerID, &enabled, &url, &alg, &secret, &apw, &mpw, &lv.GroupName)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lv.Enabled = enabled != nil && *enabled
	lv.Server = bbb.Server{URL: deref(url), Secret: deref(secret), Algorithm: bbb.Algorithm(deref(alg))}
	lv.AttendeePW, lv.ModeratorPW = deref(apw), deref(mpw)
	return &lv, nil
}

func meetingParams(id uuid.UUID, groupName, apw, mpw string) bbb.CreateParams {
	name := groupName
	if len([]rune(name)) < 2 {
		name = "Group " + name // BBB wants 2–256 characters
	}
	return bbb.CreateParams{MeetingID: id.String(), Name: name, AttendeePW: apw, ModeratorPW: mpw,
		Meta: []bbb.Param{{Key: "bbb-origin", Value: "shala"}}}
}

func moderatorJoin(s bbb.Server, meetingID string, createTime int64, mpw string, mod Moderator) string {
	return s.JoinURL(bbb.JoinParams{MeetingID: meetingID, FullName: mod.DisplayName, Role: bbb.Moderator,
		Password: mpw, UserID: "mod-" + mod.ID.String(), CreateTime: createTime})
}

// reuse brings the group's live lesson back if its meeting runs, or can be
// re-created on its (still enabled) server under the same meeting ID. When
// it cannot, the lesson is ended and its seats released, and ok is false.
//
// A meeting ended in BBB is not made again under its ID: BBB keeps an ended
// meeting in memory a while and finds meetings by their ID's hash prefix,
// so it could answer a join or getMeetingInfo for either. A new lesson (a
// new meeting ID) starts instead.
func (r *Rooms) reuse(ctx context.Context, conn *pgxpool.Conn, lv *live, mod Moderator, key string, locked *bool) (Started, bool, error) {
	var err error
	running := false
	if lv.ServerID != nil {
		running, err = r.client.IsMeetingRunning(ctx, lv.Server, lv.MeetingID)
		if err == nil && !running && lv.Enabled {
			// Created but nobody in it yet, ended in BBB, or gone.
			var info bbb.MeetingInfo
			if info, err = r.client.GetMeetingInfo(ctx, lv.Server, lv.MeetingID); bbb.IsNotFound(err) {
				err = nil // gone from BBB's memory: its ID is free again
			}
			if err == nil && !info.ForciblyEnded {
				// create is idempotent: it finds the meeting or makes it again.
				var m bbb.Meeting
				if m, err = r.client.Create(ctx, lv.Server, meetingParams(lv.ID, lv.GroupName, lv.AttendeePW, lv.ModeratorPW)); err == nil {
					lv.CreateTime, running = m.CreateTime, true
				}
			}
		}
		if ctx.Err() != nil {
			return Started{}, false, ctx.Err()
		}
	}
	if err == nil && running {
		if err := r.markRunning(ctx, conn, lv.ID, lv.CreateTime, key, locked); err != nil {
			return Started{}, false, err
		}
		return Started{LessonID: lv.ID, JoinURL: moderatorJoin(lv.Server, lv.MeetingID, lv.CreateTime, lv.ModeratorPW, mod), Reused: true}, true, nil
	}
	cause := err
	reason := "meeting no longer running"
	if cause != nil {
		reason = "meeting could not be reused: " + cause.Error()
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if lv.ServerID != nil {
			if err := r.disableFailed(ctx, tx, *lv.ServerID, cause); err != nil {
				return err
			}
		}
		ended, err := endLesson(ctx, tx, lv.ID, "ended", reason)
		if err != nil || !ended || lv.ServerID == nil {
			return err
		}
		// The old meeting is ended on its server once it answers: a server
		// that missed one call may still hold students, who then come back
		// through their links to the new lesson instead of waiting for a
		// teacher who is elsewhere.
		_, err = r.queue.InsertTx(ctx, tx, EndMeetingArgs{LessonID: lv.ID}, nil)
		return err
	})
	if err != nil {
		return Started{}, false, postgres.Translate(err, "lesson")
	}
	r.log.InfoContext(ctx, "live lesson not reusable; starting anew", "lesson_id", lv.ID, "reason", reason)
	return Started{}, false, nil
}

// placement is a lesson being placed on the pool.
type placement struct {
	ID, GroupID, ModeratorID uuid.UUID
	Region                   string
	Seats, Roster            int
	AttendeePW, ModeratorPW  string
	placed                   bool // the lesson row exists
}

// chosen is the server a placement got.
type chosen struct {
	ID     uuid.UUID
	Server bbb.Server
}

func (r *Rooms) startNew(ctx context.Context, conn *pgxpool.Conn, g Group, mod Moderator, roster int, key string, locked *bool) (Started, error) {
	p := &placement{ID: uuid.New(), GroupID: g.ID, ModeratorID: mod.ID, Region: g.Region, Roster: roster,
		Seats: max(roster, 1), AttendeePW: password(), ModeratorPW: password()}
	tried := []uuid.UUID{}
	var failed error
	for range r.policy.MaxServers {
		srv, ok, err := r.place(ctx, conn, p, tried, failed)
		if err != nil {
			return Started{}, err
		}
		if !ok {
			return Started{}, noServer(len(tried), failed)
		}
		tried = append(tried, srv.ID)
		m, err := r.client.Create(ctx, srv.Server, meetingParams(p.ID, g.Name, p.AttendeePW, p.ModeratorPW))
		if err == nil {
			if err := r.markRunning(ctx, conn, p.ID, m.CreateTime, key, locked); err != nil {
				return Started{}, err
			}
			return Started{LessonID: p.ID, JoinURL: moderatorJoin(srv.Server, p.ID.String(), m.CreateTime, p.ModeratorPW, mod)}, nil
		}
		if ctx.Err() != nil {
			// The caller gave up: the lesson stays "starting" and the sweep
			// settles it (running if the meeting exists, failed otherwise).
			return Started{}, ctx.Err()
		}
		r.log.WarnContext(ctx, "create failed; trying another server", "lesson_id", p.ID, "server_id", srv.ID, "err", err)
		failed = fmt.Errorf("server %s: %w", srv.ID, err)
	}
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := r.disableFailed(ctx, tx, tried[len(tried)-1], failed); err != nil {
			return err
		}
		_, err := endLesson(ctx, tx, p.ID, "failed", truncate("no server could create the meeting: "+failed.Error(), 500))
		return err
	})
	if err != nil {
		return Started{}, postgres.Translate(err, "lesson")
	}
	return Started{}, noServer(len(tried), failed)
}

func noServer(tried int, last error) error {
	msg := "no BigBlueButton server can take this lesson now; try again in a minute"
	if tried > 0 {
		msg = fmt.Sprintf("%d BigBlueButton servers failed to create the meeting; try again in a minute", tried)
	}
	return &fault.Error{Kind: fault.Unprocessable, Code: CodeNoServer, Message: msg, Err: last}
}

// unusable reports whether a failed call means the server cannot be used:
// unreachable, or it refuses shala's checksum.
func unusable(err error) bool {
	return errors.Is(err, bbb.ErrUnreachable) || bbb.IsChecksumError(err)
}

// disableFailed takes a server out of the pool when err says it is
// unusable.
func (r *Rooms) disableFailed(ctx context.Context, tx pgx.Tx, id uuid.UUID, err error) error {
	if !unusable(err) {
		return nil
	}
	r.log.WarnContext(ctx, "bbb server disabled", "server_id", id, "err", err)
	_, xerr := tx.Exec(ctx, markUnreachableSQL, id, truncate("create failed: "+err.Error(), 500))
	return xerr
}

func password() string { return rand.Text()[:16] }

// place chooses a server for p and books p's seats on it, in one
// transaction under the allocation lock: every allocation sees every
// earlier booking, so a burst spreads by capacity. On a retry it first
// releases the seats on the server that failed (disabling it when failed
// says it is unusable). ok is false when no server qualifies; a lesson
// already placed is then failed and released.
//
// The transaction is one batch (one round trip, an implicit transaction):
// the lock is held for the statements' execution only. Each statement of
// the batch takes a fresh snapshot (read committed), so the choice sees
// every booking committed before the lock was granted. Its commit does not
// wait for a disk flush (synchronous_commit off): still atomic and ordered,
// and the durable commit that marks the lesson running flushes it. A crash
// in between loses this placement whole — lesson row and seats together —
// before anyone was handed a join URL.
func (r *Rooms) place(ctx context.Context, conn *pgxpool.Conn, p *placement, tried []uuid.UUID, failed error) (chosen, bool, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'off', true)`)
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, allocationLock)
	if p.placed {
		if unusable(failed) {
			b.Queue(markUnreachableSQL, tried[len(tried)-1], truncate("create failed: "+failed.Error(), 500))
		}
		b.Queue(releaseSQL, p.ID)
	}
	args := []any{p.GroupID, r.policy.HeartbeatMaxAge.Seconds(), r.policy.MaxLoadPerCPU, p.Seats, tried, p.Region, p.ID}
	if p.placed {
		b.Queue(chooseSQL+moveSQL, args...)
	} else {
		b.Queue(chooseSQL+insertSQL, append(args, p.ID.String(), p.ModeratorID, p.Roster, p.AttendeePW, p.ModeratorPW)...)
	}
	br := conn.SendBatch(ctx, b)
	var errs []error
	for range b.Len() - 1 {
		_, err := br.Exec()
		errs = append(errs, err)
	}
	var c chosen
	var url, alg, secret string
	err := br.QueryRow().Scan(&c.ID, &url, &alg, &secret)
	found := err == nil
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	if err := errors.Join(append(errs, err, br.Close())...); err != nil {
		return chosen{}, false, postgres.Translate(err, "lesson")
	}
	if unusable(failed) {
		r.log.WarnContext(ctx, "bbb server disabled", "server_id", tried[len(tried)-1], "err", failed)
	}
	if !found {
		if p.placed {
			reason := "no server left to try"
			if failed != nil {
				reason += " (last: " + failed.Error() + ")"
			}
			err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				_, err := endLesson(ctx, tx, p.ID, "failed", reason)
				return err
			})
			if err != nil {
				return chosen{}, false, postgres.Translate(err, "lesson")
			}
		}
		return chosen{}, false, nil
	}
	c.Server = bbb.Server{URL: url, Secret: secret, Algorithm: bbb.Algorithm(alg)}
	p.placed = true
	return c, true, nil
}

// chooseSQL picks the server ($1 group, $2 heartbeat max age in seconds,
// $3 max load per CPU, $4 seats, $5 servers tried, $6 region): enabled,
// recent heartbeat, load per CPU under the limit, room for the seats; the
// group's preferred servers first by priority, then its region, then the
// lowest projected fill before this lesson (users reported at the last
// heartbeat or seats booked, whichever is more, over capacity), then the
// longest unused. It books the seats on it (b).
const chooseSQL = `WITH c AS (
	SELECT s.id FROM bbb_server s
	JOIN bbb_server_secret sec ON sec.server_id = s.id
	LEFT JOIN group_preferred_server pref ON pref.server_id = s.id AND pref.group_id = $1
	WHERE s.enabled
	  AND s.last_heartbeat_at >= now() - make_interval(secs => $2)
	  AND s.load_5m / s.cpu_count < $3
	  AND greatest(s.users, s.booked) + $4 <= s.capacity
	  AND NOT (s.id = ANY ($5))
	ORDER BY pref.priority NULLS LAST,
	         (s.region = $6) DESC,
	         greatest(s.users, s.booked)::float8 / s.capacity,
	         s.last_assigned_at NULLS FIRST,
	         s.id
	LIMIT 1
), b AS (
	UPDATE bbb_server s SET booked = s.booked + $4, last_assigned_at = now() FROM c WHERE s.id = c.id
	RETURNING s.id, s.api_url, s.checksum_algorithm
)`

// insertSQL records a new lesson on the chosen server ($7 id, $8 meeting
// id, $9 moderator, $10 roster, $11/$12 join passwords).
const insertSQL = `, l AS (
	INSERT INTO lesson (id, group_id, server_id, meeting_id, moderator_id, expected_attendees, booked, servers_tried)
	SELECT $7, $1, b.id, $8, $9, $10, $4, 1 FROM b RETURNING id
), ls AS (
	INSERT INTO lesson_secret (lesson_id, attendee_pw, moderator_pw) SELECT l.id, $11, $12 FROM l
)
SELECT b.id, b.api_url, b.checksum_algorithm, sec.secret FROM b JOIN bbb_server_secret sec ON sec.server_id = b.id`

// moveSQL moves lesson $7 to the chosen server.
const moveSQL = `, l AS (
	UPDATE lesson SET server_id = b.id, booked = $4, servers_tried = servers_tried + 1 FROM b WHERE lesson.id = $7
)
SELECT b.id, b.api_url, b.checksum_algorithm, sec.secret FROM b JOIN bbb_server_secret sec ON sec.server_id = b.id`

// releaseSQL gives lesson $1's seats back to its server. The row lock makes
// a concurrent release (an end) wait and then find nothing to give back.
const releaseSQL = `WITH old AS (SELECT server_id, booked FROM lesson WHERE id = $1 FOR UPDATE),
	cleared AS (UPDATE lesson SET booked = 0 WHERE id = $1 AND booked > 0)
UPDATE bbb_server s SET booked = greatest(s.booked - old.booked, 0) FROM old WHERE s.id = old.server_id AND old.booked > 0`

// release gives a live lesson's seats back to its server.
func release(ctx context.Context, tx pgx.Tx, lessonID uuid.UUID) error {
	_, err := tx.Exec(ctx, releaseSQL, lessonID)
	return err
}

// endLesson ends a live lesson with status (ended or failed) and releases
// its seats. It reports false when the lesson had ended already.
func endLesson(ctx context.Context, tx pgx.Tx, lessonID uuid.UUID, status, reason string) (bool, error) {
	if err := release(ctx, tx, lessonID); err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `UPDATE lesson SET status = $2, ended_at = now(), end_reason = $3 WHERE id = $1 AND ended_at IS NULL`,
		lessonID, status, truncate(reason, 500))
	return tag.RowsAffected() == 1, err
}

// Ended is the answer to an end.
type Ended struct {
	LessonID uuid.UUID
	EndedAt  time.Time
}

// End ends a lesson: its seats are released at once and its meeting is
// ended on the BBB server by a job (retried until the server answers).
// Ending an ended lesson answers when it ended.
func (r *Rooms) End(ctx context.Context, c Caller, lessonID uuid.UUID) (Ended, error) {
	e := Ended{LessonID: lessonID}
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var endedAt *time.Time
		var serverID *uuid.UUID
		err := tx.QueryRow(ctx, `SELECT l.ended_at, l.server_id FROM lesson l
			WHERE l.id = $1 AND ($2 OR EXISTS (SELECT 1 FROM group_moderator gm JOIN moderator m ON m.id = gm.moderator_id
				WHERE gm.group_id = l.group_id AND m.user_id = $3))
			FOR UPDATE OF l`, lessonID, c.admin(), c.UserID).Scan(&endedAt, &serverID)
		if err != nil {
			return postgres.Translate(err, "lesson "+lessonID.String())
		}
		if endedAt != nil {
			e.EndedAt = *endedAt
			return nil
		}
		if _, err := endLesson(ctx, tx, lessonID, "ended", "ended by "+c.Role+" "+c.UserID); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT ended_at FROM lesson WHERE id = $1`, lessonID).Scan(&e.EndedAt); err != nil {
			return err
		}
		if serverID != nil {
			_, err = r.queue.InsertTx(ctx, tx, EndMeetingArgs{LessonID: lessonID}, nil)
		}
		return err
	})
	return e, postgres.Translate(err, "lesson")
}
