// Package hasura is the Hasura v2 wire format as shala sees it: the typed
// bodies of action, event-trigger and cron-trigger calls, the session
// variables they carry, the one writer of action errors, and the middleware
// that checks the shared webhook secret. Decoding is tolerant where Hasura
// varies (both created_at forms, null session variables and trace context,
// absent request_query, unknown keys, numbers sent as strings) and strict
// where a mistake would lose work (event ids, ops, row presence).
package hasura

import (
	"bytes"
	"cmp"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/fault"
)

// Action is the body of POST /actions/{name}. In is the struct of the
// action's arguments as declared in metadata/actions.graphql.
type Action[In any] struct {
	Name    string
	Input   In
	Session SessionVariables
	// RequestQuery is the client's GraphQL document; empty for asynchronous
	// actions (Hasura sends null or omits it).
	RequestQuery string
}

// Async reports whether Hasura called this as an asynchronous action.
func (a *Action[In]) Async() bool { return a.RequestQuery == "" }

type actionWire[In any] struct {
	Action *struct {
		Name string `json:"name"`
	} `json:"action"`
	Input            *In              `json:"input"`
	SessionVariables SessionVariables `json:"session_variables"`
	RequestQuery     *string          `json:"request_query"`
}

// DecodeAction decodes and checks an action body.
func DecodeAction[In any](body []byte) (*Action[In], error) {
	var w actionWire[In]
	if err := decode(body, &w); err != nil {
		return nil, err
	}
	if w.Action == nil || w.Action.Name == "" {
		return nil, fault.Invalidf("action.name", "missing")
	}
	a := &Action[In]{Name: w.Action.Name, Session: w.SessionVariables}
	if w.Input != nil {
		a.Input = *w.Input
	}
	if w.RequestQuery != nil {
		a.RequestQuery = *w.RequestQuery
	}
	return a, nil
}

// Op is the database operation that fired an event trigger.
type Op string

// Event trigger operations. MANUAL is a console "invoke" with the current row
// as New.
const (
	OpInsert Op = "INSERT"
	OpUpdate Op = "UPDATE"
	OpDelete Op = "DELETE"
	OpManual Op = "MANUAL"
)

// TraceContext is the W3C-style trace context Hasura attaches to events.
type TraceContext struct {
	TraceID       string `json:"trace_id"`
	SpanID        string `json:"span_id"`
	SamplingState string `json:"sampling_state,omitempty"`
}

// TableName is a schema-qualified table.
type TableName struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
}

// Event is the body of POST /events/{trigger}. Row is the table's row as
// Hasura serialises it (column names as JSON keys).
type Event[Row any] struct {
	ID           uuid.UUID
	CreatedAt    time.Time
	Trigger      string
	Table        TableName
	CurrentRetry int
	MaxRetries   int
	Op           Op
	Old, New     *Row
	// Session is nil when the write was made by plain SQL, not through
	// Hasura.
	Session SessionVariables
	Trace   *TraceContext
}

// TraceID is the trace id, or "" when Hasura sent no trace context.
func (e *Event[Row]) TraceID() string {
	if e.Trace == nil {
		return ""
	}
	return e.Trace.TraceID
}

type eventWire[Row any] struct {
	ID           string                 `json:"id"`
	CreatedAt    string                 `json:"created_at"`
	Trigger      *struct{ Name string } `json:"trigger"`
	Table        TableName              `json:"table"`
	DeliveryInfo struct {
		CurrentRetry int `json:"current_retry"`
		MaxRetries   int `json:"max_retries"`
	} `json:"delivery_info"`
	Event *struct {
		Op   Op `json:"op"`
		Data struct {
			Old *Row `json:"old"`
			New *Row `json:"new"`
		} `json:"data"`
		SessionVariables SessionVariables `json:"session_variables"`
		TraceContext     *TraceContext    `json:"trace_context"`
	} `json:"event"`
}

