package lesson

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/postgres"
)

// Groups manages class groups, their students and tokens, and moderators'
// quick-login links. Moderators act on the groups they moderate only; admins
// on every group.
type Groups struct{ pool *pgxpool.Pool }

// NewGroups returns the group store on pool.
func NewGroups(pool *pgxpool.Pool) *Groups { return &Groups{pool: pool} }

// querier is what both a pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// moderatorOf returns the moderator profile of userID.
func moderatorOf(ctx context.Context, q querier, userID string) (Moderator, error) {
	m := Moderator{UserID: userID}
	err := q.QueryRow(ctx, `SELECT id, display_name FROM moderator WHERE user_id = $1`, userID).Scan(&m.ID, &m.DisplayName)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, fault.New(fault.Forbidden, CodeNotModerator, "you have no moderator profile; an admin must add you as a moderator")
	}
	return m, postgres.Translate(err, "moderator")
}

// authorizeGroup checks that c may act on group id (and locks the group row
// when lock is set). A moderator of another group gets NotFound, so group
// ids cannot be probed.
func authorizeGroup(ctx context.Context, q querier, c Caller, id uuid.UUID, lock bool) (Group, error) {
	sql := `SELECT g.id, g.name, g.region FROM lesson_group g
		WHERE g.id = $1 AND ($2 OR EXISTS (SELECT 1 FROM group_moderator gm JOIN moderator m ON m.id = gm.moderator_id
			WHERE gm.group_id = g.id AND m.user_id = $3))`
	if lock {
		sql += ` FOR UPDATE OF g`
	}
	var g Group
	err := q.QueryRow(ctx, sql, id, c.admin(), c.UserID).Scan(&g.ID, &g.Name, &g.Region)
	return g, postgres.Translate(err, "group "+id.String())
}

// CreateGroup creates a group moderated by the calling moderator, with its
// students and their tokens, in one transaction.
func (s *Groups) CreateGroup(ctx context.Context, c Caller, name, region string, students []string) (Group, []Student, error) {
	name, err := cleanName("name", name, 100)
	if err != nil {
		return Group{}, nil, err
	}
	if region, err = CleanRegion("region", region); err != nil {
		return Group{}, nil, err
	}
	names, err := rosterNames("students", students)
	if err != nil {
		return Group{}, nil, err
	}
	g := Group{Name: name, Region: region}
	var out []Student
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		m, err := moderatorOf(ctx, tx, c.UserID)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO lesson_group (name, region, created_by) VALUES ($1, $2, $3) RETURNING id`,
			name, region, c.UserID).Scan(&g.ID); err != nil {
			return postgres.Translate(err, "group")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO group_moderator (group_id, moderator_id) VALUES ($1, $2)`, g.ID, m.ID); err != nil {
			return postgres.Translate(err, "group moderator")
		}
		out, err = insertStudents(ctx, tx, g.ID, names)
		return err
	})
	if err != nil {
		return Group{}, nil, err
	}
	return g, out, nil
}

// AddStudents adds students to a group and returns them with their tokens.
func (s *Groups) AddStudents(ctx context.Context, c Caller, groupID uuid.UUID, students []string) ([]Student, error) {
	names, err := rosterNames("students", students)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fault.Invalidf("students", "no names (blank lines are ignored)")
	}
	var out []Student
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := authorizeGroup(ctx, tx, c, groupID, true); err != nil {
			return err
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM group_student WHERE group_id = $1`, groupID).Scan(&have); err != nil {
			return err
		}
		if have+len(names) > MaxStudents {
			return fault.Invalidf("students", "a group has at most %d students (it has %d, adding %d)", MaxStudents, have, len(names))
		}
		out, err = insertStudents(ctx, tx, groupID, names)
		return err
	})
	return out, err
}

// insertStudents inserts names with fresh tokens; a token that collides
// with an existing one is drawn again.
func insertStudents(ctx context.Context, tx pgx.Tx, groupID uuid.UUID, names []string) ([]Student, error) {
	out := make([]Student, len(names))
	pending := make([]int, len(names))
	for i := range pending {
		pending[i] = i
	}
	for round := 0; len(pending) > 0; round++ {
		if round == 10 {
			return nil, errors.New("insert students: tokens keep colliding")
		}
		byToken := make(map[string]int, len(pending))
		toks, ns := make([]string, len(pending)), make([]string, len(pending))
		for j, i := range pending {
			t := NewAccessToken()
			for byToken[t] != 0 {
				t = NewAccessToken()
			}
			byToken[t] = i + 1
			toks[j], ns[j] = t, names[i]
		}
		rows, err := tx.Query(ctx, `INSERT INTO group_student (group_id, display_name, access_token)
			SELECT $1, n, t FROM unnest($2::text[], $3::text[]) AS x(n, t)
			ON CONFLICT (access_token) DO NOTHING RETURNING id, access_token`, groupID, ns, toks)
		if err != nil {
			return nil, postgres.Translate(err, "students")
		}
		done := map[int]bool{}
		for rows.Next() {
			var id uuid.UUID
			var tok string
			if err := rows.Scan(&id, &tok); err != nil {
				rows.Close()
				return nil, err
			}
			i := byToken[tok] - 1
			out[i] = Student{ID: id, Name: names[i], Token: tok}
			done[i] = true
		}
		if err := rows.Err(); err != nil {
			return nil, postgres.Translate(err, "students")
		}
		var next []int
		for _, i := range pending {
			if !done[i] {
				next = append(next, i)
			}
		}
		pending = next
	}
	return out, nil
}

// authorizeStudent returns the group of student id if c may act on it.
func authorizeStudent(ctx context.Context, q querier, c Caller, id uuid.UUID) (uuid.UUID, error) {
	var groupID uuid.UUID
	err := q.QueryRow(ctx, `SELECT st.group_id FROM group_student st
		WHERE st.id = $1 AND ($2 OR EXISTS (SELECT 1 FROM group_moderator gm JOIN moderator m ON m.id = gm.moderator_id
			WHERE gm.group_id = st.group_id AND m.user_id = $3))`, id, c.admin(), c.UserID).Scan(&groupID)
	return groupID, postgres.Translate(err, "student "+id.String())
}

// RemoveStudent deletes a student; their link stops working at once.
func (s *Groups) RemoveStudent(ctx context.Context, c Caller, id uuid.UUID) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := authorizeStudent(ctx, tx, c, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM group_student WHERE id = $1`, id)
		return postgres.Translate(err, "student")
	})
}

