package benchdb

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/shala-edu/shala/internal/server"
)

// Serve serves h on a loopback port as `shala serve` does and returns its
// base URL ("http://127.0.0.1:port") and a function that stops it.
func Serve(ctx context.Context, h http.Handler, log *slog.Logger) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = server.Serve(ctx, ln, h, log, 5*time.Second) }()
	return "http://" + ln.Addr().String(), func() { cancel(); <-done }, nil
}

// Profile starts a CPU profile written to path and returns the function
// that stops it; with path empty it does nothing.
func Profile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
