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
func (r *Rooms) Start(ctx context.Context, c Caller, groupID uuid.UUID) (Started, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return Started{}, postgres.Translate(err, "database")
	}
	defer conn.Release()
	mod, err := moderatorOf(ctx, conn, c.UserID)
	if err != nil {
		return Started{}, err
	}
	// Starts of one group run one at a time, across processes: the second of
	// two concurrent starts finds the first one's meeting and reuses it.
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2))`, groupLockSpace, groupID.String()).Scan(&got); err != nil {
		return Started{}, postgres.Translate(err, "group lock")
	}
	if !got {
		if r.contended != nil {
			r.contended()
		}
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, groupLockSpace, groupID.String()); err != nil {
			return Started{}, postgres.Translate(err, "group lock")
		}
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1, hashtext($2))`, groupLockSpace, groupID.String()); err != nil {
			// A session lock dies with its connection: close it rather than
			// return it to the pool still holding the lock.
			r.log.WarnContext(ctx, "group unlock failed; closing the connection", "err", err)
			conn.Conn().Close(uctx)
		}
	}()

	var g Group
	var roster int
	err = conn.QueryRow(ctx, `SELECT g.id, g.name, g.region, (SELECT count(*) FROM group_student st WHERE st.group_id = g.id)
		FROM lesson_group g WHERE g.id = $1
		  AND EXISTS (SELECT 1 FROM group_moderator gm WHERE gm.group_id = g.id AND gm.moderator_id = $2)`, groupID, mod.ID).
		Scan(&g.ID, &g.Name, &g.Region, &roster)
	if err != nil {
		return Started{}, postgres.Translate(err, "group "+groupID.String())
	}
	lv, err := r.live(ctx, conn, groupID)
	if err != nil {
		return Started{}, err
	}
	if lv != nil {
		s, ok, err := r.reuse(ctx, conn, lv, mod)
		if err != nil || ok {
			return s, err
		}
	}
	return r.startNew(ctx, conn, g, mod, roster)
}

