package web_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/pgtest"
)

// slowBody sends chunk bytes every interval; after stallAt bytes (> 0)
// nothing more until the request is given up.
type slowBody struct {
	data           []byte
	chunk, stallAt int
	interval       time.Duration
	sent           int
	closed         chan struct{}
	once           sync.Once
}

func (p *slowBody) Read(b []byte) (int, error) {
	if p.sent >= len(p.data) {
		return 0, io.EOF
	}
	if p.stallAt > 0 && p.sent >= p.stallAt {
		<-p.closed
		return 0, io.ErrClosedPipe
	}
	if p.sent > 0 {
		select {
		case <-time.After(p.interval): // the link's pace, not synchronisation
		case <-p.closed:
			return 0, io.ErrClosedPipe
		}
	}
	n := copy(b[:min(len(b), p.chunk)], p.data[p.sent:])
	p.sent += n
	return n, nil
}

func (p *slowBody) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

// A student's exam file over a slow link is received even though it takes
// longer than the server's whole-request read timeout; one that stalls is
// answered 503 + Retry-After (send it again), without the link's error.
func TestSlowExamUploadsAreServedAndStalledOnesDropped(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	cfg.UploadMinRate, cfg.UploadWindow = 8<<10, 300*time.Millisecond
	a := apptest.New(t, cfg, app.Options{Pool: pgtest.New(t)})
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 400*time.Millisecond, 600*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	ctx := context.Background()
	id, err := a.Exams.CreateExam(ctx, "examiner-1", "Physics 2026", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	created, errs, err := a.Exams.CreateStudents(ctx, "examiner-1", id, []exam.StudentInput{
		{Nickname: "asha1", FirstName: "Asha", LastName: "Verma", Email: "asha@example.org"}}, nil)
	if err != nil || len(errs) > 0 {
		t.Fatalf("create student: %v %v", err, errs)
	}
	code := created[0].UploadCode

	send := func(t *testing.T, p *slowBody) (int, http.Header, []byte) {
		t.Helper()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		w, _ := mw.CreateFormFile("file", "answers.pdf")
		_, _ = w.Write(pdf(60<<10, 1))
		_ = mw.Close()
		p.data, p.closed = buf.Bytes(), make(chan struct{})
		// The answer can come before the transport gives up the body:
		// a stalled link's reader ends with the request, not the test.
		defer p.Close()
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodPost, srv.URL+"/submissions/"+code, p)
		req.ContentLength = int64(len(p.data))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}

	t.Run("slow but steady: received", func(t *testing.T) {
		status, _, body := send(t, &slowBody{chunk: 4 << 10, interval: 100 * time.Millisecond}) // ~1.6 s
		if status != http.StatusCreated {
			t.Fatalf("got %d %s, want 201", status, body)
		}
	})
	t.Run("stalled: answered 503 to send again", func(t *testing.T) {
		status, hdr, body := send(t, &slowBody{chunk: 4 << 10, interval: 10 * time.Millisecond, stallAt: 12 << 10})
		if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "UPLOAD_INTERRUPTED") ||
			!strings.Contains(string(body), "send it again") {
			t.Fatalf("got %d (Retry-After %q) %s, want 503 UPLOAD_INTERRUPTED asking to send again", status, hdr.Get("Retry-After"), body)
		}
		for _, leak := range []string{"tcp", "127.0.0.1", "timeout", "i/o"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("answer %s contains %q", body, leak)
			}
		}
	})
}
