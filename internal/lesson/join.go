package lesson

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/bbb"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
)

// JoinState is where a student's link leads now.
type JoinState string

// Join states.
const (
	// Waiting: the group has no running lesson; the student waits in limbo.
	Waiting JoinState = "waiting"
	// Ready: a lesson runs; Join hands out a join URL.
	Ready JoinState = "ready"
)

// Joining is what a student's link resolves to.
type Joining struct {
	State       JoinState
	StudentName string
	GroupName   string
	// URL enters the student into the meeting (State Ready). A capability:
	// never log it.
	URL string
	// Unreachable (State Waiting): a lesson runs, but its server did not
	// answer; the student waits and tries again.
	Unreachable bool
}

// student is a token's student with the group's live lesson, if any.
type student struct {
	ID, GroupID             uuid.UUID
	Name, GroupName         string
	LessonID                *uuid.UUID
	Status, MeetingID       string
	CreateTime              int64
	Server                  bbb.Server
	AttendeePW              string
	Running, ServerReadable bool
}

func (r *Rooms) student(ctx context.Context, token string) (student, error) {
	var st student
	norm, ok := NormalizeToken(token)
	if !ok {
		return st, fault.New(fault.NotFound, "", "unknown link")
	}
	var status, meetingID, url, alg, secret, apw *string
	var createTime *int64
	err := r.pool.QueryRow(ctx, `SELECT st.id, st.display_name, g.id, g.name, l.id, l.status, l.meeting_id, l.create_time,
			s.api_url, s.checksum_algorithm, sec.secret, ls.attendee_pw
		FROM group_student st
		JOIN lesson_group g ON g.id = st.group_id
		LEFT JOIN lesson l ON l.group_id = g.id AND l.ended_at IS NULL
		LEFT JOIN bbb_server s ON s.id = l.server_id
		LEFT JOIN bbb_server_secret sec ON sec.server_id = l.server_id
		LEFT JOIN lesson_secret ls ON ls.lesson_id = l.id
		WHERE st.access_token = $1`, norm).
		Scan(&st.ID, &st.Name, &st.GroupID, &st.GroupName, &st.LessonID, &status, &meetingID, &createTime, &url, &alg, &secret, &apw)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, fault.New(fault.NotFound, "", "unknown link")
	}
	if err != nil {
		return st, postgres.Translate(err, "student")
	}
	st.Status, st.MeetingID, st.AttendeePW = deref(status), deref(meetingID), deref(apw)
	if createTime != nil {
		st.CreateTime = *createTime
	}
	st.Running = st.Status == "running"
	st.ServerReadable = url != nil && secret != nil
	st.Server = bbb.Server{URL: deref(url), Secret: deref(secret), Algorithm: bbb.Algorithm(deref(alg))}
	return st, nil
}

// Status is what the waiting page polls: cheap (one indexed query, no BBB
// call). Unknown tokens are NotFound.
func (r *Rooms) Status(ctx context.Context, token string) (Joining, error) {
	st, err := r.student(ctx, token)
	if err != nil {
		return Joining{}, err
	}
	j := Joining{State: Waiting, StudentName: st.Name, GroupName: st.GroupName}
	if st.Running {
		j.State = Ready
	}
	return j, nil
}

// meetingGone reports whether getMeetingInfo's answer says the meeting is
// over: unknown to its server, or ended and kept in memory.
func meetingGone(info bbb.MeetingInfo, err error) bool {
	return bbb.IsNotFound(err) || (err == nil && info.ForciblyEnded)
}

