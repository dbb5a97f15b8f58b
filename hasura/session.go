package hasura

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/fault"
)

// Roles are the Hasura roles shala's metadata and JWTs use. admin is Hasura's
// built-in superuser role.
var Roles = []string{"admin", "state_admin", "district_admin", "school", "examiner", "moderator", "lesson_admin", "anonymous"}

// Session variable names (lower case, as Hasura sends them).
const (
	VarRole     = "x-hasura-role"
	VarUserID   = "x-hasura-user-id"
	VarSchoolID = "x-hasura-school-id"
	VarUDISE    = "x-hasura-udise"
	VarDistrict = "x-hasura-district"
)

// SessionVariables are the x-hasura-* values of the caller, keys lower-cased.
// shala trusts them because the call carries the webhook secret; they are the
// only source of identity (never input fields).
type SessionVariables map[string]string

// UnmarshalJSON lower-cases keys and accepts null (writes made by plain SQL)
// and non-string scalars.
func (s *SessionVariables) UnmarshalJSON(b []byte) error {
	// Hasura sends strings: read them as such (a null is left out, as
	// below), and only values of other types through the slower map of any.
	var strs map[string]*string
	if err := json.Unmarshal(b, &strs); err == nil {
		if strs == nil {
			*s = nil
			return nil
		}
		out := make(SessionVariables, len(strs))
		for k, v := range strs {
			if v != nil {
				out[strings.ToLower(k)] = *v
			}
		}
		*s = out
		return nil
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw == nil {
		*s = nil
		return nil
	}
	out := make(SessionVariables, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[strings.ToLower(k)] = v
		case nil:
		default:
			out[strings.ToLower(k)] = fmt.Sprint(v)
		}
	}
	*s = out
	return nil
}

// Get returns the variable name (case-insensitive), or "".
func (s SessionVariables) Get(name string) string { return s[strings.ToLower(name)] }

// Role is x-hasura-role.
func (s SessionVariables) Role() string { return s[VarRole] }

// UserID is x-hasura-user-id.
func (s SessionVariables) UserID() string { return s[VarUserID] }

// UDISE is x-hasura-udise, the caller's school's UDISE code.
func (s SessionVariables) UDISE() string { return s[VarUDISE] }

// District is x-hasura-district, the district a district_admin manages.
func (s SessionVariables) District() string { return s[VarDistrict] }

// CodeNoSchool refuses a school-scoped call whose session names no school.
const CodeNoSchool fault.Code = "NO_SCHOOL"

// SchoolID is x-hasura-school-id. It fails with Forbidden when the variable
// is missing or not a UUID: a school-scoped call without a school is not
// allowed to proceed.
func (s SessionVariables) SchoolID() (uuid.UUID, error) {
	v := s[VarSchoolID]
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, fault.New(fault.Forbidden, CodeNoSchool, "session has no valid x-hasura-school-id")
	}
	return id, nil
}

// RequireRole fails with Forbidden unless the caller's role is one of roles.
func (s SessionVariables) RequireRole(roles ...string) error {
	if slices.Contains(roles, s.Role()) {
		return nil
	}
	return fault.New(fault.Forbidden, "", "role %q may not do this (allowed: %s)", s.Role(), strings.Join(roles, ", "))
}
