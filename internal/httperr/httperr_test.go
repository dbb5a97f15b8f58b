package httperr_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/httperr"
)

func TestStatus(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		kind fault.Kind
		want int
	}{
		{fault.Internal, 500}, {fault.Invalid, 400}, {fault.Unauthorized, 401}, {fault.Forbidden, 403},
		{fault.NotFound, 404}, {fault.Conflict, 409}, {fault.Gone, 410}, {fault.TooLarge, 413},
		{fault.Unsupported, 415}, {fault.Unprocessable, 422}, {fault.RateLimited, 429}, {fault.Unavailable, 503},
		{fault.Kind(999), 500},
	} {
		if got := httperr.Status(tt.kind); got != tt.want {
			t.Errorf("Status(%d) = %d, want %d", tt.kind, got, tt.want)
		}
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	teapot := func(w http.ResponseWriter, r *http.Request, err error) {
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(fault.As(err).Message))
	}
	// answerAfter stands for a middleware in front of the router (the
	// panic recoverer): it answers after the route's middleware ran.
	answerAfter := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, r)
			httperr.Write(w, r, fault.New(fault.Forbidden, "", "refused"))
		})
	}
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})

	t.Run("a middleware in front answers with the route's writer", func(t *testing.T) {
		t.Parallel()
		h := httperr.Track(answerAfter(httperr.Use(teapot)(noop)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if got, want := rec.Code, http.StatusTeapot; got != want {
			t.Errorf("status %d, want %d (the route's writer)", got, want)
		}
	})

	t.Run("a route without a writer answers JSON", func(t *testing.T) {
		t.Parallel()
		h := httperr.Track(answerAfter(noop))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		var body struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if rec.Code != 403 || body.Message != "refused" || body.Extensions["code"] != "FORBIDDEN" {
			t.Errorf("got %d %+v, want 403 refused FORBIDDEN", rec.Code, body)
		}
	})

	t.Run("internal errors show no details", func(t *testing.T) {
		t.Parallel()
		rec := httptest.NewRecorder()
		httperr.JSON(rec, httptest.NewRequest(http.MethodGet, "/", nil), fault.New(fault.Internal, "", "pq: password authentication failed for user shala"))
		if got := rec.Body.String(); got != `{"extensions":{"code":"INTERNAL"},"message":"internal error"}`+"\n" {
			t.Errorf("body %s, want the generic message", got)
		}
	})

	t.Run("Use without Track still sets the writer", func(t *testing.T) {
		t.Parallel()
		h := httperr.Use(teapot)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httperr.Write(w, r, fault.New(fault.NotFound, "", "x"))
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		if rec.Code != http.StatusTeapot {
			t.Errorf("status %d, want the route's writer", rec.Code)
		}
	})
}
