package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/shala-edu/shala/internal/fault"
	"github.com/shala-edu/shala/internal/lesson"
)

// HeartbeatPath is where BBB nodes report.
const HeartbeatPath = "/bbb/heartbeat"

// maxHeartbeat caps a heartbeat body.
const maxHeartbeat = 16 << 10

// Heartbeat receives BBB nodes' reports, POST /bbb/heartbeat: a JSON body
// (lesson.Heartbeat) signed in X-Shala-Signature with the node's own API
// secret. 200 with {serverId, registered, enabled}; 401 bad signature, 403
// host not allowed, 400 bad body, 413 too large.
func Heartbeat(log *slog.Logger, servers *lesson.Servers) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHeartbeat))
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				err = fault.New(fault.TooLarge, "", "a heartbeat is at most %d bytes", maxHeartbeat)
			} else {
				err = fault.Invalidf("body", "could not be read")
			}
		} else {
			var res lesson.HeartbeatResult
			if res, err = servers.Heartbeat(ctx, body, r.Header.Get(lesson.SignatureHeader)); err == nil {
				writeJSON(w, http.StatusOK, res)
				return
			}
		}
		writeError(ctx, w, log, err)
	})
}
