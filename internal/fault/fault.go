// Package fault is shala's one error vocabulary. Domain packages return a
// *fault.Error for anything the caller did wrong or must know about (bad
// input, missing row, conflict, expired link); every other error is internal.
// The HTTP edges turn a Kind into a status code (internal/httperr, and each
// wire format's writer: hasura, openrosa) and a Code into the stable
// `extensions.code` apps branch on; this package knows nothing of HTTP.
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller should do about it.
type Kind int

// Kinds. The HTTP edges give each a status (internal/httperr); the
// comments say which.
const (
	Internal      Kind = iota // 500: a bug or an outage; details are logged, not shown
	Invalid                   // 400: the input is wrong; the message names the field
	Unauthorized              // 401: no or wrong credentials
	Forbidden                 // 403: authenticated, not allowed
	NotFound                  // 404
	Conflict                  // 409: clashes with existing state (duplicate, edited concurrently)
	Gone                      // 410: existed, expired or deleted
	TooLarge                  // 413
	Unprocessable             // 422: well-formed but refused by a rule (limits, state)
	RateLimited               // 429
	Unavailable               // 503: a dependency is down; retrying later may work
	Unsupported               // 415: a file whose type is not accepted
)

// Code is a stable, SCREAMING_SNAKE error code: the `extensions.code` apps
// branch on. Every code shala can emit is a constant of this type — the
// common ones below, domain-specific ones in their domain package — and the
// README's contract lists them all.
type Code string

// Codes every package may use; each Kind has a default.
const (
	CodeInternal      Code = "INTERNAL"
	CodeInvalidInput  Code = "INVALID_INPUT"
	CodeUnauthorized  Code = "UNAUTHORIZED"
	CodeForbidden     Code = "FORBIDDEN"
	CodeNotFound      Code = "NOT_FOUND"
	CodeConflict      Code = "CONFLICT"
	CodeGone          Code = "GONE"
	CodeTooLarge      Code = "TOO_LARGE"
	CodeUnprocessable Code = "UNPROCESSABLE"
	CodeRateLimited   Code = "RATE_LIMITED"
	CodeUnavailable   Code = "UNAVAILABLE"
	// CodeBodyTooLarge refuses a request body over its route's limit.
	CodeBodyTooLarge Code = "BODY_TOO_LARGE"
	CodeUnsupported  Code = "UNSUPPORTED_TYPE"
)

var defaultCodes = map[Kind]Code{
	Internal:      CodeInternal,
	Invalid:       CodeInvalidInput,
	Unauthorized:  CodeUnauthorized,
	Forbidden:     CodeForbidden,
	NotFound:      CodeNotFound,
	Conflict:      CodeConflict,
	Gone:          CodeGone,
	TooLarge:      CodeTooLarge,
	Unprocessable: CodeUnprocessable,
	RateLimited:   CodeRateLimited,
	Unavailable:   CodeUnavailable,
	Unsupported:   CodeUnsupported,
}

// Error is an error the caller may see. Message is written for the person
// using the app and never contains secrets; Err, if set, is the cause and is
// only logged.
type Error struct {
	Kind    Kind
	Code    Code // stable; apps branch on it
	Message string
	Field   string // input path the error is about, e.g. "input.message"
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with the given code (or the kind's default
// code when code is empty).
func New(k Kind, code Code, format string, args ...any) *Error {
	if code == "" {
		code = defaultCodes[k]
	}
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalidf reports bad input in field. The message starts with the field so
// the person filling a form knows which one to fix.
func Invalidf(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Code: defaultCodes[Invalid], Field: field,
		Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k that keeps err as its cause.
func Wrap(err error, k Kind, code Code, format string, args ...any) *Error {
	e := New(k, code, format, args...)
	e.Err = err
	return e
}

// As returns the *Error in err's chain; for any other error it returns an
// Internal error with a generic message that keeps err as the cause.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: Internal, Code: defaultCodes[Internal], Message: "internal error", Err: err}
}

// KindOf is the kind of err (Internal unless err wraps an *Error).
func KindOf(err error) Kind { return As(err).Kind }
