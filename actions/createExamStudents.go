package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/fault"
)

// ExamStudentInput is one student of createExamStudents.
type ExamStudentInput struct {
	Nickname  string `json:"nickname"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	Email     string `json:"email"`
}

// CreateExamStudentsInput is the arguments of createExamStudents: the
// students as a list, or as CSV text with a header row.
type CreateExamStudentsInput struct {
	ExamID   uuid.UUID          `json:"examId"`
	Students []ExamStudentInput `json:"students"`
	CSV      *string            `json:"csv"`
}

// Validate wants exactly one of students and csv.
func (in *CreateExamStudentsInput) Validate() error {
	if (len(in.Students) > 0) == (in.CSV != nil && *in.CSV != "") {
		return fault.Invalidf("students", "give students or csv (one of them)")
	}
	return nil
}

// ExamStudentCode is a student with the upload code to hand them.
type ExamStudentCode struct {
	ID         uuid.UUID `json:"id"`
	Nickname   string    `json:"nickname"`
	UploadCode string    `json:"uploadCode"`
}

// CreateExamStudentsOutput is the CreateExamStudentsOutput type: the
// students created, or — when any row is wrong — none and every row's
// errors.
type CreateExamStudentsOutput struct {
	Students []ExamStudentCode `json:"students"`
	Errors   []exam.RowError   `json:"errors"`
}

// CreateExamStudents adds students to one of the calling examiner's exams,
// all in one transaction: every row valid and new, or nothing created and
// each problem named by row index and field.
func CreateExamStudents(log *slog.Logger, exams *exam.Store) http.Handler {
	return hasura.NewAction("createExamStudents", log, func(ctx context.Context, a *hasura.Action[CreateExamStudentsInput]) (CreateExamStudentsOutput, error) {
		out := CreateExamStudentsOutput{Students: []ExamStudentCode{}, Errors: []exam.RowError{}}
		if err := a.Session.RequireRole("examiner"); err != nil {
			return out, err
		}
		var rows []exam.StudentInput
		var lines []int
		if a.Input.CSV != nil && *a.Input.CSV != "" {
			var errs []exam.RowError
			if rows, lines, errs = exam.ParseCSV(*a.Input.CSV); len(errs) > 0 {
				out.Errors = errs
				return out, nil
			}
		} else {
			for _, s := range a.Input.Students {
				rows = append(rows, exam.StudentInput(s))
			}
		}
		created, errs, err := exams.CreateStudents(ctx, a.Session.UserID(), a.Input.ExamID, rows, lines)
		if err != nil {
			return out, err
		}
		if len(errs) > 0 {
			out.Errors = errs
			return out, nil
		}
		for _, c := range created {
			out.Students = append(out.Students, ExamStudentCode{ID: c.ID, Nickname: c.Nickname, UploadCode: c.UploadCode})
		}
		return out, nil
	})
}
