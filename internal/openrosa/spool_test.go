package openrosa

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shala-edu/shala/internal/fault"
)

// A server that cannot spool an attachment (disk full, no temporary
// directory) is not a bad submission: ODK Collect is told 503 with
// Retry-After, so it sends the form again, and the answer names no path of
// the server's. (It was 400 INVALID_SUBMISSION quoting the temporary
// file's path when the write failed, which Collect never retries.)
func TestAttachmentTheServerCannotSpoolIsAnsweredRetryLater(t *testing.T) {
	dir := t.TempDir()
	submission := func(t *testing.T) *http.Request {
		t.Helper()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		xw, _ := mw.CreateFormFile("xml_submission_file", "submission.xml")
		_, _ = xw.Write([]byte(`<data id="f"><meta><instanceID>uuid:1</instanceID></meta></data>`))
		pw, _ := mw.CreateFormFile("photo.jpg", "photo.jpg")
		_, _ = pw.Write(bytes.Repeat([]byte{0xff}, 64<<10))
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/openrosa/key/t/submission", &buf)
		r.Header.Set("Content-Type", mw.FormDataContentType())
		return r
	}
	for _, tt := range []struct {
		name   string
		create func(dir, pattern string) (*os.File, error)
	}{
		{"the temporary file cannot be made", func(string, string) (*os.File, error) {
			return os.CreateTemp(filepath.Join(dir, "missing"), "shala-attachment-*")
		}},
		{"writing it fails", func(string, string) (*os.File, error) {
			f, err := os.CreateTemp(dir, "shala-attachment-*")
			if err != nil {
				return nil, err
			}
			name := f.Name()
			if err := f.Close(); err != nil {
				return nil, err
			}
			return os.Open(name) // read-only: every write fails, as on a full disk
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			createTemp = tt.create
			t.Cleanup(func() { createTemp = os.CreateTemp })
			_, files, err := readParts(submission(t))
			for _, f := range files {
				f.file.Close()
			}
			if got := fault.KindOf(err); got != fault.Unavailable {
				t.Fatalf("kind %v (%v), want Unavailable", got, err)
			}
			w := httptest.NewRecorder()
			Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}.writeError(context.Background(), w, err)
			body := w.Body.String()
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" ||
				!strings.Contains(body, "<OpenRosaResponse") || !strings.Contains(body, "send the form again later") {
				t.Errorf("got %d (Retry-After %q) %s, want 503 with Retry-After asking to send again", w.Code, w.Header().Get("Retry-After"), body)
			}
			if strings.Contains(body, dir) || strings.Contains(body, "shala-attachment") {
				t.Errorf("the answer names a path of the server's: %s", body)
			}
		})
	}
}
