// Package slowread serves request bodies that arrive over slow links: a
// collector's phone on a rural 2G connection uploading a photo, a student
// on a weak link uploading an answer file. One timeout for the whole request
// cuts such uploads off however steadily they progress; no timeout at all
// lets a stalled connection hold a goroutine forever. Middleware instead
// gives the body a read deadline that moves forward while bytes arrive at
// or above a floor rate, so an upload of any size at any speed above the
// floor is read to the end, and a connection that stalls (or trickles below
// the floor) is dropped within one window.
//
// A handler whose body read fails for any reason of the link's — the
// deadline, the client giving up, a reset — sees an error for which
// Interrupted is true, and should answer with a 5xx (the OpenRosa endpoint
// answers 503 with Retry-After) so the client sends again, and never echo
// the error: its text names shala's own address.
package slowread

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/shala-edu/shala/internal/fault"
)

// CodeInterrupted is the error code of an upload answered 503 because its
// link failed (REST endpoints; OpenRosa answers carry no codes).
const CodeInterrupted fault.Code = "UPLOAD_INTERRUPTED"

// Defaults of Options.
const (
	DefaultMinRate      = 512 // bytes per second: 4 kbit/s, below any working 2G link
	DefaultWindow       = 30 * time.Second
	DefaultWriteTimeout = 60 * time.Second
)

// Options set the floor.
type Options struct {
	// MinRate is the slowest upload served, in bytes per second, averaged
	// over each Window: a window in which fewer than MinRate×Window bytes
	// arrive ends the upload.
	MinRate int64
	// Window is how long a connection may deliver nothing (or too little)
	// before it is dropped.
	Window time.Duration
	// WriteTimeout is how long the handler has to write its answer once
	// the body has been read (the server's own write timeout counts from
	// the start of the request, and a slow upload can outlast it).
	WriteTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MinRate <= 0 {
		o.MinRate = DefaultMinRate
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	return o
}

// Middleware reads request bodies under o's floor instead of the server's
// whole-request ReadTimeout. Wrap only the routes that take uploads.
func Middleware(o Options) func(http.Handler) http.Handler {
	o = o.withDefaults()
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body != nil && r.Body != http.NoBody {
				b := &body{src: r.Body, rc: http.NewResponseController(w), o: o,
					need: o.MinRate * int64(o.Window) / int64(time.Second), started: time.Now()}
				b.window(b.started)
				r.Body = b
			}
			next.ServeHTTP(w, r)
		})
	}
}

// body is a request body whose connection deadlines follow its progress.
type body struct {
	src     io.ReadCloser
	rc      *http.ResponseController
	o       Options
	need    int64 // bytes a window must bring to open the next one
	started time.Time

	got, inWindow int64
	err           error
}

// window opens a new window at now: the connection must bring need bytes
// before now+Window; the answer may be written until Window+WriteTimeout
// after that.
func (b *body) window(now time.Time) {
	deadline := now.Add(b.o.Window)
	// Servers that cannot set deadlines (HTTP/2 over some transports,
	// test recorders) keep their own timeouts: nothing to extend.
	if b.rc.SetReadDeadline(deadline) == nil {
		_ = b.rc.SetWriteDeadline(deadline.Add(b.o.WriteTimeout))
	}
	b.inWindow = 0
}

func (b *body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.src.Read(p)
	b.got += int64(n)
	b.inWindow += int64(n)
	now := time.Now()
	if b.inWindow >= b.need {
		b.window(now)
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		// All there: the handler now has WriteTimeout to answer.
		_ = b.rc.SetReadDeadline(time.Time{})
		_ = b.rc.SetWriteDeadline(now.Add(b.o.WriteTimeout))
	default:
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return n, err
		}
		b.err = &InterruptedError{Received: b.got, After: now.Sub(b.started), cause: err}
		return n, b.err
	}
	return n, err
}

func (b *body) Close() error { return b.src.Close() }

// InterruptedError is a body that stopped arriving before its end: the
// connection stalled or went below the floor, or the client closed or reset
// it. Its message is safe to show; the cause (with addresses) is not.
type InterruptedError struct {
	Received int64         // bytes that did arrive
	After    time.Duration // since the handler started reading
	cause    error
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("upload interrupted after %d bytes", e.Received)
}

// Cause is the underlying read error, for logs.
func (e *InterruptedError) Cause() error { return e.cause }

// Interrupted reports whether err comes from the link rather than from what
// was sent: an *InterruptedError, or (for handlers not behind Middleware) a
// network error, a timeout, a reset or a body cut short. A client that
// meets one should send again.
func Interrupted(err error) bool {
	if err == nil {
		return false
	}
	var ie *InterruptedError
	var ne net.Error
	return errors.As(err, &ie) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
