package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/auth"
	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/progress"
)

// SchoolAssessmentsPath is the teacher app's REST listing.
const SchoolAssessmentsPath = "/schools/me/assessments"

// SchoolAssessments serves GET /schools/me/assessments, the app's REST
// twin of the schoolAssessments action: the listing of the school in the
// caller's Hasura JWT (verified as Hasura verifies it; X-Hasura-Role picks
// among its allowed roles, which must give the school role) with an ETag;
// If-None-Match with the current one answers 304 after one indexed read.
// verifier nil (HASURA_GRAPHQL_JWT_SECRET unset) answers 401.
func SchoolAssessments(log *slog.Logger, verifier *auth.Verifier, listings *progress.Store) http.Handler {
	buffers := sync.Pool{New: func() any { return new([]byte) }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		session, err := schoolSession(ctx, verifier, r)
		if err != nil {
			writeError(ctx, w, log, err)
			return
		}
		school, err := session.SchoolID()
		if err != nil {
			writeError(ctx, w, log, err)
			return
		}
		match := ifNoneMatch(r.Header.Values("If-None-Match"))
		if len(match) == 1 && match[0] == "*" {
			// Any listing the client holds: it is this school's, so current.
			if match[0], err = listings.Version(ctx, school); err != nil {
				writeError(ctx, w, log, err)
				return
			}
		}
		l, err := listings.Listing(ctx, school, match...)
		if err != nil {
			writeError(ctx, w, log, err)
			return
		}
		h := w.Header()
		h.Set("ETag", `"`+l.ETag+`"`)
		// Private to the caller; always revalidated (cheap: a 304).
		h.Set("Cache-Control", "private, no-cache")
		h.Set("Vary", "Authorization, X-Hasura-Role")
		if l.NotModified {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		buf := buffers.Get().(*[]byte)
		defer buffers.Put(buf)
		*buf = append(l.AppendJSON((*buf)[:0]), '\n')
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Length", strconv.Itoa(len(*buf)))
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(*buf); err != nil {
			log.DebugContext(ctx, "listing not delivered", "err", err) // the client went away
		}
	})
}

// schoolSession is the session of r's Hasura JWT, which must be the school
// role's.
func schoolSession(ctx context.Context, verifier *auth.Verifier, r *http.Request) (hasura.SessionVariables, error) {
	s, err := hasuraSession(ctx, verifier, r, "sign in with your Hasura JWT")
	if err != nil {
		return nil, err
	}
	if err := s.RequireRole("school"); err != nil {
		return nil, err
	}
	return s, nil
}

// hasuraSession verifies r's Hasura JWT as Hasura would and returns the
// session Hasura would derive for it: the role X-Hasura-Role asks for (the
// token's default without it), which the token must allow. signIn is the
// message for a request without a usable token; jwk_url keys that cannot be
// fetched are fault.Unavailable (try again), not a sign-in to throw away.
func hasuraSession(ctx context.Context, verifier *auth.Verifier, r *http.Request, signIn string) (hasura.SessionVariables, error) {
	if verifier == nil {
		return nil, fault.New(fault.Unauthorized, "", "%s", signIn)
	}
	token, err := verifier.TokenFrom(r)
	if err != nil {
		return nil, fault.Wrap(err, fault.Unauthorized, "", "%s", signIn)
	}
	claims, err := verifier.Verify(ctx, token)
	if errors.Is(err, auth.ErrKeysUnavailable) {
		return nil, fault.Wrap(err, fault.Unavailable, "", "your sign-in cannot be checked right now")
	}
	if err != nil {
		return nil, fault.Wrap(err, fault.Unauthorized, "", "your sign-in is not valid or has expired")
	}
	vars, err := claims.Session(r.Header.Get("X-Hasura-Role"))
	if err != nil {
		return nil, fault.Wrap(err, fault.Forbidden, "", "role %q may not use it", r.Header.Get("X-Hasura-Role"))
	}
	return hasura.SessionVariables(vars), nil
}

// ifNoneMatch lists the entity tags of If-None-Match headers (RFC 9110
// §13.1.2: a comma-separated list, or "*"), weak or strong alike.
func ifNoneMatch(values []string) []string {
	var tags []string
	for _, v := range values {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t == "*" {
				return []string{"*"}
			} else if t != "" && len(tags) < 16 {
				tags = append(tags, progress.Opaque(t))
			}
		}
	}
	return tags
}
