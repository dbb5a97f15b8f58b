package hasura

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"reflect"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
	"github.com/shala-edu/shala/internal/logging"
	"github.com/shala-edu/shala/internal/postgres"
)

// SecretHeader carries the shared secret on every Hasura → shala call.
const SecretHeader = "X-Shala-Webhook-Secret"

// RequireSecret rejects requests whose X-Shala-Webhook-Secret header is not
// secret (compared in constant time) with 401 in Hasura's error format.
// An empty secret rejects everything rather than accepting everything.
func RequireSecret(secret string) func(http.Handler) http.Handler {
	want := []byte(secret)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got := []byte(r.Header.Get(SecretHeader))
			if len(want) == 0 || subtle.ConstantTimeCompare(got, want) != 1 {
				WriteError(w, r, fault.New(fault.Unauthorized, "", "missing or wrong %s", SecretHeader))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ActionFunc does the work of one action and returns its output.
type ActionFunc[In, Out any] func(ctx context.Context, a *Action[In]) (Out, error)

// ActionHandler serves POST /actions/{name}: decode, validate, call, answer
// in Hasura's format. It also reports its input and output types so the
// metadata check can compare them with actions.graphql.
type ActionHandler[In, Out any] struct {
	name string
	log  *slog.Logger
	fn   ActionFunc[In, Out]
}

// NewAction returns the handler for action name. If In has a
// `Validate() error` method it runs before fn.
func NewAction[In, Out any](name string, log *slog.Logger, fn ActionFunc[In, Out]) *ActionHandler[In, Out] {
	return &ActionHandler[In, Out]{name: name, log: log, fn: fn}
}

// Name is the action's name.
func (h *ActionHandler[In, Out]) Name() string { return h.name }

// Types are the Go types of the action's arguments and output.
func (h *ActionHandler[In, Out]) Types() (in, out reflect.Type) {
	return reflect.TypeFor[In](), reflect.TypeFor[Out]()
}

func (h *ActionHandler[In, Out]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := logging.With(r.Context(), "action", h.name)
	out, err := h.serve(ctx, r)
	if err != nil {
		WriteActionError(ctx, w, h.log, err)
		return
	}
	SetOutcome(ctx, "ok")
	writeJSON(w, http.StatusOK, out)
}

func (h *ActionHandler[In, Out]) serve(ctx context.Context, r *http.Request) (out Out, err error) {
	body, err := readBody(r)
	if err != nil {
		return out, err
	}
	a, err := DecodeAction[In](body)
	if err != nil {
		return out, err
	}
	if a.Name != h.name {
		return out, fault.Invalidf("action.name", "got %q at the endpoint of %q", a.Name, h.name)
	}
	if v, ok := any(&a.Input).(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return out, err
		}
	}
	return h.fn(ctx, a)
}

// Ack is the 2xx body of an event or cron delivery.
type Ack struct {
	// Duplicate is true when this delivery had been acknowledged before and
	// nothing was done again.
	Duplicate bool   `json:"duplicate"`
	Detail    string `json:"detail,omitempty"`
}

// EventFunc records the work an event implies (durably, before returning).
type EventFunc[Row any] func(ctx context.Context, e *Event[Row]) (Ack, error)

// EventHandler serves POST /events/{trigger}.
type EventHandler[Row any] struct {
	trigger string
	log     *slog.Logger
	fn      EventFunc[Row]
}

// NewEvent returns the handler for event trigger name.
func NewEvent[Row any](trigger string, log *slog.Logger, fn EventFunc[Row]) *EventHandler[Row] {
	return &EventHandler[Row]{trigger: trigger, log: log, fn: fn}
}

// Name is the trigger's name.
func (h *EventHandler[Row]) Name() string { return h.trigger }

// RowType is the Go type of the table's row.
func (h *EventHandler[Row]) RowType() reflect.Type { return reflect.TypeFor[Row]() }

func (h *EventHandler[Row]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := logging.With(r.Context(), "trigger", h.trigger)
	body, err := readBody(r)
	if err != nil {
		writeDeliveryError(ctx, w, h.log, err)
		return
	}
	e, err := DecodeEvent[Row](body)
	if err != nil {
		writeDeliveryError(ctx, w, h.log, err)
		return
	}
	ids := append(make([]any, 0, 8), "event_id", e.ID.String(), "op", string(e.Op), "retry", e.CurrentRetry)
	if tid := e.TraceID(); tid != "" {
		ids = append(ids, "trace_id", tid)
	}
	ctx = logging.With(ctx, ids...)
	if e.Trigger != h.trigger {
		writeDeliveryError(ctx, w, h.log, fault.Invalidf("trigger.name", "got %q at the endpoint of %q", e.Trigger, h.trigger))
		return
	}
	ack, err := h.fn(ctx, e)
	writeAck(ctx, w, h.log, ack, err)
}

// CronFunc records the work a cron delivery implies.
type CronFunc func(ctx context.Context, c *CronEvent) (Ack, error)

// CronHandler serves POST /cron/{name}.
type CronHandler struct {
	name string
	log  *slog.Logger
	fn   CronFunc
}

// NewCron returns the handler for cron trigger name.
func NewCron(name string, log *slog.Logger, fn CronFunc) *CronHandler {
	return &CronHandler{name: name, log: log, fn: fn}
}

// Name is the cron trigger's name.
func (h *CronHandler) Name() string { return h.name }

func (h *CronHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := logging.With(r.Context(), "cron", h.name)
	body, err := readBody(r)
	if err != nil {
		writeDeliveryError(ctx, w, h.log, err)
		return
	}
	c, err := DecodeCron(body)
	if err != nil {
		writeDeliveryError(ctx, w, h.log, err)
		return
	}
	ctx = logging.With(ctx, "event_id", c.ID.String())
	if c.Name != "" && c.Name != h.name {
		writeDeliveryError(ctx, w, h.log, fault.Invalidf("name", "got %q at the endpoint of %q", c.Name, h.name))
		return
	}
	ack, err := h.fn(ctx, c)
	writeAck(ctx, w, h.log, ack, err)
}

func writeAck(ctx context.Context, w http.ResponseWriter, log *slog.Logger, ack Ack, err error) {
	if err != nil {
		writeDeliveryError(ctx, w, log, err)
		return
	}
	if ack.Duplicate {
		SetOutcome(ctx, "duplicate")
		log.InfoContext(ctx, "duplicate delivery acknowledged")
	} else {
		SetOutcome(ctx, "ok")
	}
	writeJSON(w, http.StatusOK, ack)
}

// RetryAfterSeconds is the Retry-After sent when a dependency is down. Hasura
// honours it over retry_conf, so an outage delays events instead of
// exhausting their retries.
const RetryAfterSeconds = "10"

// ActionRetryStatus is the status of an action that failed because a
// dependency is down (code UNAVAILABLE, with Retry-After). Hasura passes
// only 4xx bodies through to the app — a 503 reaches it as a generic
// "internal error" — and 429 is the 4xx that says "try again later", so the
// app can tell this from a bug. Events and crons keep 503, which Hasura
// honours with Retry-After.
const ActionRetryStatus = http.StatusTooManyRequests

// WriteActionError is the one place an action error becomes a response:
// known errors (*fault.Error) become 4xx `{"message","extensions":{"code"}}`
// that reach the GraphQL client as they are — a dependency that is down
// too, as ActionRetryStatus with code UNAVAILABLE and Retry-After; anything
// else is logged with the request's ids and answered with a generic 500.
func WriteActionError(ctx context.Context, w http.ResponseWriter, log *slog.Logger, err error) {
	f := asFault(err)
	SetOutcome(ctx, outcomeFor(f.Kind))
	switch f.Kind {
	case fault.Internal:
		log.ErrorContext(ctx, "action failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody("internal error", f.Code, ""))
	case fault.Unavailable:
		log.WarnContext(ctx, "action failed: dependency unavailable", "err", err)
		w.Header().Set("Retry-After", RetryAfterSeconds)
		writeJSON(w, ActionRetryStatus, errorBody(f.Message+"; try again shortly", f.Code, ""))
	default:
		log.InfoContext(ctx, "action refused", "code", f.Code, "err", f.Message)
		writeJSON(w, httperr.Status(f.Kind), errorBody(f.Message, f.Code, f.Field))
	}
}

// writeDeliveryError answers an event or cron delivery that was not
// recorded. Never 2xx: Hasura must keep the event. Unavailable dependencies
// get 503 with Retry-After so Hasura retries until they are back.
func writeDeliveryError(ctx context.Context, w http.ResponseWriter, log *slog.Logger, err error) {
	f := asFault(err)
	SetOutcome(ctx, outcomeFor(f.Kind))
	switch f.Kind {
	case fault.Internal:
		log.ErrorContext(ctx, "delivery failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody("internal error", f.Code, ""))
	case fault.Unavailable:
		log.WarnContext(ctx, "delivery not recorded: dependency unavailable", "err", err)
		w.Header().Set("Retry-After", RetryAfterSeconds)
		writeJSON(w, http.StatusServiceUnavailable, errorBody(f.Message, f.Code, ""))
	default:
		log.WarnContext(ctx, "delivery refused", "code", f.Code, "err", f.Message)
		writeJSON(w, httperr.Status(f.Kind), errorBody(f.Message, f.Code, f.Field))
	}
}

// asFault is err as a fault. An error that is not one but means the
// database (or a connection, or a deadline) failed — a store that returned
// the driver's error as it is — is Unavailable: the caller is told to try
// again, never shown a bug, whichever store code it came from.
func asFault(err error) *fault.Error {
	f := fault.As(err)
	if f.Kind == fault.Internal && postgres.Unavailable(err) {
		return fault.As(fault.Wrap(err, fault.Unavailable, "", "temporarily unavailable"))
	}
	return f
}

// WriteError is the httperr.Writer of Hasura's routes: what middleware
// answer before a handler runs (wrong secret, body too large, unknown name,
// a panic, which they log themselves) in Hasura's error format, with the
// call's outcome recorded for the metrics.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	f := fault.As(err)
	SetOutcome(r.Context(), outcomeFor(f.Kind))
	msg := f.Message
	if f.Kind == fault.Internal {
		msg = "internal error"
	}
	if f.Kind == fault.Unavailable {
		w.Header().Set("Retry-After", RetryAfterSeconds)
	}
	writeJSON(w, httperr.Status(f.Kind), errorBody(msg, f.Code, f.Field))
}

func outcomeFor(k fault.Kind) string {
	switch k {
	case fault.Internal:
		return "error"
	case fault.Unavailable:
		return "unavailable"
	case fault.TooLarge:
		return "too_large"
	case fault.Unauthorized, fault.Forbidden:
		return "unauthorized"
	default:
		return "invalid"
	}
}

// ErrorBody is Hasura's action error format.
type ErrorBody struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

func errorBody(msg string, code fault.Code, field string) ErrorBody {
	ext := map[string]any{"code": code}
	if field != "" {
		ext["field"] = field
	}
	return ErrorBody{Message: msg, Extensions: ext}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client is gone if this fails; nothing to do
}

// ActionBodyLimit is the body limit of an action whose largest argument
// may be n bytes: JSON escaping at most doubles an argument, and a query
// that writes it inline carries it twice (input and request_query); 64 KiB
// is room for the rest of the envelope.
func ActionBodyLimit(n int64) int64 { return 2*2*n + 64<<10 }

// readBody reads the (capped) request body.
func readBody(r *http.Request) ([]byte, error) {
	// One buffer sized for the declared length (and the read that finds
	// the end), instead of the buffers io.ReadAll grows and copies. A
	// declared length over preallocBody is not believed in advance: the
	// buffer then grows as the body comes, up to the route's cap
	// (http.MaxBytesReader).
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= preallocBody {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r.Body)
	body := buf.Bytes()
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, fault.New(fault.TooLarge, fault.CodeBodyTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	}
	if err != nil {
		return nil, fault.Wrap(err, fault.Invalid, "", "body: could not be read")
	}
	return body, nil
}

// preallocBody is the largest declared Content-Length readBody allocates
// up front, so a client cannot make shala allocate what it only claims to
// send.
const preallocBody = 1 << 20

type outcomeKey struct{}

// TrackOutcome returns a context in which handlers can record the outcome of
// a webhook call (ok, duplicate, invalid, …) and a function that reads it;
// the metrics middleware uses it to count calls by outcome.
func TrackOutcome(ctx context.Context) (context.Context, func() string) {
	p := new(string)
	return context.WithValue(ctx, outcomeKey{}, p), func() string { return *p }
}

// SetOutcome records the outcome of the current call, if tracked.
func SetOutcome(ctx context.Context, outcome string) {
	if p, ok := ctx.Value(outcomeKey{}).(*string); ok {
		*p = outcome
	}
}
