// Package assessment holds assessments: the kinds shala supports, reading
// an assessment-builder submission into an assessment, writing it (or
// replacing it in place when the builder is edited), and announcing a class's
// results to its parents once the class is final. The form pipeline
// (internal/forms) calls it for submissions of assessment-builder forms; the
// assessment_class_finalized trigger and the announcement sweep call it for
// results.
package assessment

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shala-edu/shala/internal/fault"
)

// Refusal codes of assessment builders.
const (
	// CodeInvalid: a builder value is missing, malformed or unknown (the
	// field path says which).
	CodeInvalid fault.Code = "INVALID_ASSESSMENT"
	// CodeUnsupported: the kind (unit type × evaluation × outcome) is one
	// of the 32 shala does not support; the message names it.
	CodeUnsupported fault.Code = "UNSUPPORTED_ASSESSMENT"
)

// The assessment kinds shala supports: of unit type {LO, Unit, Question,
// None} × evaluation {Grade, Marks, Percentage, None} × outcome {TSP,
// Boolean, Marks} (32 combinations), Grade or Marks evaluation with a TSP
// outcome, for any unit type.
var (
	unitTypes       = []string{"LO", "UNIT", "QUESTION", "NONE"}
	assessmentTypes = []string{"FA1", "FA2", "FA3", "FA4", "SA1", "SA2", "TERM1", "TERM2", "BASELINE", "ENDLINE"}
)

// Supported reports whether an assessment kind is supported.
func Supported(unitType, evaluation, outcome string) bool {
	return slices.Contains(unitTypes, unitType) && (evaluation == "GRADE" || evaluation == "MARKS") && outcome == "TSP"
}

// IST is India Standard Time, for builder deadlines given without a zone.
var IST = time.FixedZone("IST", 5*3600+1800)

// BuilderRoles are the Hasura roles that may submit assessment builders
// (through the submitForm action or Hasura inserts); OpenRosa submissions
// come from collectors an admin marked as builders.
var BuilderRoles = []string{"admin", "state_admin"}

// MayBuild refuses an assessment builder from a Hasura role other than
// BuilderRoles (role nil: written outside Hasura's permissions), or from a
// collector not marked builds_assessments (collector nil: not a collector's).
func MayBuild(role *string, collectorBuilds *bool) error {
	if role != nil && !slices.Contains(BuilderRoles, *role) {
		return fault.New(fault.Forbidden, fault.CodeForbidden, "assessment builders are submitted by %s, not %s", strings.Join(BuilderRoles, " or "), *role)
	}
	if collectorBuilds != nil && !*collectorBuilds {
		return fault.New(fault.Forbidden, fault.CodeForbidden, "this collector may not submit assessment builders (an admin creates builder collectors with buildsAssessments)")
	}
	return nil
}

// refuse is a builder refusal at field (a path below the instance root).
func refuse(root, field string, code fault.Code, format string, args ...any) error {
	return &fault.Error{Kind: fault.Unprocessable, Code: code, Field: "/" + root + "/" + field, Message: fmt.Sprintf(format, args...)}
}
