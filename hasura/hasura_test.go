package hasura_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/hasura"
	"github.com/shala-edu/shala/internal/fault"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type loginInput struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginOutput struct {
	AccessToken string `json:"accessToken"`
	UserID      int    `json:"userId"`
}

func TestDecodeSyncAction(t *testing.T) {
	t.Parallel()
	a, err := hasura.DecodeAction[loginInput](fixture(t, "action_request_sync.json"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "UserLogin" || a.Input.Username != "jake" || a.Input.Password != "secretpassword" {
		t.Errorf("got %+v", a)
	}
	if a.Session.Role() != "user" || a.Session.UserID() != "423" {
		t.Errorf("session: got role %q user %q, want user 423", a.Session.Role(), a.Session.UserID())
	}
	if a.Async() || !strings.Contains(a.RequestQuery, "UserLogin") {
		t.Errorf("request_query %q, async %v: want the query and sync", a.RequestQuery, a.Async())
	}
}

func TestDecodeAsyncActionWithNestedInput(t *testing.T) {
	t.Parallel()
	type order struct {
		Input struct {
			ProductID hasura.Int64 `json:"product_id"`
			Quantity  int          `json:"quantity"`
		} `json:"input"`
	}
	a, err := hasura.DecodeAction[order](fixture(t, "action_request_async.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Async() {
		t.Error("request_query null: want Async")
	}
	if a.Input.Input.ProductID != 12 || a.Input.Input.Quantity != 2 {
		t.Errorf("input %+v, want product 12 quantity 2", a.Input)
	}
	// request_query absent altogether is async too.
	var m map[string]any
	_ = json.Unmarshal(fixture(t, "action_request_async.json"), &m)
	delete(m, "request_query")
	body, _ := json.Marshal(m)
	if a, err := hasura.DecodeAction[order](body); err != nil || !a.Async() {
		t.Errorf("absent request_query: got %v, %v; want async", a, err)
	}
}

type orderRow struct {
	ID         hasura.Int64   `json:"id"`
	CustomerID hasura.Int64   `json:"customer_id"`
	Total      float64        `json:"total"`
	Status     string         `json:"status"`
	PlacedAt   *hasura.Time   `json:"placed_at"`
	Meta       map[string]any `json:"meta"`
}

func TestDecodeEvents(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file        string
		op          hasura.Op
		created     time.Time
		retry       int
		wantOld     bool
		wantNew     bool
		wantSession bool
		traceID     string
	}{
		{"event_insert_latest.json", hasura.OpInsert, time.Date(2024, 5, 1, 10, 15, 30, 123456000, time.UTC), 0, false, true, true, "0af7651916cd43dd8448eb211c80319c"},
		{"event_delete_raw_sql.json", hasura.OpDelete, time.Date(2024, 5, 1, 11, 0, 0, 1000, time.UTC), 0, true, false, false, ""},
		{"event_manual.json", hasura.OpManual, time.Date(2024, 5, 1, 12, 0, 0, 500000000, time.UTC), 0, false, true, true, "22222222222222222222222222222222"},
		{"event_update_retry_legacy_utc.json", hasura.OpUpdate, time.Date(2018, 9, 5, 7, 14, 21, 601701000, time.UTC), 1, true, true, true, "4bf92f3577b34da6"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			e, err := hasura.DecodeEvent[orderRow](fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if e.Op != tt.op {
				t.Errorf("op %s, want %s", e.Op, tt.op)
			}
			if !e.CreatedAt.Equal(tt.created) {
				t.Errorf("created_at %v, want %v", e.CreatedAt, tt.created)
			}
			if e.CurrentRetry != tt.retry {
				t.Errorf("current_retry %d, want %d", e.CurrentRetry, tt.retry)
			}
			if (e.Old != nil) != tt.wantOld || (e.New != nil) != tt.wantNew {
				t.Errorf("old %v new %v, want old=%v new=%v", e.Old, e.New, tt.wantOld, tt.wantNew)
			}
			if (e.Session != nil) != tt.wantSession {
				t.Errorf("session %v, want present=%v", e.Session, tt.wantSession)
			}
			if e.TraceID() != tt.traceID {
				t.Errorf("trace id %q, want %q", e.TraceID(), tt.traceID)
			}
			if e.Table.Name != "orders" || e.Table.Schema != "public" {
				t.Errorf("table %+v", e.Table)
			}
		})
	}
}

func TestDecodeEventRowValues(t *testing.T) {
	t.Parallel()
	e, err := hasura.DecodeEvent[orderRow](fixture(t, "event_insert_latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := e.New
	if n.ID != 42 || n.CustomerID != 7 || n.Total != 19.99 || n.Status != "new" || n.Meta["src"] != "web" {
		t.Errorf("row %+v", n)
	}
	if want := time.Date(2024, 5, 1, 10, 15, 30, 123456000, time.UTC); !n.PlacedAt.Equal(want) {
		t.Errorf("placed_at %v, want %v", n.PlacedAt, want)
	}
}

func TestDecodeEventToleratesUnknownKeysAndStringNumbers(t *testing.T) {
	t.Parallel()
	var m map[string]any
	_ = json.Unmarshal(fixture(t, "event_insert_latest.json"), &m)
	m["future_field"] = map[string]any{"x": 1}
	ev := m["event"].(map[string]any)
	ev["new_thing"] = true
	row := ev["data"].(map[string]any)["new"].(map[string]any)
	row["id"] = "42" // stringified bigint
	row["extra_column"] = "ignored"
	body, _ := json.Marshal(m)
	e, err := hasura.DecodeEvent[orderRow](body)
	if err != nil {
		t.Fatal(err)
	}
	if e.New.ID != 42 {
		t.Errorf("id %d, want 42", e.New.ID)
	}
}

func TestDecodeEventRefusesWhatWouldLoseWork(t *testing.T) {
	t.Parallel()
	base := fixture(t, "event_insert_latest.json")
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(base, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name, field string
		body        []byte
	}{
		{"not json", "body", []byte("<xml/>")},
		{"empty", "body", nil},
		{"id not uuid", "id", mutate(func(m map[string]any) { m["id"] = "42" })},
		{"id wrong type", "id", mutate(func(m map[string]any) { m["id"] = 42 })},
		{"bad op", "event.op", mutate(func(m map[string]any) { m["event"].(map[string]any)["op"] = "TRUNCATE" })},
		{"insert without new", "event.data.new", mutate(func(m map[string]any) {
			m["event"].(map[string]any)["data"].(map[string]any)["new"] = nil
		})},
		{"no trigger", "trigger.name", mutate(func(m map[string]any) { delete(m, "trigger") })},
		{"bad created_at", "created_at", mutate(func(m map[string]any) { m["created_at"] = "yesterday" })},
		{"row column wrong type", "event.data.new.status", mutate(func(m map[string]any) {
			m["event"].(map[string]any)["data"].(map[string]any)["new"].(map[string]any)["status"] = 5
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := hasura.DecodeEvent[orderRow](tt.body)
			var f *fault.Error
			if !errors.As(err, &f) || f.Kind != fault.Invalid {
				t.Fatalf("got %v, want an Invalid fault", err)
			}
			if f.Field != tt.field || !strings.HasPrefix(f.Message, tt.field+": ") {
				t.Errorf("field %q message %q, want field %q named first", f.Field, f.Message, tt.field)
			}
		})
	}
}

func TestDecodeCronAndScheduledEvents(t *testing.T) {
	t.Parallel()
	c, err := hasura.DecodeCron(fixture(t, "cron_event.json"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "ResetOutdatedLocations" || !c.ScheduledTime.Equal(time.Date(2023, 8, 24, 15, 39, 0, 0, time.UTC)) || !c.CreatedAt.IsZero() {
		t.Errorf("cron %+v", c)
	}
	o, err := hasura.DecodeCron(fixture(t, "oneoff_scheduled_event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Email string `json:"email"`
	}
	if err := o.DecodePayload(&p); err != nil || p.Email != "bob@ross.com" {
		t.Errorf("payload %+v err %v", p, err)
	}
	if o.Name != "" || o.CreatedAt.IsZero() {
		t.Errorf("one-off: name %q created %v, want no name and a created_at", o.Name, o.CreatedAt)
	}
}

func TestSessionVariables(t *testing.T) {
	t.Parallel()
	var s hasura.SessionVariables
	if err := json.Unmarshal([]byte(`{"X-Hasura-Role":"school","x-hasura-school-id":"5f0c6f3e-8a4e-4b7b-9c1d-2e3f4a5b6c7d","X-Hasura-UDISE":"02010100101","x-hasura-user-id":17}`), &s); err != nil {
		t.Fatal(err)
	}
	if s.Role() != "school" || s.UDISE() != "02010100101" || s.UserID() != "17" {
		t.Errorf("got %v", s)
	}
	if id, err := s.SchoolID(); err != nil || id.String() != "5f0c6f3e-8a4e-4b7b-9c1d-2e3f4a5b6c7d" {
		t.Errorf("SchoolID: %v %v", id, err)
	}
	if err := s.RequireRole("admin", "school"); err != nil {
		t.Errorf("RequireRole: %v", err)
	}
	if err := s.RequireRole("admin"); fault.KindOf(err) != fault.Forbidden {
		t.Errorf("RequireRole(admin) for school: got %v, want Forbidden", err)
	}
	var strs hasura.SessionVariables // strings only: Hasura's usual form
	if err := json.Unmarshal([]byte(`{"X-Hasura-Role":"teacher","X-Hasura-User-Id":"7"}`), &strs); err != nil {
		t.Fatal(err)
	}
	if got := map[string]string(strs); !reflect.DeepEqual(got, map[string]string{"x-hasura-role": "teacher", "x-hasura-user-id": "7"}) {
		t.Errorf("got %v, want the names in lower case", got)
	}
	for _, in := range []string{`{"a":null,"b":"x"}`, `{"a":null,"b":"x","c":1}`} {
		var nulls hasura.SessionVariables // a null is left out, whatever the other values
		if err := json.Unmarshal([]byte(in), &nulls); err != nil {
			t.Fatal(err)
		}
		if _, ok := nulls["a"]; ok {
			t.Errorf("%s: got a present with %q, want it left out", in, nulls["a"])
		}
	}
	var none hasura.SessionVariables
	_ = json.Unmarshal([]byte("null"), &none)
	if _, err := none.SchoolID(); fault.KindOf(err) != fault.Forbidden {
		t.Errorf("SchoolID of null session: got %v, want Forbidden", err)
	}
}

// jsonEqual compares two JSON documents semantically.
func jsonEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response is not JSON: %s", got)
	}
	_ = json.Unmarshal(want, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func serve(h http.Handler, body []byte) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	return rec
}

func TestActionHandlerGoldenResponses(t *testing.T) {
	t.Parallel()
	ok := hasura.NewAction("UserLogin", discard, func(ctx context.Context, a *hasura.Action[loginInput]) (loginOutput, error) {
		return loginOutput{AccessToken: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVC", UserID: 423}, nil
	})
	rec := serve(ok, fixture(t, "action_request_sync.json"))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	jsonEqual(t, rec.Body.Bytes(), fixture(t, "action_response_success.json"))

	refused := hasura.NewAction("UserLogin", discard, func(ctx context.Context, a *hasura.Action[loginInput]) (loginOutput, error) {
		return loginOutput{}, fault.New(fault.Unprocessable, "OUT_OF_STOCK", "out of stock")
	})
	rec = serve(refused, fixture(t, "action_request_sync.json"))
	if rec.Code != 422 {
		t.Errorf("status %d, want 422", rec.Code)
	}
	// The fixture carries an extra extension (product_id); ours carries code.
	var want hasura.ErrorBody
	_ = json.Unmarshal(fixture(t, "action_response_error_extensions.json"), &want)
	delete(want.Extensions, "product_id")
	wantJSON, _ := json.Marshal(want)
	jsonEqual(t, rec.Body.Bytes(), wantJSON)

	crashed := hasura.NewAction("UserLogin", discard, func(ctx context.Context, a *hasura.Action[loginInput]) (loginOutput, error) {
		return loginOutput{}, errors.New("pq: password authentication failed for user shala")
	})
	rec = serve(crashed, fixture(t, "action_request_sync.json"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "password") {
		t.Errorf("unexpected error: status %d body %s; want 500 with a generic message", rec.Code, rec.Body)
	}
}

type validatedInput struct {
	Message string `json:"message"`
}

func (v *validatedInput) Validate() error {
	if v.Message == "" {
		return fault.Invalidf("message", "must not be empty")
	}
	return nil
}

func TestActionHandlerValidatesAndChecksName(t *testing.T) {
	t.Parallel()
	called := false
	h := hasura.NewAction("ping", discard, func(ctx context.Context, a *hasura.Action[validatedInput]) (struct{}, error) {
		called = true
		return struct{}{}, nil
	})
	rec := serve(h, []byte(`{"action":{"name":"ping"},"input":{"message":""},"session_variables":{"x-hasura-role":"admin"}}`))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"field":"message"`) {
		t.Errorf("empty message: %d %s", rec.Code, rec.Body)
	}
	rec = serve(h, []byte(`{"action":{"name":"pong"},"input":{"message":"x"},"session_variables":{}}`))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "action.name") {
		t.Errorf("wrong name: %d %s", rec.Code, rec.Body)
	}
	rec = serve(h, []byte(`{"action":{"name":"ping"},"input":{"message":7},"session_variables":{}}`))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), "input.message") {
		t.Errorf("wrong type: %d %s", rec.Code, rec.Body)
	}
	if called {
		t.Error("the action ran on invalid input")
	}
}

func TestEventHandlerErrors(t *testing.T) {
	t.Parallel()
	var err error
	h := hasura.NewEvent("order_created", discard, func(ctx context.Context, e *hasura.Event[orderRow]) (hasura.Ack, error) {
		return hasura.Ack{}, err
	})
	body := fixture(t, "event_insert_latest.json")

	err = fault.Wrap(errors.New("dial tcp: connection refused"), fault.Unavailable, "", "database unavailable")
	rec := serve(h, body)
	if rec.Code != 503 || rec.Header().Get("Retry-After") != hasura.RetryAfterSeconds {
		t.Errorf("unavailable: status %d Retry-After %q, want 503 and %s", rec.Code, rec.Header().Get("Retry-After"), hasura.RetryAfterSeconds)
	}
	err = errors.New("boom")
	if rec := serve(h, body); rec.Code != 500 || rec.Header().Get("Retry-After") != "" {
		t.Errorf("internal: status %d Retry-After %q, want 500 without Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	err = nil
	if rec := serve(h, fixture(t, "event_update_retry_legacy_utc.json")); rec.Code != 400 {
		t.Errorf("another trigger's event: status %d, want 400", rec.Code)
	}
	rec = serve(h, body)
	if rec.Code != 200 {
		t.Errorf("ok: status %d", rec.Code)
	}
	jsonEqual(t, rec.Body.Bytes(), []byte(`{"duplicate":false}`))
}

func TestRequireSecretAndBodyCap(t *testing.T) {
	t.Parallel()
	h := hasura.RequireSecret("s3cret")(hasura.NewCron("ResetOutdatedLocations", discard,
		func(ctx context.Context, c *hasura.CronEvent) (hasura.Ack, error) { return hasura.Ack{}, nil }))
	for _, tt := range []struct {
		secret string
		want   int
	}{{"", 401}, {"wrong", 401}, {"s3cret", 200}} {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(fixture(t, "cron_event.json")))
		if tt.secret != "" {
			req.Header.Set(hasura.SecretHeader, tt.secret)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("secret %q: status %d, want %d", tt.secret, rec.Code, tt.want)
		}
	}
	empty := hasura.RequireSecret("")(http.NotFoundHandler())
	rec := httptest.NewRecorder()
	empty.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != 401 {
		t.Errorf("empty configured secret: status %d, want 401", rec.Code)
	}

	capped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64)
		h.ServeHTTP(w, r)
	})
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(fixture(t, "cron_event.json")))
	req.Header.Set(hasura.SecretHeader, "s3cret")
	rec = httptest.NewRecorder()
	capped.ServeHTTP(rec, req)
	if rec.Code != 413 {
		t.Errorf("over the cap: status %d, want 413", rec.Code)
	}
}

// The body is read to its end whatever Content-Length claims: unknown
// (chunked), shorter than the body (a request not read off the wire) or
// far longer (not allocated in advance).
func TestEventHandlerReadsWholeBody(t *testing.T) {
	t.Parallel()
	var got string
	h := hasura.NewEvent("order_created", discard, func(ctx context.Context, e *hasura.Event[orderRow]) (hasura.Ack, error) {
		got = e.ID.String()
		return hasura.Ack{}, nil
	})
	body := fixture(t, "event_insert_latest.json")
	for _, tt := range []struct {
		name     string
		declared int64
	}{
		{"exact", int64(len(body))},
		{"unknown", -1},
		{"shorter than the body", 10},
		{"a terabyte", 1 << 40},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got = ""
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			req.ContentLength = tt.declared
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != 200 || got != "85558393-c75d-4d2f-9c15-e80591b83894" {
				t.Errorf("Content-Length %d: status %d, event %q; want 200 and the fixture's event (%s)", tt.declared, rec.Code, got, rec.Body)
			}
		})
	}
}
