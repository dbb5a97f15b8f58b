// Package httperr is where shala's error kinds meet HTTP: the status each
// fault.Kind answers with, and the error writer of the route a request is
// on, so that middleware answering on their own (panic recovery, body cap,
// rate limit) speak the route's wire format — Hasura's JSON on Hasura's
// routes, OpenRosa XML to ODK Collect. Domain packages return *fault.Error
// and never see any of this.
package httperr

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/shala-edu/shala/internal/fault"
)

var statuses = map[fault.Kind]int{
	fault.Internal:      http.StatusInternalServerError,
	fault.Invalid:       http.StatusBadRequest,
	fault.Unauthorized:  http.StatusUnauthorized,
	fault.Forbidden:     http.StatusForbidden,
	fault.NotFound:      http.StatusNotFound,
	fault.Conflict:      http.StatusConflict,
	fault.Gone:          http.StatusGone,
	fault.TooLarge:      http.StatusRequestEntityTooLarge,
	fault.Unprocessable: http.StatusUnprocessableEntity,
	fault.RateLimited:   http.StatusTooManyRequests,
	fault.Unavailable:   http.StatusServiceUnavailable,
	fault.Unsupported:   http.StatusUnsupportedMediaType,
}

// Status is the HTTP status an error of kind k answers with, unless a wire
// format says otherwise (Hasura actions answer Unavailable with a 4xx).
func Status(k fault.Kind) int {
	if s, ok := statuses[k]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Writer answers err in one wire format.
type Writer func(w http.ResponseWriter, r *http.Request, err error)

type slotKey struct{}

// Track prepares r's context to learn the writer of the route it is
// routed to (Use), so that middleware in front of the router (panic
// recovery) answer in the route's format too. Install it first.
func Track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), slotKey{}, new(Writer))))
	})
}

// Use makes write the error writer of the routes below it.
func Use(write Writer) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slot, ok := r.Context().Value(slotKey{}).(*Writer); ok {
				*slot = write
			} else {
				r = r.WithContext(context.WithValue(r.Context(), slotKey{}, &write))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Write answers err with the writer of r's route (Use), or with JSON when
// the route has none.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	if slot, ok := r.Context().Value(slotKey{}).(*Writer); ok && *slot != nil {
		(*slot)(w, r, err)
		return
	}
	JSON(w, r, err)
}

// JSON is the plain JSON writer: `{"message", "extensions": {"code",
// "field"}}` — the same shape as Hasura's action errors, so an app reads
// both alike. Internal errors answer a generic message (log them first).
func JSON(w http.ResponseWriter, r *http.Request, err error) {
	f := fault.As(err)
	msg := f.Message
	if f.Kind == fault.Internal {
		msg = "internal error"
	}
	ext := map[string]any{"code": f.Code}
	if f.Field != "" {
		ext["field"] = f.Field
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(Status(f.Kind))
	// The client is gone if this fails; there is no one left to tell.
	_ = json.NewEncoder(w).Encode(map[string]any{"message": msg, "extensions": ext})
}
