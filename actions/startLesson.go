package actions

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/lesson"
)

// StartLessonInput is the arguments of startLesson.
type StartLessonInput struct {
	GroupID uuid.UUID `json:"groupId"`
}

// StartLessonOutput is the StartLessonOutput type.
type StartLessonOutput struct {
	LessonID uuid.UUID `json:"lessonId"`
	// JoinURL enters the moderator into the meeting.
	JoinURL string `json:"joinUrl"`
	// Reused is true when the group's running meeting was reused.
	Reused bool `json:"reused"`
}

// StartLesson starts a live lesson for a group the caller moderates and
// returns the moderator's join URL; the group's running meeting is reused.
func StartLesson(log *slog.Logger, rooms *lesson.Rooms) http.Handler {
	return hasura.NewAction("startLesson", log, func(ctx context.Context, a *hasura.Action[StartLessonInput]) (StartLessonOutput, error) {
		if err := a.Session.RequireRole(lesson.RoleModerator); err != nil {
			return StartLessonOutput{}, err
		}
		s, err := rooms.Start(ctx, caller(a.Session), a.Input.GroupID)
		if err != nil {
			return StartLessonOutput{}, err
		}
		return StartLessonOutput{LessonID: s.LessonID, JoinURL: s.JoinURL, Reused: s.Reused}, nil
	})
}
