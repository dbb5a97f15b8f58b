package web_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/slowread/slowreadtest"
	"github.com/shala-edu/shala/internal/web"
)

// A student's exam file over a slow link is received even though it takes
// longer than the server's whole-request read timeout; one that stalls is
// answered 503 + Retry-After (send it again), without the link's error.
func TestSlowExamUploadsAreServedAndStalledOnesDropped(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	cfg.UploadMinRate, cfg.UploadWindow = 8<<10, 300*time.Millisecond
	a := apptest.New(t, cfg, app.Options{Pool: pgtest.New(t)})
	srv := slowServer(t, a)
	code := uploadCode(t, a)

	send := func(t *testing.T, p *slowreadtest.Link) (int, http.Header, []byte) {
		t.Helper()
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		w, _ := mw.CreateFormFile("file", "answers.pdf")
		_, _ = w.Write(pdf(60<<10, 1))
		_ = mw.Close()
		p.Data = buf.Bytes()
		// The answer can come before the transport gives up the body:
		// a stalled link's reader ends with the request, not the test.
		defer p.Close()
		rctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodPost, srv.URL+"/submissions/"+code, p)
		req.ContentLength = int64(len(p.Data))
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
		status, _, body := send(t, &slowreadtest.Link{Chunk: 4 << 10, Interval: 100 * time.Millisecond}) // ~1.6 s
		if status != http.StatusCreated {
			t.Fatalf("got %d %s, want 201", status, body)
		}
	})
	t.Run("stalled: answered 503 to send again", func(t *testing.T) {
		status, hdr, body := send(t, &slowreadtest.Link{Chunk: 4 << 10, Interval: 10 * time.Millisecond, StallAt: 12 << 10})
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

// A school's transfer document over a slow link is received like an exam
// file (the server's whole-request read timeout does not cut it off); one
// that stalls — in the file or before its part's headers have arrived — is
// answered 503 + Retry-After, never a 4xx or the link's own error.
// documentsServer serves shala with an upload floor of 8 KiB/s over
// windows of a second, behind a server whose whole-request read timeout is
// 400 ms, and returns it with a school's Hasura JWT.
func documentsServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	pool := pgtest.New(t)
	cfg := apptest.Config(t)
	// A window of a second against 40 KiB/s sent: a test goroutine held up
	// on a busy machine does not miss the floor.
	cfg.UploadMinRate, cfg.UploadWindow = 8<<10, time.Second
	const key = "test-jwt-signing-key-at-least-32-characters"
	cfg.JWTSecret = `{"type":"HS256","key":"` + key + `"}`
	a := apptest.New(t, cfg, app.Options{Pool: pool})
	srv := slowServer(t, a)
	school := uuid.New()
	if _, err := pool.Exec(context.Background(), `INSERT INTO school (id, udise, name, district, block, session) VALUES
		($1, '02110512345', 'GSSS Kotkhai', 'Shimla', 'Kotkhai', 'W')`, school); err != nil {
		t.Fatal(err)
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "principal-a", "exp": time.Now().Add(time.Hour).Unix(),
		"https://hasura.io/jwt/claims": map[string]any{"x-hasura-allowed-roles": []string{"school"}, "x-hasura-default-role": "school",
			"x-hasura-user-id": "principal-a", "x-hasura-school-id": school.String()},
	}).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return srv, token
}

