package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/student"
)

// PromoteStudentsInput is the arguments of promoteStudents.
type PromoteStudentsInput struct {
	FromGrade      int                 `json:"fromGrade"`
	Section        *string             `json:"section"`
	AcademicYear   string              `json:"academicYear"`
	ToAcademicYear string              `json:"toAcademicYear"`
	Exceptions     []student.Exception `json:"exceptions"`
	SchoolID       *uuid.UUID          `json:"schoolId"`
}

// PromoteStudents moves a whole class to the next academic year in one
// transaction.
func PromoteStudents(log *slog.Logger, students *student.Store) http.Handler {
	return hasura.NewAction("promoteStudents", log, func(ctx context.Context, a *hasura.Action[PromoteStudentsInput]) (student.PromotionResult, error) {
		school, err := schoolFor(a.Session, a.Input.SchoolID)
		if err != nil {
			return student.PromotionResult{}, err
		}
		in := a.Input
		return students.Promote(ctx, school, a.Session.UserID(), student.Promotion{FromGrade: in.FromGrade, Section: in.Section,
			AcademicYear: in.AcademicYear, ToAcademicYear: in.ToAcademicYear, Exceptions: in.Exceptions})
	})
}
