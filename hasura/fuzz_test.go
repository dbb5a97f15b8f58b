package hasura_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
)

// The fuzz targets decode arbitrary bodies the way the edge does and check
// what the handlers rely on: decoding never panics; a refusal is a 400-kind
// fault naming a field; and what decodes holds no string Postgres would
// refuse (NUL, invalid UTF-8). Run them with, e.g.,
//
//	go test -fuzz FuzzDecodeEvent -fuzztime 2m ./hasura
//
// The corpus found so far is kept in testdata/fuzz and runs with every
// `go test`.

// fuzzInput has the shapes action arguments take: strings, numbers, lists,
// nested objects, free JSON and types with their own decoders.
type fuzzInput struct {
	Message  string         `json:"message"`
	Count    int            `json:"count"`
	Ratio    *float64       `json:"ratio"`
	Tags     []string       `json:"tags"`
	ID       uuid.UUID      `json:"id"`
	When     hasura.Time    `json:"when"`
	Big      hasura.Int64   `json:"big"`
	Nested   *fuzzInput     `json:"nested"`
	Metadata map[string]any `json:"metadata"`
}

func fuzzSeeds(f *testing.F, prefixes ...string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		for _, p := range prefixes {
			if strings.HasPrefix(filepath.Base(file), p) {
				b, err := os.ReadFile(file)
				if err != nil {
					f.Fatal(err)
				}
				f.Add(b)
			}
		}
	}
}

// checkRefusal: every error is bad input with a field, never a 500.
func checkRefusal(t *testing.T, body []byte, err error) {
	t.Helper()
	var fe *fault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("%q: got %T %v, want a *fault.Error", body, err, err)
	}
	if fe.Kind != fault.Invalid || fe.Field == "" || !strings.HasPrefix(fe.Message, fe.Field+": ") {
		t.Fatalf("%q: got kind %v field %q message %q, want Invalid naming its field", body, fe.Kind, fe.Field, fe.Message)
	}
}

// checkStorable walks v and fails on any string Postgres text cannot hold.
func checkStorable(t *testing.T, body []byte, v reflect.Value, path string) {
	t.Helper()
	bad := func(s, where string) {
		if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
			t.Fatalf("%q decoded with %s = %q: a NUL or invalid UTF-8 got through", body, where, s)
		}
	}
	switch v.Kind() {
	case reflect.String:
		bad(v.String(), path)
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			checkStorable(t, body, v.Elem(), path)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				checkStorable(t, body, v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			checkStorable(t, body, v.Index(i), path+"[]")
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			checkStorable(t, body, it.Key(), path+" key")
			checkStorable(t, body, it.Value(), path+"."+it.Key().String())
		}
	}
}

func FuzzDecodeAction(f *testing.F) {
	fuzzSeeds(f, "action_request")
	f.Add([]byte(`{"action":{"name":"ping"},"input":{"message":"a\u0000"},"session_variables":{"x-hasura-role":"school"}}`))
	f.Add([]byte(`{"action":{"name":"ping"},"input":{"message":"x"},"input":{"tags":["\u0000"]}}`))
	f.Add([]byte(`{"action":{"name":"p"},"input":{"nested":{"metadata":{"k\u0000":1}},"id":"not-a-uuid"}}`))
	f.Add([]byte(`{"action":{"name":"p"},"session_variables":{"X-Hasura-User-Id":7,"x-hasura-role":null},"input":{"when":"2026-11-22 10:00:00","big":"42"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := hasura.DecodeAction[fuzzInput](body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		if a.Name == "" {
			t.Fatalf("%q: decoded an action without a name", body)
		}
		checkStorable(t, body, reflect.ValueOf(a), "action")
	})
}

func FuzzDecodeEvent(f *testing.F) {
	fuzzSeeds(f, "event_")
	f.Add([]byte(`{"id":"5b0a9c1e-2f3d-4a5b-8c7d-1e2f3a4b5c6d","trigger":{"name":"t"},"event":{"op":"INSERT","data":{"new":{"message":"x"}},"trace_context":{"trace_id":"\u0000"}}}`))
	f.Add([]byte(`{"id":"5b0a9c1e-2f3d-4a5b-8c7d-1e2f3a4b5c6d","trigger":{"name":"t"},"event":{"op":"UPDATE","data":{"old":{},"new":{"tags":[1]}},"session_variables":{"x":"\u0000"}}}`))
	f.Add([]byte(`{"id":"x","created_at":"2026-11-22T10:15:30.123456","event":{"op":"DELETE","data":{"old":null}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := hasura.DecodeEvent[fuzzInput](body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		if e.ID == uuid.Nil && !strings.Contains(string(body), uuid.Nil.String()) || e.Trigger == "" {
			t.Fatalf("%q: decoded an event without its id or trigger: %+v", body, e)
		}
		checkStorable(t, body, reflect.ValueOf(e), "event")
	})
}

func FuzzDecodeCron(f *testing.F) {
	fuzzSeeds(f, "cron_", "oneoff_")
	f.Add([]byte(`{"id":"5b0a9c1e-2f3d-4a5b-8c7d-1e2f3a4b5c6d","name":"reconcile","scheduled_time":"2026-11-22T10:20:00Z","payload":{"k":"\u0000"}}`))
	f.Add([]byte(`{"id":"5b0a9c1e-2f3d-4a5b-8c7d-1e2f3a4b5c6d","scheduled_time":"2026-11-22 10:20:00","comment":"x\u0000"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := hasura.DecodeCron(body)
		if err != nil {
			checkRefusal(t, body, err)
			return
		}
		if c.ScheduledTime.IsZero() {
			t.Fatalf("%q: decoded a cron event without its scheduled time", body)
		}
		// The payload stays raw JSON: it must not hide a NUL either.
		if strings.Contains(string(c.Payload), `\u0000`) {
			var m map[string]any
			if err := c.DecodePayload(&m); err == nil {
				checkStorable(t, body, reflect.ValueOf(m), "payload")
			}
		}
		checkStorable(t, body, reflect.ValueOf(c).Elem(), "cron")
	})
}