func TestSlowTransferDocumentsAreServedAndStalledOnesDropped(t *testing.T) {
	t.Parallel()
	srv, token := documentsServer(t)
	ctx := context.Background()

	send := func(t *testing.T, p *slowreadtest.Link, data []byte, contentType string) (int, http.Header, []byte) {
		t.Helper()
		p.Data = data
		defer p.Close() // a stalled body's reader is released whatever the transport does
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(rctx, http.MethodPost, srv.URL+web.DocumentsPath, p)
		req.ContentLength = int64(len(p.Data))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", contentType)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}
	multipartOf := func(file []byte) ([]byte, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		w, _ := mw.CreateFormFile("file", "transfer-certificate.pdf")
		_, _ = w.Write(file)
		_ = mw.Close()
		return buf.Bytes(), mw.FormDataContentType()
	}
	interrupted := func(t *testing.T, status int, hdr http.Header, body []byte) {
		t.Helper()
		if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(string(body), "UPLOAD_INTERRUPTED") {
			t.Fatalf("got %d (Retry-After %q) %s, want 503 UPLOAD_INTERRUPTED asking to send again", status, hdr.Get("Retry-After"), body)
		}
		for _, leak := range []string{"tcp", "127.0.0.1", "timeout", "i/o"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("answer %s contains %q", body, leak)
			}
		}
	}

	t.Run("slow but steady: received", func(t *testing.T) {
		status, _, body := send(t, &slowreadtest.Link{Chunk: 4 << 10, Interval: 100 * time.Millisecond}, pdf(60<<10, 2), "application/pdf") // ~1.5 s
		if status != http.StatusCreated {
			t.Fatalf("got %d %s, want 201", status, body)
		}
	})
	t.Run("slow but steady multipart: received", func(t *testing.T) {
		data, ct := multipartOf(pdf(60<<10, 3))
		status, _, body := send(t, &slowreadtest.Link{Chunk: 4 << 10, Interval: 100 * time.Millisecond}, data, ct)
		if status != http.StatusCreated {
			t.Fatalf("got %d %s, want 201", status, body)
		}
	})
	t.Run("stalled in the file: answered 503 to send again", func(t *testing.T) {
		status, hdr, body := send(t, &slowreadtest.Link{Chunk: 4 << 10, Interval: 10 * time.Millisecond, StallAt: 12 << 10}, pdf(60<<10, 4), "application/pdf")
		interrupted(t, status, hdr, body)
	})
	t.Run("stalled before the part's headers: answered 503 to send again", func(t *testing.T) {
		data, ct := multipartOf(pdf(60<<10, 5))
		status, hdr, body := send(t, &slowreadtest.Link{Chunk: 20, Interval: 10 * time.Millisecond, StallAt: 40}, data, ct)
		interrupted(t, status, hdr, body)
	})
}

// A resumable (tus) upload over a slow link is received too: tusd moves
// the read deadline with every read, so a PATCH that takes longer than the
// server's whole-request read timeout still completes.
func TestSlowTusPatchIsServed(t *testing.T) {
	t.Parallel()
	cfg := apptest.Config(t)
	a := apptest.New(t, cfg, app.Options{Pool: pgtest.New(t)})
	srv := slowServer(t, a)
	file := pdf(60<<10, 6)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/submissions/"+uploadCode(t, a)+"/tus/", nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.Itoa(len(file)))
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	u, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("creation: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	p := &slowreadtest.Link{Data: file, Chunk: 4 << 10, Interval: 100 * time.Millisecond} // ~1.5 s
	defer p.Close()
	req, _ = http.NewRequest(http.MethodPatch, srv.URL+u.Path, p)
	req.ContentLength = int64(len(file))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", "0")
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Upload-Offset") != strconv.Itoa(len(file)) {
		t.Fatalf("slow PATCH: got %d (offset %q) %s, want 204 with the whole file", resp.StatusCode, resp.Header.Get("Upload-Offset"), body)
	}
}

// The whole transfer-document request is capped, not only the file part: a
// form with megabytes of other parts before the file is refused 413, not
// read to its end.
func TestTransferDocumentRequestIsCapped(t *testing.T) {
	t.Parallel()
	srv, token := documentsServer(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("note", strings.Repeat("x", 4<<20))
	w, _ := mw.CreateFormFile("file", "transfer-certificate.pdf")
	_, _ = w.Write(pdf(10<<10, 7))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+web.DocumentsPath, &buf)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "TOO_LARGE") {
		t.Fatalf("got %d %s, want 413", resp.StatusCode, body)
	}
}

// slowServer serves a with whole-request read and write timeouts shorter
// than the slow uploads the tests send, as a production server has them
// shorter than a slow phone's upload.
func slowServer(t *testing.T, a *app.App) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(a.Handler())
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 400*time.Millisecond, 600*time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// uploadCode creates an exam with one student and returns the student's
// upload code.
func uploadCode(t *testing.T, a *app.App) string {
	t.Helper()
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
	return created[0].UploadCode
}
