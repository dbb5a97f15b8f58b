package web

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/shala-edu/shala/internal/exam"
)

// VerificationJSON is what a verification code shows: the file's metadata
// and a short-lived link to it.
type VerificationJSON struct {
	VerificationCode     string    `json:"verificationCode"`
	ExamTitle            string    `json:"examTitle"`
	Nickname             string    `json:"nickname"`
	FileName             string    `json:"fileName"`
	ContentType          string    `json:"contentType"`
	Size                 int64     `json:"size"`
	SHA256               string    `json:"sha256"`
	UploadedAt           time.Time `json:"uploadedAt"`
	ExpiresAt            time.Time `json:"expiresAt"`
	DownloadURL          string    `json:"downloadUrl"`
	DownloadURLExpiresAt time.Time `json:"downloadUrlExpiresAt"`
}

// Verification serves GET /verifications/{code}: the file's metadata and a
// download link valid 600 s (never past the file's expiry). Unknown code
// 404; a replaced, expired or deleted file 410 with a message saying which.
func Verification(log *slog.Logger, exams *exam.Store, links *Links, guesses *Guesses) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		release, ok := guesses.hold(w, r)
		if !ok {
			return
		}
		defer release()
		f, err := exams.Verify(ctx, chi.URLParam(r, "code"))
		if err != nil {
			guesses.refuse(w, r, log, err)
			return
		}
		release()
		link, until, err := links.URL(ctx, f)
		if err != nil {
			writeError(ctx, w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, VerificationJSON{
			VerificationCode: f.VerificationCode, ExamTitle: f.ExamTitle, Nickname: f.Nickname,
			FileName: downloadName(f).file, ContentType: f.ContentType, Size: f.Size, SHA256: f.SHA256,
			UploadedAt: f.UploadedAt.UTC(), ExpiresAt: f.ExpiresAt.UTC(),
			DownloadURL: link, DownloadURLExpiresAt: until.UTC(),
		})
	})
}
