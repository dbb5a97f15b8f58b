package actions

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// EndLessonInput is the arguments of endLesson.
type EndLessonInput struct {
	LessonID uuid.UUID `json:"lessonId"`
}

// EndLessonOutput is the EndLessonOutput type.
type EndLessonOutput struct {
	LessonID uuid.UUID `json:"lessonId"`
	EndedAt  time.Time `json:"endedAt"`
}

// EndLesson ends a lesson of a group the caller moderates (admins: any):
// its seats are released and its BBB meeting ended by a job.
func EndLesson(log *slog.Logger, rooms *lesson.Rooms) http.Handler {
	return hasura.NewAction("endLesson", log, func(ctx context.Context, a *hasura.Action[EndLessonInput]) (EndLessonOutput, error) {
		if err := a.Session.RequireRole(lesson.GroupRoles...); err != nil {
			return EndLessonOutput{}, err
		}
		e, err := rooms.End(ctx, caller(a.Session), a.Input.LessonID)
		if err != nil {
			return EndLessonOutput{}, err
		}
		return EndLessonOutput{LessonID: e.LessonID, EndedAt: e.EndedAt}, nil
	})
}