func (r *Rooms) live(ctx context.Context, q querier, groupID uuid.UUID) (*live, error) {
	var lv live
	var url, alg, secret, apw, mpw *string
	var enabled *bool
	err := q.QueryRow(ctx, `SELECT l.id, l.status, l.meeting_id, coalesce(l.create_time, 0), l.server_id, s.enabled,
			s.api_url, s.checksum_algorithm, sec.secret, ls.attendee_pw, ls.moderator_pw, g.name
		FROM lesson l JOIN lesson_group g ON g.id = l.group_id
		LEFT JOIN bbb_server s ON s.id = l.server_id
		LEFT JOIN bbb_server_secret sec ON sec.server_id = l.server_id
		LEFT JOIN lesson_secret ls ON ls.lesson_id = l.id
		WHERE l.group_id = $1 AND l.ended_at IS NULL`, groupID).
		Scan(&lv.ID, &lv.Status, &lv.MeetingID, &lv.CreateTime, &lv.ServerID, &enabled, &url, &alg, &secret, &apw, &mpw, &lv.GroupName)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, postgres.Translate(err, "lesson")
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
func (r *Rooms) reuse(ctx context.Context, conn *pgxpool.Conn, lv *live, mod Moderator) (Started, bool, error) {
	var err error
	running := false
	if lv.ServerID != nil {
		running, err = r.client.IsMeetingRunning(ctx, lv.Server, lv.MeetingID)
		if err == nil && !running && lv.Enabled {
			// Created but nobody in it yet (or it ended in BBB): create is
			// idempotent, so this finds the meeting or makes it again.
			var m bbb.Meeting
			if m, err = r.client.Create(ctx, lv.Server, meetingParams(lv.ID, lv.GroupName, lv.AttendeePW, lv.ModeratorPW)); err == nil {
				lv.CreateTime, running = m.CreateTime, true
			}
		}
		if ctx.Err() != nil {
			return Started{}, false, ctx.Err()
		}
	}
	if err == nil && running {
		tag, err := conn.Exec(ctx, `UPDATE lesson SET status = 'running', create_time = $2 WHERE id = $1 AND ended_at IS NULL`, lv.ID, lv.CreateTime)
		if err != nil {
			return Started{}, false, postgres.Translate(err, "lesson")
		}
		if tag.RowsAffected() == 1 {
			return Started{LessonID: lv.ID, JoinURL: moderatorJoin(lv.Server, lv.MeetingID, lv.CreateTime, lv.ModeratorPW, mod), Reused: true}, true, nil
		}
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
		_, err := endLesson(ctx, tx, lv.ID, "ended", reason)
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

func (r *Rooms) startNew(ctx context.Context, conn *pgxpool.Conn, g Group, mod Moderator, roster int) (Started, error) {
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
			tag, err := conn.Exec(ctx, `UPDATE lesson SET status = 'running', create_time = $2 WHERE id = $1 AND ended_at IS NULL`, p.ID, m.CreateTime)
			if err != nil {
				return Started{}, postgres.Translate(err, "lesson")
			}
			if tag.RowsAffected() == 0 {
				return Started{}, fault.New(fault.Conflict, "", "the lesson was ended while it was starting")
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

// disableFailed takes a server out of the pool when its failure means it
// cannot be used (unreachable, or it refuses shala's checksum).
func (r *Rooms) disableFailed(ctx context.Context, tx pgx.Tx, id uuid.UUID, err error) error {
	if !errors.Is(err, bbb.ErrUnreachable) && !bbb.IsChecksumError(err) {
		return nil
	}
	r.log.WarnContext(ctx, "disabling bbb server", "server_id", id, "err", err)
	return markUnreachable(ctx, tx, id, "create failed: "+err.Error())
}

func password() string { return rand.Text()[:16] }

// place chooses a server for p and books p's seats on it, in one transaction
// under the allocation lock: every allocation sees every earlier booking, so
// a burst spreads by capacity. On a retry it first releases the seats on the
// server that failed (disabling it when failed says it is unusable). ok is
// false when no server qualifies; a lesson already placed is then failed
// and released.
func (r *Rooms) place(ctx context.Context, conn *pgxpool.Conn, p *placement, tried []uuid.UUID, failed error) (chosen, bool, error) {
	var c chosen
	found := false
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, allocationLock); err != nil {
			return err
		}
		if p.placed {
			if err := r.disableFailed(ctx, tx, tried[len(tried)-1], failed); err != nil {
				return err
			}
			if err := release(ctx, tx, p.ID); err != nil {
				return err
			}
		}
		var url, alg, secret string
		err := tx.QueryRow(ctx, `SELECT s.id, s.api_url, s.checksum_algorithm, sec.secret
			FROM bbb_server s
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
			LIMIT 1`,
			p.GroupID, r.policy.HeartbeatMaxAge.Seconds(), r.policy.MaxLoadPerCPU, p.Seats, tried, p.Region).
			Scan(&c.ID, &url, &alg, &secret)
		if errors.Is(err, pgx.ErrNoRows) {
			if p.placed {
				reason := "no server left to try"
				if failed != nil {
					reason += " (last: " + failed.Error() + ")"
				}
				_, err := endLesson(ctx, tx, p.ID, "failed", truncate(reason, 500))
				return err
			}
			return nil
		}
		if err != nil {
			return err
		}
		c.Server = bbb.Server{URL: url, Secret: secret, Algorithm: bbb.Algorithm(alg)}
		if _, err := tx.Exec(ctx, `UPDATE bbb_server SET booked = booked + $2, last_assigned_at = now() WHERE id = $1`, c.ID, p.Seats); err != nil {
			return err
		}
		if p.placed {
			_, err = tx.Exec(ctx, `UPDATE lesson SET server_id = $2, booked = $3, servers_tried = servers_tried + 1 WHERE id = $1`, p.ID, c.ID, p.Seats)
			if err != nil {
				return err
			}
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO lesson (id, group_id, server_id, meeting_id, moderator_id, expected_attendees, booked, servers_tried)
				VALUES ($1, $2, $3, $4, $5, $6, $7, 1)`, p.ID, p.GroupID, c.ID, p.ID.String(), p.ModeratorID, p.Roster, p.Seats)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO lesson_secret (lesson_id, attendee_pw, moderator_pw) VALUES ($1, $2, $3)`,
				p.ID, p.AttendeePW, p.ModeratorPW); err != nil {
				return err
			}
		}
		found = true
		return nil
	})
	if err != nil {
		return chosen{}, false, postgres.Translate(err, "lesson")
	}
	if found {
		p.placed = true
	}
	return c, found, nil
}

// release gives a live lesson's seats back to its server.
func release(ctx context.Context, tx pgx.Tx, lessonID uuid.UUID) error {
	var serverID *uuid.UUID
	var booked int
	err := tx.QueryRow(ctx, `SELECT server_id, booked FROM lesson WHERE id = $1 FOR UPDATE`, lessonID).Scan(&serverID, &booked)
	if err != nil || serverID == nil || booked == 0 {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE lesson SET booked = 0 WHERE id = $1`, lessonID); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE bbb_server SET booked = greatest(booked - $2, 0) WHERE id = $1`, *serverID, booked)
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
