// Package web serves shala's public HTTP endpoints that are not Hasura
// webhooks: exam answer uploads by code (plain multipart and tus resumable
// uploads), their status, verification by code and the signed download
// links. One file per endpoint group; each maker takes exactly what it
// uses. Errors are answered as JSON {"message", "extensions": {"code"}},
// the shape apps already read from actions, by writeError.
package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/ratelimit"
)

// RetryAfterSeconds is sent with 503: the blob store or the database is
// failing; an upload tried again a little later will likely work.
const RetryAfterSeconds = 30

// errorBody is the JSON of every error this package answers: the shape
// apps already read from actions.
type errorBody struct {
	Message    string `json:"message"`
	Extensions struct {
		Code  fault.Code `json:"code"`
		Field string     `json:"field,omitempty"`
	} `json:"extensions"`
}

func newErrorBody(f *fault.Error) errorBody {
	var b errorBody
	b.Message, b.Extensions.Code, b.Extensions.Field = f.Message, f.Code, f.Field
	return b
}

// writeError is the one place a public endpoint's error becomes a
// response: a known error (*fault.Error) is its status with {"message",
// "extensions": {"code", "field"}}; anything else is logged and answered
// with a generic 500. An unavailable dependency is 503 with Retry-After
// (its message kept when it is written for people, as the blob store's
// is; a bare database outage says only "temporarily unavailable").
func writeError(ctx context.Context, w http.ResponseWriter, log *slog.Logger, err error) {
	f := fault.As(err)
	b := newErrorBody(f)
	switch f.Kind {
	case fault.Internal:
		log.ErrorContext(ctx, "request failed", "err", err)
		b.Message = "internal error"
	case fault.Unavailable:
		log.WarnContext(ctx, "request failed: dependency unavailable", "err", err)
		if f.Code == fault.CodeUnavailable {
			b.Message = "temporarily unavailable; try again shortly"
		}
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	case fault.Unauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="shala"`)
		log.InfoContext(ctx, "request refused", "code", f.Code, "err", err)
	default:
		log.InfoContext(ctx, "request refused", "code", f.Code, "err", f.Message)
	}
	writeJSON(w, httperr.Status(f.Kind), b)
}

// writeJSON writes v (an error body or a small answer) as JSON; a failed
// write means the client is gone, with nothing left to tell it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil { // the package's own types: strings, numbers, times
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Del("Content-Disposition")
	w.WriteHeader(status)
	w.Write(append(b, '\n')) // a failed write means the client is gone: nothing left to tell it
}

// Guess limits: wrong codes a client may try. A student who mistypes
// their code a few times never notices; someone enumerating codes gets
// GuessRate guesses per second per IP (per /64 for IPv6) after the burst.
const (
	GuessRate  = 1.0 / 30 // one wrong code per 30 s …
	GuessBurst = 10       // … after 10 at once
)

// Guesses counts wrong upload and verification codes per client IP. A
// client out of guesses is answered 429 before its code is even looked up,
// so a hit cannot be told from a miss once the budget is spent; a code being
// looked up holds one of the client's guesses, so requests sent at once
// look up no more codes than it has guesses left. It is per process, like
// every shala rate limit.
type Guesses struct{ lim *ratelimit.PerIP }

// NewGuesses returns the guess counter code endpoints share.
func NewGuesses() *Guesses { return &Guesses{lim: ratelimit.New(GuessRate, GuessBurst)} }

// hold answers 429 with Retry-After if r's client has no guess left, and
// otherwise holds one while its code is looked up (waiting, when all it has
// left are held, for a look-up to end). The caller defers release; a wrong
// code is charged (wrong, refuse) before it runs.
func (g *Guesses) hold(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, ok = g.lim.Hold(r.Context(), ratelimit.ClientKey(r), time.Now())
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(g.lim.RetryAfter()))
		// In the route's format: a page on the pages phones open.
		httperr.Write(w, r, fault.New(fault.RateLimited, "", "too many tries; try again shortly"))
	}
	return release, ok
}

// wrong charges r's client one guess.
func (g *Guesses) wrong(r *http.Request) {
	g.lim.Allow(ratelimit.ClientKey(r), time.Now())
}

// refuse writes err, charging a guess when it says the code opens nothing.
func (g *Guesses) refuse(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if fault.KindOf(err) == fault.NotFound {
		g.wrong(r)
	}
	writeError(r.Context(), w, log, err)
}

func timePtr(t time.Time) *time.Time { return &t }