// Join resolves a student's link: a running lesson gives a join URL unless
// the token already has its live sessions (TOO_MANY_SESSIONS); otherwise
// the student waits.
//
// Each device a link lets in gets a slot (1…SessionsPerToken), and the
// slot is in its BBB userID, st-<student id>-<slot>. Live sessions are the
// token's attendees in getMeetingInfo plus the links handed out in the last
// JoinGrace that were never seen in the meeting (browsers on their way in).
// So a device in the meeting and a link still loading count as two, and a
// device seen in the meeting that dropped out frees its slot at once.
func (r *Rooms) Join(ctx context.Context, token string) (Joining, error) {
	st, err := r.student(ctx, token)
	if err != nil {
		return Joining{}, err
	}
	j := Joining{State: Waiting, StudentName: st.Name, GroupName: st.GroupName}
	if !st.Running {
		return j, nil
	}
	if !st.ServerReadable {
		j.Unreachable = true
		return j, nil
	}
	info, err := r.client.GetMeetingInfo(ctx, st.Server, st.MeetingID)
	if meetingGone(info, err) {
		// Ended in BBB (BBB keeps an ended meeting in memory a while, and
		// refuses joins to it) or gone: end the lesson now, as the sweep
		// would, so the waiting pages' status says "waiting" instead of
		// sending them back here every poll.
		r.log.InfoContext(ctx, "join: the meeting is over; ending the lesson", "lesson_id", st.LessonID)
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			_, err := endLesson(ctx, tx, *st.LessonID, "ended", "the meeting is over on its server")
			return err
		})
		if err != nil {
			return Joining{}, postgres.Translate(err, "lesson")
		}
		return j, nil
	}
	if err != nil {
		if ctx.Err() != nil {
			return Joining{}, ctx.Err()
		}
		// The student waits; an unreachable server is the sweep's to judge.
		r.log.InfoContext(ctx, "join: meeting not available", "lesson_id", st.LessonID, "err", err)
		j.Unreachable = true
		return j, nil
	}
	prefix := "st-" + st.ID.String()
	inMeeting, present := 0, []int16{}
	for _, a := range info.Attendees {
		if a.UserID == prefix || strings.HasPrefix(a.UserID, prefix+"-") {
			inMeeting++
			if n, err := strconv.ParseInt(strings.TrimPrefix(a.UserID, prefix+"-"), 10, 16); err == nil {
				present = append(present, int16(n))
			}
		}
	}
	var slot int
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		// One student's joins are counted one at a time.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM group_student WHERE id = $1 FOR UPDATE`, st.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE lesson_join SET arrived_at = now()
			WHERE student_id = $1 AND lesson_id = $2 AND arrived_at IS NULL AND slot = ANY ($3)`, st.ID, *st.LessonID, present); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT DISTINCT slot FROM lesson_join WHERE student_id = $1 AND lesson_id = $2
			AND arrived_at IS NULL AND granted_at > now() - make_interval(secs => $3)`, st.ID, *st.LessonID, r.policy.JoinGrace.Seconds())
		if err != nil {
			return err
		}
		onTheirWay, err := pgx.CollectRows(rows, pgx.RowTo[int16])
		if err != nil {
			return err
		}
		if inMeeting+len(onTheirWay) >= r.policy.SessionsPerToken {
			return fault.New(fault.Forbidden, CodeTooManySessions,
				"this link is already in the lesson on %d devices; close one of them first", r.policy.SessionsPerToken)
		}
		busy := append(present, onTheirWay...)
		for s := 1; s <= r.policy.SessionsPerToken && slot == 0; s++ {
			if !slices.Contains(busy, int16(s)) {
				slot = s
			}
		}
		if slot == 0 {
			// Unreachable: busy slots number at most the live sessions,
			// which are fewer than the slots. Refuse rather than hand out a
			// slot twice.
			return fault.New(fault.Forbidden, CodeTooManySessions,
				"this link is already in the lesson on %d devices; close one of them first", r.policy.SessionsPerToken)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO lesson_join (lesson_id, student_id, slot) VALUES ($1, $2, $3)`, *st.LessonID, st.ID, slot); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE group_student SET last_joined_at = now() WHERE id = $1`, st.ID)
		return err
	})
	if err != nil {
		return Joining{}, postgres.Translate(err, "join")
	}
	j.State = Ready
	j.URL = st.Server.JoinURL(bbb.JoinParams{MeetingID: st.MeetingID, FullName: st.Name, Role: bbb.Viewer,
		Password: st.AttendeePW, UserID: prefix + "-" + strconv.Itoa(slot), CreateTime: info.CreateTime})
	return j, nil
}
