package actions

import (
	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
)

// adminRoles may act for any school in the student and certificate actions.
var adminRoles = []string{"admin", "state_admin"}

// schoolFor is the school a student action acts in: the caller's own for
// the school role (an input schoolId naming another is refused), the named
// one for admins.
func schoolFor(s hasura.SessionVariables, input *uuid.UUID) (uuid.UUID, error) {
	if s.Role() == "school" {
		own, err := s.SchoolID()
		if err != nil {
			return uuid.Nil, err
		}
		if input != nil && *input != own {
			return uuid.Nil, fault.New(fault.Forbidden, "", "schoolId: a school acts for its own students only")
		}
		return own, nil
	}
	if err := s.RequireRole(append([]string{"school"}, adminRoles...)...); err != nil {
		return uuid.Nil, err
	}
	if input == nil {
		return uuid.Nil, fault.Invalidf("schoolId", "required for the %s role", s.Role())
	}
	return *input, nil
}

// scopeOf is nil (any school) for admins, the caller's school for the
// school role.
func scopeOf(s hasura.SessionVariables) (*uuid.UUID, error) {
	if s.Role() == "school" {
		own, err := s.SchoolID()
		if err != nil {
			return nil, err
		}
		return &own, nil
	}
	if err := s.RequireRole(append([]string{"school"}, adminRoles...)...); err != nil {
		return nil, err
	}
	return nil, nil
}