// ResetAccessToken gives a student a new token; the old link stops working.
func (s *Groups) ResetAccessToken(ctx context.Context, c Caller, id uuid.UUID) (Student, error) {
	st := Student{ID: id}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := authorizeStudent(ctx, tx, c, id); err != nil {
			return err
		}
		for range 10 {
			tok := NewAccessToken()
			err := tx.QueryRow(ctx, `UPDATE group_student SET access_token = $2 WHERE id = $1
				AND NOT EXISTS (SELECT 1 FROM group_student WHERE access_token = $2) RETURNING display_name, access_token`,
				id, tok).Scan(&st.Name, &st.Token)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // the token is taken: draw again
			}
			return postgres.Translate(err, "student")
		}
		return errors.New("reset access token: tokens keep colliding")
	})
	return st, err
}

// ModeratorLink is a moderator's quick-login token, shown once.
type ModeratorLink struct {
	ModeratorID uuid.UUID
	Token       string
	CreatedAt   time.Time
}

// linkTarget resolves whose link c may manage: an admin names the
// moderator; a moderator manages their own (id nil or their own).
func linkTarget(ctx context.Context, q querier, c Caller, id *uuid.UUID) (uuid.UUID, error) {
	if c.admin() {
		if id == nil {
			return uuid.Nil, fault.Invalidf("moderatorId", "required for an admin")
		}
		var got uuid.UUID
		err := q.QueryRow(ctx, `SELECT id FROM moderator WHERE id = $1`, *id).Scan(&got)
		return got, postgres.Translate(err, "moderator "+id.String())
	}
	m, err := moderatorOf(ctx, q, c.UserID)
	if err != nil {
		return uuid.Nil, err
	}
	if id != nil && *id != m.ID {
		return uuid.Nil, fault.New(fault.Forbidden, "", "a moderator manages their own link only")
	}
	return m.ID, nil
}

// CreateModeratorLink makes the moderator's quick-login token. It fails
// with LINK_EXISTS when one exists: ResetModeratorLink replaces it.
func (s *Groups) CreateModeratorLink(ctx context.Context, c Caller, id *uuid.UUID) (ModeratorLink, error) {
	return s.setLink(ctx, c, id, false)
}

// ResetModeratorLink replaces the moderator's quick-login token; the old
// link stops working.
func (s *Groups) ResetModeratorLink(ctx context.Context, c Caller, id *uuid.UUID) (ModeratorLink, error) {
	return s.setLink(ctx, c, id, true)
}

func (s *Groups) setLink(ctx context.Context, c Caller, id *uuid.UUID, replace bool) (ModeratorLink, error) {
	var l ModeratorLink
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		mid, err := linkTarget(ctx, tx, c, id)
		if err != nil {
			return err
		}
		token, hash := newLinkToken()
		err = tx.QueryRow(ctx, `UPDATE moderator SET link_token_hash = $2, link_token_hint = $3, link_created_at = now()
			WHERE id = $1 AND ($4 OR link_token_hash IS NULL) RETURNING link_created_at`, mid, hash, token[:6], replace).Scan(&l.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return fault.New(fault.Conflict, CodeLinkExists, "this moderator already has a link; reset it to make a new one")
		}
		if err != nil {
			return postgres.Translate(err, "moderator link")
		}
		l.ModeratorID, l.Token = mid, token
		return nil
	})
	return l, err
}

// ModeratorByLink returns the moderator whose quick-login token is token.
func (s *Groups) ModeratorByLink(ctx context.Context, token string) (Moderator, error) {
	var m Moderator
	if len(token) < 40 || len(token) > 50 {
		return m, fault.New(fault.NotFound, "", "unknown link")
	}
	err := s.pool.QueryRow(ctx, `SELECT id, user_id, display_name FROM moderator WHERE link_token_hash = $1`,
		hashLinkToken(token)).Scan(&m.ID, &m.UserID, &m.DisplayName)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, fault.New(fault.NotFound, "", "unknown link")
	}
	return m, postgres.Translate(err, "moderator")
}

// Moderates reports whether moderator id moderates group groupID.
func (s *Groups) Moderates(ctx context.Context, id, groupID uuid.UUID) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM group_moderator WHERE moderator_id = $1 AND group_id = $2)`,
		id, groupID).Scan(&ok)
	return ok, postgres.Translate(err, "group moderator")
}
