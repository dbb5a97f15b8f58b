package web

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/lesson"
)

// Minter mints Hasura JWTs; *auth.Issuer is one.
type Minter interface {
	Mint(subject string, roles []string, defaultRole string, vars map[string]string, ttl time.Duration) (string, error)
}

// ModeratorLink serves a moderator's quick-login link, /m/{token}
// (?g={groupId} deep-links to a group the moderator moderates).
//
// GET answers a small page whose form POSTs back at once: link previews
// (messaging apps fetch every URL they are sent) never POST, so they never
// mint a token. POST mints a Hasura JWT for the moderator — role moderator,
// x-hasura-user-id the moderator's user id, valid for ttl, signed with the
// key HASURA_GRAPHQL_JWT_SECRET names — and redirects (303) to the
// moderators' app with it in the URL fragment, which browsers never send to
// a server: {appURL}#token={jwt}&expires_at={unix}[&group={id}].
// An unknown link is a 404 page (wrong links are limited per IP); without a
// minter or an app URL the link answers 503.
func ModeratorLink(log *slog.Logger, groups *lesson.Groups, minter Minter, appURL string, ttl time.Duration, guesses *Guesses) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		release, ok := guesses.hold(w, r)
		if !ok {
			return
		}
		defer release()
		nonce := pageHeaders(w)
		m, err := groups.ModeratorByLink(ctx, chi.URLParam(r, "token"))
		if err != nil {
			charge(r, guesses, err)
			lessonMessage(ctx, w, log, nonce, err)
			return
		}
		release()
		if r.Method != http.MethodPost {
			renderLesson(ctx, w, log, http.StatusOK, "lesson_signin", lessonPage{Title: "TeleKlasa", Nonce: nonce, Action: r.URL.RequestURI()})
			return
		}
		if minter == nil || appURL == "" {
			lessonMessage(ctx, w, log, nonce, fault.New(fault.Unavailable, "", "moderator links need HASURA_GRAPHQL_JWT_SECRET (HMAC) and SHALA_MODERATOR_APP_URL"))
			return
		}
		frag := url.Values{}
		if g, err := uuid.Parse(r.URL.Query().Get("g")); err == nil {
			// Only a group the moderator moderates; any other is dropped
			// (the sign-in itself still works).
			ok, err := groups.Moderates(ctx, m.ID, g)
			if err != nil {
				lessonMessage(ctx, w, log, nonce, err)
				return
			}
			if ok {
				frag.Set("group", g.String())
			}
		}
		jwt, err := minter.Mint(m.UserID, []string{lesson.RoleModerator}, lesson.RoleModerator,
			map[string]string{"x-hasura-user-id": m.UserID}, ttl)
		if err != nil {
			lessonMessage(ctx, w, log, nonce, err)
			return
		}
		frag.Set("token", jwt)
		frag.Set("expires_at", strconv.FormatInt(time.Now().Add(ttl).Unix(), 10))
		log.InfoContext(ctx, "moderator signed in by quick link", "moderator_id", m.ID)
		http.Redirect(w, r, strings.TrimRight(appURL, "#")+"#"+frag.Encode(), http.StatusSeeOther)
	})
}