// DecodeEvent decodes and checks an event-trigger body: the id must be a
// UUID (it is the idempotency key), the op known, and the rows the op implies
// present.
func DecodeEvent[Row any](body []byte) (*Event[Row], error) {
	var w eventWire[Row]
	if err := decode(body, &w); err != nil {
		return nil, err
	}
	id, err := uuid.Parse(w.ID)
	if err != nil {
		return nil, fault.Invalidf("id", "want a UUID, got %q", w.ID)
	}
	if w.Trigger == nil || w.Trigger.Name == "" {
		return nil, fault.Invalidf("trigger.name", "missing")
	}
	if w.Event == nil {
		return nil, fault.Invalidf("event", "missing")
	}
	e := &Event[Row]{
		ID: id, Trigger: w.Trigger.Name, Table: w.Table,
		CurrentRetry: w.DeliveryInfo.CurrentRetry, MaxRetries: w.DeliveryInfo.MaxRetries,
		Op: w.Event.Op, Old: w.Event.Data.Old, New: w.Event.Data.New,
		Session: w.Event.SessionVariables, Trace: w.Event.TraceContext,
	}
	if w.CreatedAt != "" {
		if e.CreatedAt, err = parseTime(w.CreatedAt); err != nil {
			return nil, fault.Invalidf("created_at", "%v", err)
		}
	}
	switch e.Op {
	case OpInsert, OpManual:
		if e.New == nil {
			return nil, fault.Invalidf("event.data.new", "missing for %s", e.Op)
		}
	case OpUpdate:
		if e.New == nil || e.Old == nil {
			return nil, fault.Invalidf("event.data", "UPDATE needs both old and new")
		}
	case OpDelete:
		if e.Old == nil {
			return nil, fault.Invalidf("event.data.old", "missing for DELETE")
		}
	default:
		return nil, fault.Invalidf("event.op", "want INSERT, UPDATE, DELETE or MANUAL, got %q", e.Op)
	}
	return e, nil
}

// CronEvent is the body of POST /cron/{name}, for cron triggers and one-off
// scheduled events (which have CreatedAt and no Name).
type CronEvent struct {
	ID            uuid.UUID
	Name          string
	ScheduledTime time.Time
	Payload       json.RawMessage
	Comment       string
	CreatedAt     time.Time
}

type cronWire struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	ScheduledTime string          `json:"scheduled_time"`
	Payload       json.RawMessage `json:"payload"`
	Comment       string          `json:"comment"`
	CreatedAt     string          `json:"created_at"`
}

// DecodeCron decodes and checks a cron or scheduled-event body.
func DecodeCron(body []byte) (*CronEvent, error) {
	var w cronWire
	if err := decode(body, &w); err != nil {
		return nil, err
	}
	id, err := uuid.Parse(w.ID)
	if err != nil {
		return nil, fault.Invalidf("id", "want a UUID, got %q", w.ID)
	}
	if w.ScheduledTime == "" {
		return nil, fault.Invalidf("scheduled_time", "missing")
	}
	c := &CronEvent{ID: id, Name: w.Name, Payload: w.Payload, Comment: w.Comment}
	if c.ScheduledTime, err = parseTime(w.ScheduledTime); err != nil {
		return nil, fault.Invalidf("scheduled_time", "%v", err)
	}
	if w.CreatedAt != "" {
		if c.CreatedAt, err = parseTime(w.CreatedAt); err != nil {
			return nil, fault.Invalidf("created_at", "%v", err)
		}
	}
	return c, nil
}

// DecodePayload decodes the cron payload into v; an absent or null payload
// leaves v unchanged.
func (c *CronEvent) DecodePayload(v any) error {
	if len(c.Payload) == 0 || bytes.Equal(c.Payload, []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(c.Payload, v); err != nil {
		return fault.Invalidf("payload", "%v", err)
	}
	return nil
}

// decode unmarshals body, turning JSON errors into messages that name the
// offending field.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fault.Invalidf("body", "empty; want a JSON object")
	}
	// Postgres text cannot hold NUL: refuse it here, naming where it is,
	// instead of failing later with a 500 that Hasura would retry. JSON can
	// carry NUL only escaped (a raw control byte is invalid JSON).
	if bytes.Contains(body, []byte(`\u0000`)) {
		if field := nulField(body); field != "" {
			return fault.Invalidf(field, "contains a NUL character (\\u0000), which shala does not accept")
		}
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return fault.Invalidf("body", "not valid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return fault.Invalidf(field, "want %s, got JSON %s", typ.Type, typ.Value)
	default:
		// Errors from UnmarshalJSON/UnmarshalText methods (a bad UUID, a bad
		// timestamp) carry no field path; find it by decoding field by field.
		if field, ferr := locate(reflect.TypeOf(v), body); field != "" {
			return fault.Invalidf(field, "%v", ferr)
		}
		return fault.Invalidf("body", "%v", err)
	}
}

