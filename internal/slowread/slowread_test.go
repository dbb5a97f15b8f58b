package slowread_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/slowread"
)

func TestOversizeIsNotAnInterruption(t *testing.T) {
	t.Parallel()
	var got error
	h := slowread.Middleware(slowread.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 10)
		_, got = io.ReadAll(r.Body)
	}))
	srv := httptest.NewServer(func() http.Handler {
		// A cap applied before the middleware too: its error passes through.
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.Body = http.MaxBytesReader(w, r.Body, 20)
			h.ServeHTTP(w, r)
		})
	}())
	defer srv.Close()
	resp, err := http.Post(srv.URL, "text/plain", strings.NewReader(strings.Repeat("x", 100)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var tooBig *http.MaxBytesError
	if !errors.As(got, &tooBig) || slowread.Interrupted(got) {
		t.Errorf("got %v, want a MaxBytesError that is not an interruption", got)
	}
}

func TestInterrupted(t *testing.T) {
	t.Parallel()
	timeout := &net.OpError{Op: "read", Net: "tcp", Err: fmt.Errorf("i/o timeout: %w", errTimeout{})}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{io.EOF, false},
		{errors.New("multipart: boundary is empty"), false},
		{&http.MaxBytesError{Limit: 1}, false},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("multipart: NextPart: %w", timeout), true},
		{&slowread.InterruptedError{Received: 7}, true},
	} {
		if got := slowread.Interrupted(tt.err); got != tt.want {
			t.Errorf("Interrupted(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if msg := (&slowread.InterruptedError{Received: 7, After: time.Second}).Error(); msg != "upload interrupted after 7 bytes" {
		t.Errorf("message %q", msg)
	}
}

type errTimeout struct{}

func (errTimeout) Error() string   { return "timeout" }
func (errTimeout) Timeout() bool   { return true }
func (errTimeout) Temporary() bool { return true }
