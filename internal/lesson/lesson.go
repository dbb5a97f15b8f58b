// Package lesson is shala's online lessons (TeleKlasa): class groups whose
// students join with a personal access token, moderators (teachers) who
// start lessons, and the pool of BigBlueButton servers the lessons are
// spread over.
//
// Starting a lesson chooses a server and books the group's roster size on it
// in the same transaction, under one allocation lock, so a burst of starts
// spreads by capacity instead of piling onto the server that looked emptiest
// at the last heartbeat (Scalelite's issues #538 and #1048). A group has at
// most one live lesson (a partial unique index), and starts of one group run
// one at a time (an advisory lock per group), so two concurrent starts make
// one meeting.
package lesson

import (
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/fault"
)

// Error codes of this package (see the README's Errors contract).
const (
	// CodeNotModerator: the caller has no moderator profile.
	CodeNotModerator fault.Code = "NOT_A_MODERATOR"
	// CodeNoServer: no BigBlueButton server can take the lesson now.
	CodeNoServer fault.Code = "NO_SERVER_AVAILABLE"
	// CodeTooManySessions: the access token already has its live sessions.
	CodeTooManySessions fault.Code = "TOO_MANY_SESSIONS"
	// CodeLinkExists: the moderator already has a quick-login link (reset
	// it instead).
	CodeLinkExists fault.Code = "LINK_EXISTS"
	// CodeServerExists: a server with that host is registered already.
	CodeServerExists fault.Code = "SERVER_EXISTS"
	// CodeServerUnreachable: the server did not answer the signed check.
	CodeServerUnreachable fault.Code = "SERVER_UNREACHABLE"
	// CodeChecksumRefused: the server refused every checksum algorithm
	// with this secret.
	CodeChecksumRefused fault.Code = "CHECKSUM_REFUSED"
	// CodeBadSignature: a heartbeat's HMAC does not match.
	CodeBadSignature fault.Code = "BAD_SIGNATURE"
	// CodeHostNotAllowed: a heartbeat from a host that is neither
	// registered nor on the allow-list.
	CodeHostNotAllowed fault.Code = "HOST_NOT_ALLOWED"
)

// Role names the package authorises with (Hasura roles).
const (
	RoleAdmin = "admin"
	// RoleLessonAdmin is TeleKlasa's administrator: a user (not Hasura's
	// admin secret) who manages moderators, groups, students, servers and
	// preferences, and may do what a moderator does to any group.
	RoleLessonAdmin = "lesson_admin"
	RoleModerator   = "moderator"
)

// AdminRoles are the roles that act on every group; GroupRoles adds the
// moderator, who acts on their own groups.
var (
	AdminRoles = []string{RoleAdmin, RoleLessonAdmin}
	GroupRoles = append([]string{RoleModerator}, AdminRoles...)
)

// Caller is who asks: the Hasura role and user id of the session.
type Caller struct {
	Role   string
	UserID string
}

func (c Caller) admin() bool { return slices.Contains(AdminRoles, c.Role) }

// MaxStudents caps a group's roster.
const MaxStudents = 500

// Student is a member of a group with the token of their personal link.
type Student struct {
	ID    uuid.UUID
	Name  string
	Token string
}

// Group is a class group.
type Group struct {
	ID     uuid.UUID
	Name   string
	Region string
}

// Moderator is a teacher who moderates groups.
type Moderator struct {
	ID          uuid.UUID
	UserID      string
	DisplayName string
}

// trimInvisible trims white space and invisible format characters (a
// byte-order mark, zero-width spaces, direction marks — what lists pasted
// from files and chats carry) from both ends. Zero-width (non-)joiners are
// kept: Indic scripts use them.
func trimInvisible(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d'
	})
}

// cleanName trims a display name and checks it: 1–max characters, no
// control characters.
func cleanName(field, s string, max int) (string, error) {
	s = trimInvisible(s)
	if s == "" {
		return "", fault.Invalidf(field, "must not be empty")
	}
	if n := len([]rune(s)); n > max {
		return "", fault.Invalidf(field, "at most %d characters (got %d)", max, n)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", fault.Invalidf(field, "must not contain control characters")
	}
	return s, nil
}

// CleanRegion lower-cases and checks a region name ("shimla", "ap-south").
func CleanRegion(field, s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > 64 {
		return "", fault.Invalidf(field, "must be 1–64 characters")
	}
	for i, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_')) {
			return "", fault.Invalidf(field, "letters, digits, - and _ only (got %q)", s)
		}
	}
	return s, nil
}

// rosterNames turns the students input into names: each entry may hold
// several lines (a pasted list); lines are trimmed and blank ones (white
// space and invisible characters only) ignored.
func rosterNames(field string, entries []string) ([]string, error) {
	var names []string
	for _, e := range entries {
		for line := range strings.Lines(e) {
			if trimInvisible(line) == "" {
				continue
			}
			n, err := cleanName(field+"["+strconv.Itoa(len(names))+"]", line, 100)
			if err != nil {
				return nil, err
			}
			names = append(names, n)
		}
	}
	if len(names) > MaxStudents {
		return nil, fault.Invalidf(field, "at most %d students per group (got %d)", MaxStudents, len(names))
	}
	return names, nil
}
