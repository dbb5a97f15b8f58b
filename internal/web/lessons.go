package web

import (
	"context"
	"crypto/rand"
	"embed"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/lesson"
)

//go:embed templates/lesson.html
var lessonFiles embed.FS

var lessonPages = template.Must(template.ParseFS(lessonFiles, "templates/lesson.html"))

// charge counts a wrong token (NotFound) against r's client.
func charge(r *http.Request, guesses *Guesses, err error) {
	if fault.KindOf(err) == fault.NotFound {
		guesses.wrong(r)
	}
}

// pageHeaders are set on every lesson page: never cached (a state
// changes), no Referer to the BBB server (the path holds the token), and a
// content policy that lets only the page's own script run.
func pageHeaders(w http.ResponseWriter) (nonce string) {
	nonce = rand.Text()
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'unsafe-inline'; "+
		"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	return nonce
}

type lessonPage struct {
	Title, Nonce   string
	Student, Group string
	StatusPath     string
	JoinPath       string
	// FirstPoll is the seconds before the waiting page first polls (10, or
	// 30 when the lesson runs but its server did not answer: the status
	// says "ready" then, and each poll would reload the page).
	FirstPoll      int
	Unreachable    bool
	Hindi, English string
	Action         string
}

func renderLesson(ctx context.Context, w http.ResponseWriter, log *slog.Logger, status int, name string, p lessonPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := lessonPages.ExecuteTemplate(w, name, p); err != nil {
		log.WarnContext(ctx, "render lesson page", "page", name, "err", err)
	}
}

// lessonMessage renders a bilingual message page for err.
func lessonMessage(ctx context.Context, w http.ResponseWriter, log *slog.Logger, nonce string, err error) {
	f := fault.As(err)
	p := lessonPage{Title: "TeleKlasa", Nonce: nonce}
	status := httperr.Status(f.Kind)
	switch {
	case f.Kind == fault.NotFound:
		p.Hindi, p.English = "यह लिंक सही नहीं है, या बदल दिया गया है। नया लिंक माँगें।",
			"This link is not valid, or it was replaced. Ask for your new link."
	case f.Kind == fault.RateLimited:
		// Retry-After is set by whoever refused.
		p.Hindi = "इस कनेक्शन से बहुत बार कोशिश हुई है। थोड़ी देर रुककर लिंक फिर से खोलें।"
		p.English = "Too many tries from this connection. Wait a little and open the link again."
	case f.Code == lesson.CodeTooManySessions:
		p.Hindi = "यह लिंक पहले से दो उपकरणों पर कक्षा में है। एक को बंद करके फिर से खोलें।"
		p.English = "This link is already in the lesson on two devices. Close one of them and open the link again."
	default:
		if f.Kind == fault.Internal {
			log.ErrorContext(ctx, "lesson link failed", "err", err)
		} else {
			log.WarnContext(ctx, "lesson link failed", "err", err)
		}
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "30")
		p.Hindi, p.English = "अभी कक्षा से जुड़ नहीं पा रहे हैं। एक मिनट बाद फिर से कोशिश करें।",
			"The lesson cannot be reached right now. Try again in a minute."
	}
	renderLesson(ctx, w, log, status, "lesson_message", p)
}

// LessonPageError answers errors on the lesson pages a phone opens (/j/{token},
// /m/{token}) — those of the rate limits in front of them too (httperr.Use)
// — as the bilingual message page, not JSON.
func LessonPageError(log *slog.Logger) httperr.Writer {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		lessonMessage(r.Context(), w, log, pageHeaders(w), err)
	}
}

// linkPreviewers mark, in User-Agent, the fetchers messaging apps and
// social sites send to draw a link's preview card (lower case).
var linkPreviewers = []string{"whatsapp", "facebookexternalhit", "facebot", "telegrambot", "twitterbot", "slackbot",
	"discordbot", "linkedinbot", "skypeuripreview", "microsoftpreview", "viber", "snapchat", "pinterest", "redditbot",
	"vkshare", "iframely", "embedly", "googlebot", "bingbot", "applebot"}

// isLinkPreview reports whether r comes from a link previewer.
func isLinkPreview(r *http.Request) bool {
	ua := strings.ToLower(r.UserAgent())
	for _, p := range linkPreviewers {
		if strings.Contains(ua, p) {
			return true
		}
	}
	return false
}

// Join serves a student's personal link, GET /j/{token}: into the running
// lesson (302 to the BBB join URL), or the waiting page ("limbo") that polls
// JoinStatus and goes in when the lesson starts. Unknown token: 404 page.
//
// A link previewer (a messaging app drawing the link's card) gets a plain
// page instead: it must not take one of the student's sessions, cost a BBB
// call, or carry the signed join URL off to its servers.
func Join(log *slog.Logger, rooms *lesson.Rooms, guesses *Guesses) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		token := chi.URLParam(r, "token")
		release, ok := guesses.hold(w, r)
		if !ok {
			return
		}
		defer release()
		nonce := pageHeaders(w)
		// The token's look-up holds a guess; joining (a BBB call, maybe)
		// does not, so a class behind one address joins at once.
		if _, err := rooms.Status(ctx, token); err != nil {
			charge(r, guesses, err)
			lessonMessage(ctx, w, log, nonce, err)
			return
		}
		release()
		if isLinkPreview(r) {
			renderLesson(ctx, w, log, http.StatusOK, "lesson_message", lessonPage{Title: "TeleKlasa", Nonce: nonce,
				Hindi: "कक्षा में जुड़ने के लिए यह लिंक अपने फ़ोन पर खोलें।", English: "Open this link on your phone to join your lesson."})
			return
		}
		j, err := rooms.Join(ctx, token)
		if err != nil {
			charge(r, guesses, err)
			lessonMessage(ctx, w, log, nonce, err)
			return
		}
		if j.State == lesson.Ready {
			http.Redirect(w, r, j.URL, http.StatusFound)
			return
		}
		// The link as written, without a trailing slash: /j/{token}/ is
		// served too, and its status is /j/{token}/status, not …//status.
		link := strings.TrimRight(r.URL.Path, "/")
		p := lessonPage{Title: "TeleKlasa · " + j.GroupName, Nonce: nonce, Student: j.StudentName, Group: j.GroupName,
			StatusPath: link + "/status", JoinPath: link, FirstPoll: 10}
		if j.Unreachable {
			p.FirstPoll, p.Unreachable = 30, true
		}
		renderLesson(ctx, w, log, http.StatusOK, "lesson_wait", p)
	})
}

// JoinStatus is what the waiting page polls, GET /j/{token}/status:
// {"state": "waiting"|"ready"}. One indexed query, no BBB call.
func JoinStatus(log *slog.Logger, rooms *lesson.Rooms, guesses *Guesses) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		release, ok := guesses.hold(w, r)
		if !ok {
			return
		}
		defer release()
		j, err := rooms.Status(r.Context(), chi.URLParam(r, "token"))
		if err != nil {
			charge(r, guesses, err)
			writeError(r.Context(), w, log, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"state": string(j.State)})
	})
}