// nulField returns the JSON path of the first key or string of body that
// holds a NUL character ("input.message", "event.trace_context.trace_id"),
// or "" when there is none or body is not JSON. It reads tokens, so a key
// repeated in an object (which decoding merges) is checked every time.
func nulField(body []byte) string {
	type frame struct {
		object  bool
		key     string // object: the current key
		index   int    // array: the current index
		wantKey bool
	}
	var stack []*frame
	path := func() string {
		parts := make([]string, len(stack))
		for i, f := range stack {
			parts[i] = f.key
			if !f.object {
				parts[i] = strconv.Itoa(f.index)
			}
		}
		return cmp.Or(strings.Join(parts, "."), "body")
	}
	valueDone := func() {
		if n := len(stack); n > 0 {
			if top := stack[n-1]; top.object {
				top.wantKey = true
			} else {
				top.index++
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				stack = append(stack, &frame{object: true, wantKey: true})
			case '[':
				stack = append(stack, &frame{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				top := stack[n-1]
				top.key, top.wantKey = t, false
				if strings.ContainsRune(t, 0) {
					top.key = strconv.Quote(t)
					return path()
				}
				continue
			}
			if strings.ContainsRune(t, 0) {
				return path()
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// locate returns the JSON path of the first value in data that type t
// refuses, and the refusal.
func locate(t reflect.Type, data json.RawMessage) (string, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		if err := json.Unmarshal(data, reflect.New(t).Interface()); err != nil {
			return ".", err
		}
		return "", nil
	}
	join := func(name, sub string) string {
		if sub == "." {
			return name
		}
		return name + "." + sub
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return "", nil
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				if f.Anonymous {
					if p, err := locate(f.Type, data); p != "" {
						return p, err
					}
					continue
				}
				name = f.Name
			}
			for k, raw := range obj {
				if strings.EqualFold(k, name) {
					if p, err := locate(f.Type, raw); p != "" {
						return join(k, p), err
					}
				}
			}
		}
	case reflect.Slice, reflect.Array:
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil {
			return "", nil
		}
		for i, raw := range arr {
			if p, err := locate(t.Elem(), raw); p != "" {
				return join(strconv.Itoa(i), p), err
			}
		}
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) != nil {
			return "", nil
		}
		for k, raw := range obj {
			if p, err := locate(t.Elem(), raw); p != "" {
				return join(k, p), err
			}
		}
	}
	return "", nil
}

// Time is a timestamp as Hasura writes it: RFC 3339 with a zone, or (newer
// servers, created_at) without one, meaning UTC. Use it for timestamp
// columns in event rows.
type Time struct{ time.Time }

var zoneless = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// parseTime reads a timestamp with a zone (RFC 3339, as timestamptz
// columns come) or without one (as the envelope's created_at and timestamp
// columns come), as UTC. It tries first the form s looks like — each
// failed attempt formats an error, and this runs for every delivery — and
// then the other.
func parseTime(s string) (time.Time, error) {
	// After "2006-01-02T15:04:05" only a fraction and a zone can follow.
	zoned := len(s) > 19 && strings.ContainsAny(s[19:], "Z+-")
	if v, ok := parseTimeAs(s, zoned); ok {
		return v, nil
	}
	if v, ok := parseTimeAs(s, !zoned); ok {
		return v, nil
	}
	return time.Time{}, fmt.Errorf("want an ISO 8601 timestamp, got %q", s)
}

// parseTimeAs reads s as RFC 3339 (zoned) or as a zoneless layout, in UTC.
func parseTimeAs(s string, zoned bool) (time.Time, bool) {
	if zoned {
		v, err := time.Parse(time.RFC3339Nano, s)
		return v, err == nil
	}
	for _, layout := range zoneless {
		if v, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return v, true
		}
	}
	return time.Time{}, false
}

// UnmarshalJSON accepts both forms and null.
func (t *Time) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("want a timestamp string, got %s", b)
	}
	t.Time, err = parseTime(s)
	return err
}

// Int64 is a bigint or numeric column that Hasura may send as a JSON number
// or, with stringified numerics, as a string.
type Int64 int64

// UnmarshalJSON accepts 42 and "42".
func (n *Int64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("want an integer, got %s", b)
	}
	*n = Int64(v)
	return nil
}
