package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gocloud.dev/blob"

	"github.com/shala-edu/shala/internal/app"
	"github.com/shala-edu/shala/internal/app/apptest"
	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/web"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// fastRetry retries failed jobs after 10 ms instead of River's attempt⁴ s.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(10 * time.Millisecond) }

type fixture struct {
	pool   *pgxpool.Pool
	dir    string // the bucket's directory
	tusDir string // resumable uploads in progress
	bucket *blob.Bucket
	clock  *apptest.Clock
	queue  *queue.Client
	app    *app.App
	exams  *exam.Store // the server's: same clock, bucket and queue
	url    string
	srv    *httptest.Server
	closed chan struct{} // a connection of srv closed (its handler is done)
}

// setup builds shala through its composition root on a fresh database,
// with a clock the test moves (starting now, so that River's own periodic
// sweep, on the real clock, finds nothing the test did not expect) and a
// fileblob bucket whose temp files stay in its directory (a test sees that
// nothing is left).
func setup(t *testing.T, configure ...func(*config.Config)) *fixture {
	t.Helper()
	f := &fixture{pool: pgtest.New(t), dir: t.TempDir(), clock: apptest.NewClock(time.Now().UTC().Truncate(time.Second)),
		closed: make(chan struct{}, 16)}
	var handler http.Handler
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			select {
			case f.closed <- struct{}{}:
			default:
			}
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	f.url = f.srv.URL
	cfg := apptest.Config(t)
	cfg.BlobURL = "file://" + f.dir + "?create_dir=true&no_tmp_dir=true"
	cfg.PublicURL = f.url
	cfg.PublicRate, cfg.PublicBurst = 1000, 1000
	for _, c := range configure {
		c(cfg)
	}
	f.tusDir = cfg.TusDir
	f.app = apptest.New(t, cfg, app.Options{Pool: f.pool, RetryPolicy: fastRetry{}, Now: f.clock.Now})
	f.bucket, f.queue, f.exams = f.app.Bucket, f.app.Queue, f.app.Exams
	handler = f.app.Handler()
	return f
}

// student creates an exam (open, no window) with one student and returns
// the student's upload code.
func (f *fixture) student(t *testing.T) string {
	t.Helper()
	return f.studentIn(t, nil, nil)
}

// studentIn is student for an exam open from opens to closes (nil: no
// bound).
func (f *fixture) studentIn(t *testing.T, opens, closes *time.Time) string {
	t.Helper()
	ctx := context.Background()
	id, err := f.exams.CreateExam(ctx, "examiner-1", "Physics 2026", opens, closes)
	if err != nil {
		t.Fatal(err)
	}
	n := strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	created, errs, err := f.exams.CreateStudents(ctx, "examiner-1", id, []exam.StudentInput{
		{Nickname: "s" + n, FirstName: "Asha", LastName: "Verma", Email: n + "@example.org"}}, nil)
	if err != nil || len(errs) > 0 {
		t.Fatalf("create student: %v %v", err, errs)
	}
	return created[0].UploadCode
}

// pdf is a PDF header padded to n bytes; seed varies the content.
func pdf(n int, seed byte) []byte {
	b := bytes.Repeat([]byte{'a' + seed%26}, n)
	copy(b, "%PDF-1.7\n")
	return b
}

func multipartBody(t *testing.T, name string, file []byte) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("note", "from the phone"); err != nil {
		t.Fatal(err)
	}
	w, err := mw.CreateFormFile("file", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(file); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func (f *fixture) do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (f *fixture) upload(t *testing.T, code, name string, file []byte) *http.Response {
	t.Helper()
	body, ct := multipartBody(t, name, file)
	req, err := http.NewRequest(http.MethodPost, f.url+"/submissions/"+code, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	return f.do(t, req)
}

func (f *fixture) get(t *testing.T, path string) *http.Response {
	t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = f.url + path
	}
	req, err := http.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f.do(t, req)
}

func decode[T any](t *testing.T, resp *http.Response) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return v
}

type errorJSON struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

func wantStatus(t *testing.T, resp *http.Response, want int) {
	t.Helper()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: status %d, want %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, want, b)
	}
}

func wantError(t *testing.T, resp *http.Response, status int, code string) errorJSON {
	t.Helper()
	wantStatus(t, resp, status)
	e := decode[errorJSON](t, resp)
	if e.Extensions.Code != code {
		t.Errorf("code %q (%s), want %q", e.Extensions.Code, e.Message, code)
	}
	return e
}

// blobs lists every file under the bucket's exams/ prefix (blobs, their
// attribute sidecars, temp files).
func (f *fixture) blobs(t *testing.T) []string {
	t.Helper()
	var out []string
	root := filepath.Join(f.dir, "exams")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasSuffix(p, ".attrs") {
			out = append(out, strings.TrimPrefix(p, f.dir+"/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runDeletes works the queued blob deletions as the worker would.
func (f *fixture) runDeletes(t *testing.T) int {
	t.Helper()
	ctx := context.Background()
	rows, err := f.pool.Query(ctx, `SELECT args FROM river_job WHERE kind = 'exam_blob_delete' AND state = 'available'`)
	if err != nil {
		t.Fatal(err)
	}
	var args []exam.DeleteBlobArgs
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			t.Fatal(err)
		}
		var a exam.DeleteBlobArgs
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		args = append(args, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, a := range args {
		if err := f.exams.DeleteBlob(ctx, a); err != nil {
			t.Fatalf("delete blob %+v: %v", a, err)
		}
	}
	if _, err := f.pool.Exec(ctx, `UPDATE river_job SET state = 'completed', finalized_at = now() WHERE kind = 'exam_blob_delete' AND state = 'available'`); err != nil {
		t.Fatal(err)
	}
	return len(args)
}

func TestUploadCap(t *testing.T) {
	t.Parallel()
	t.Run("3 MiB exactly is accepted whole", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		file := pdf(exam.MaxFileBytes, 1)
		resp := f.upload(t, code, "answers.pdf", file)
		wantStatus(t, resp, http.StatusCreated)
		got := decode[web.ReceiptJSON](t, resp)
		sum := sha256.Sum256(file)
		if got.Size != exam.MaxFileBytes || got.SHA256 != hex.EncodeToString(sum[:]) || got.UploadsLeft != 4 ||
			!got.ExpiresAt.Equal(f.clock.Now().Add(72*time.Hour)) || !exam.ValidVerificationCode(got.VerificationCode) {
			t.Errorf("receipt %+v: want size %d, its sha256, 4 left, expiry in 72 h, a 9-character code", got, exam.MaxFileBytes)
		}
		if b := f.blobs(t); len(b) != 1 || strings.Contains(b[0], "answers") {
			t.Errorf("blobs %v: want one, with a random key", b)
		}
	})
	t.Run("3 MiB + 1 is 413 and leaves no blob", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		wantError(t, f.upload(t, code, "answers.pdf", pdf(exam.MaxFileBytes+1, 1)), http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
		if b := f.blobs(t); len(b) != 0 {
			t.Errorf("blobs left: %v", b)
		}
		st := decode[web.StatusJSON](t, f.get(t, "/submissions/"+code))
		if st.UploadsLeft != 5 || st.HasUpload {
			t.Errorf("a refused upload counted: %+v", st)
		}
	})
	t.Run("a body announced far larger is 413 before it is read", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		req, err := http.NewRequest(http.MethodPost, f.url+"/submissions/"+code, io.LimitReader(zeros{}, 10<<20))
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = 10 << 20
		req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
		wantError(t, f.do(t, req), http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
	})
	t.Run("a type outside the allow-list is 415", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		wantError(t, f.upload(t, code, "answers.pdf", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")), http.StatusUnsupportedMediaType, "UNSUPPORTED_TYPE")
		wantError(t, f.upload(t, code, "a.txt", []byte("<html><script>alert(1)</script></html>")), http.StatusUnsupportedMediaType, "UNSUPPORTED_TYPE")
		if b := f.blobs(t); len(b) != 0 {
			t.Errorf("blobs left: %v", b)
		}
	})
	t.Run("no file part is 400", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		req, err := http.NewRequest(http.MethodPost, f.url+"/submissions/"+code, strings.NewReader("file=abc"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		wantError(t, f.do(t, req), http.StatusBadRequest, "INVALID_INPUT")
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestUploadLimitAndReplacement(t *testing.T) {
	t.Parallel()
	t.Run("five uploads, the sixth is 422; each replaces the last, whose code is 410 at once and blob deleted by the job", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		var codes []string
		for i := range 5 {
			resp := f.upload(t, code, fmt.Sprintf("try%d.pdf", i), pdf(1000, byte(i)))
			wantStatus(t, resp, http.StatusCreated)
			r := decode[web.ReceiptJSON](t, resp)
			if r.UploadsLeft != 4-i {
				t.Errorf("upload %d: %d left, want %d", i+1, r.UploadsLeft, 4-i)
			}
			codes = append(codes, r.VerificationCode)
			if i > 0 {
				// Before any job ran: the replaced file's code is 410.
				e := wantError(t, f.get(t, "/verifications/"+codes[i-1]), http.StatusGone, "REPLACED")
				if !strings.Contains(e.Message, "replaced") {
					t.Errorf("410 message %q does not say replaced", e.Message)
				}
			}
		}
		wantError(t, f.upload(t, code, "six.pdf", pdf(1000, 9)), http.StatusUnprocessableEntity, "UPLOAD_LIMIT_REACHED")
		if got := len(f.blobs(t)); got != 5 {
			t.Errorf("before the deletion jobs: %d blobs, want 5", got)
		}
		if n := f.runDeletes(t); n != 4 {
			t.Errorf("%d deletion jobs, want 4 (one per replaced file)", n)
		}
		if got := len(f.blobs(t)); got != 1 {
			t.Errorf("after the deletion jobs: %d blobs, want only the active one", got)
		}
		wantStatus(t, f.get(t, "/verifications/"+codes[4]), http.StatusOK)
		var pending int
		if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM exam_upload WHERE state = 'replaced' AND deleted_at IS NULL`).Scan(&pending); err != nil || pending != 0 {
			t.Errorf("replaced uploads without deleted_at: %d, %v", pending, err)
		}
	})
	t.Run("two simultaneous fifth uploads: one 201, one 422, one blob kept", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		for i := range 4 {
			wantStatus(t, f.upload(t, code, "a.pdf", pdf(100, byte(i))), http.StatusCreated)
		}
		f.runDeletes(t)
		// Hold the student's row so both requests pass the early check,
		// store their files and wait at the counter; then let them race.
		ctx := context.Background()
		tx, err := f.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM exam_student WHERE upload_code = $1 FOR UPDATE`, code); err != nil {
			t.Fatal(err)
		}
		statuses := make(chan int, 2)
		for i := range 2 {
			body, ct := multipartBody(t, "five.pdf", pdf(2000, byte(10+i)))
			req, err := http.NewRequest(http.MethodPost, f.url+"/submissions/"+code, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			go func() {
				resp, err := f.srv.Client().Do(req)
				if err != nil {
					statuses <- 0
					return
				}
				resp.Body.Close()
				statuses <- resp.StatusCode
			}()
		}
		waitForLockWaiters(t, f.pool, 2)
		if err := tx.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		got := []int{<-statuses, <-statuses}
		slices.Sort(got)
		if !slices.Equal(got, []int{http.StatusCreated, http.StatusUnprocessableEntity}) {
			t.Fatalf("statuses %v, want one 201 and one 422", got)
		}
		f.runDeletes(t)
		var uploads, active int
		if err := f.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'active') FROM exam_upload`).Scan(&uploads, &active); err != nil {
			t.Fatal(err)
		}
		if uploads != 5 || active != 1 || len(f.blobs(t)) != 1 {
			t.Errorf("%d uploads, %d active, blobs %v: want 5, 1, one blob (the loser's removed)", uploads, active, f.blobs(t))
		}
	})
}

// waitForLockWaiters returns once n backends wait on a lock. It polls the
// server's own view (no sleeping on a guess), within a deadline.
func waitForLockWaiters(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		var waiting int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting)
		if err != nil {
			t.Fatalf("waiting for %d lock waiters: %v", n, err)
		}
		if waiting >= n {
			return
		}
	}
}

func TestStatusAndCodes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	code := f.student(t)
	st := decode[web.StatusJSON](t, f.get(t, "/submissions/"+code))
	if st.HasUpload || st.UploadsLeft != 5 || st.ExamTitle != "Physics 2026" {
		t.Errorf("status before any upload: %+v", st)
	}
	resp := f.upload(t, code, "ответ.pdf", pdf(5000, 2))
	wantStatus(t, resp, http.StatusCreated)
	rc := decode[web.ReceiptJSON](t, resp)
	resp = f.get(t, "/submissions/"+code)
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(rc.VerificationCode)) || bytes.Contains(raw, []byte("ответ")) || bytes.Contains(raw, []byte(code)) {
		t.Errorf("status shows a code or file name: %s", raw)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if !st.HasUpload || st.UploadsLeft != 4 || st.Size == nil || *st.Size != 5000 || !st.ExpiresAt.Equal(rc.ExpiresAt) {
		t.Errorf("status after an upload: %+v", st)
	}
	wantError(t, f.get(t, "/submissions/ZZZZZZZZ"), http.StatusNotFound, "UNKNOWN_CODE")
	wantError(t, f.get(t, "/submissions/not-a-code"), http.StatusNotFound, "UNKNOWN_CODE")
	wantError(t, f.upload(t, "ZZZZZZZZ", "a.pdf", pdf(100, 0)), http.StatusNotFound, "UNKNOWN_CODE")
	wantError(t, f.get(t, "/verifications/zzzzzzzzz"), http.StatusNotFound, "UNKNOWN_CODE")
}

func TestWrongCodesAreRateLimited(t *testing.T) {
	t.Parallel()
	f := setup(t)
	code := f.student(t)
	for i := range web.GuessBurst {
		wantStatus(t, f.get(t, fmt.Sprintf("/verifications/zzzzzz%03d", i)), http.StatusNotFound)
	}
	resp := f.get(t, "/submissions/"+code)
	wantError(t, resp, http.StatusTooManyRequests, "RATE_LIMITED")
	if resp.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Out of guesses, a right code is refused too: a hit cannot be told
	// from a miss.
	wantStatus(t, f.upload(t, code, "a.pdf", pdf(100, 0)), http.StatusTooManyRequests)
}

// getAtOnce sends n GETs (the i-th to url(i)) as nearly at once as it can
// and returns their statuses in order.
func getAtOnce(t *testing.T, n int, url func(i int) string) []int {
	t.Helper()
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			resp, err := http.Get(url(i))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	return codes
}

// Wrong codes sent at once are limited as if sent one by one: a code being
// looked up holds one of the client's guesses, so no more codes are looked
// up than it has guesses left.
func TestWrongCodesSentAtOnceAreRateLimitedToo(t *testing.T) {
	t.Parallel()
	f := setup(t)
	_ = f.student(t)
	const sent = 100
	codes := getAtOnce(t, sent, func(i int) string { return fmt.Sprintf("%s/verifications/zzzzzz%03d", f.url, i) })
	looked, limited := 0, 0
	for _, c := range codes {
		switch c {
		case http.StatusNotFound:
			looked++
		case http.StatusTooManyRequests:
			limited++
		}
	}
	// One more guess may have come back during the run (one per 30 s).
	if looked > web.GuessBurst+1 || looked+limited != sent {
		t.Errorf("%d wrong codes looked up and %d refused of %d sent at once, want at most %d looked up and the rest refused",
			looked, limited, sent, web.GuessBurst)
	}
}

// Right codes sent at once from one address are all served: a look-up
// waits for the ones in flight when all the guesses left are held, since
// they may all be right (a class uploading behind one school address).
func TestRightCodesSentAtOnceAreServed(t *testing.T) {
	t.Parallel()
	f := setup(t)
	code := f.student(t)
	const sent = 40
	codes := getAtOnce(t, sent, func(int) string { return f.url + "/submissions/" + code })
	for i, c := range codes {
		if c != http.StatusOK {
			t.Fatalf("request %d of %d sent at once with a right code: %d, want 200 (all: %v)", i, sent, c, codes)
		}
	}
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	f := setup(t)
	code := f.student(t)
	resp := f.upload(t, code, "a.pdf", pdf(4000, 3))
	wantStatus(t, resp, http.StatusCreated)
	rc := decode[web.ReceiptJSON](t, resp)
	ctx := context.Background()

	f.clock.Add(72*time.Hour - time.Second)
	wantStatus(t, f.get(t, "/verifications/"+rc.VerificationCode), http.StatusOK)
	f.clock.Add(time.Second)
	// The moment expires_at passes, before any sweep.
	e := wantError(t, f.get(t, "/verifications/"+rc.VerificationCode), http.StatusGone, "EXPIRED")
	if !strings.Contains(e.Message, "expired") {
		t.Errorf("410 message %q does not say expired", e.Message)
	}
	if st := decode[web.StatusJSON](t, f.get(t, "/submissions/"+code)); st.HasUpload {
		t.Errorf("status still shows the expired file: %+v", st)
	}
	if len(f.blobs(t)) != 1 {
		t.Fatalf("blob gone before the sweep")
	}
	got, err := f.exams.Expire(ctx, f.queue)
	if err != nil {
		t.Fatal(err)
	}
	if got != (exam.Swept{Expired: 1, Deleted: 1}) {
		t.Errorf("sweep: %+v, want 1 expired and deleted", got)
	}
	wantError(t, f.get(t, "/verifications/"+rc.VerificationCode), http.StatusGone, "EXPIRED")
	if b := f.blobs(t); len(b) != 0 {
		t.Errorf("blobs after the sweep: %v", b)
	}
	again, err := f.exams.Expire(ctx, f.queue)
	if err != nil || again != (exam.Swept{}) {
		t.Errorf("second sweep: %+v, %v; want nothing done", again, err)
	}
	// The student may hand in again (4 uploads left).
	wantStatus(t, f.upload(t, code, "b.pdf", pdf(4000, 4)), http.StatusCreated)
}

func TestDownloadLinks(t *testing.T) {
	t.Parallel()
	setupFile := func(t *testing.T) (*fixture, string, web.VerificationJSON, []byte) {
		f := setup(t)
		code := f.student(t)
		file := pdf(3000, 5)
		resp := f.upload(t, code, "उत्तर पुस्तिका.pdf", file)
		wantStatus(t, resp, http.StatusCreated)
		rc := decode[web.ReceiptJSON](t, resp)
		resp = f.get(t, "/verifications/"+rc.VerificationCode)
		wantStatus(t, resp, http.StatusOK)
		return f, code, decode[web.VerificationJSON](t, resp), file
	}
	t.Run("the link gives the file with its name and type for 600 s", func(t *testing.T) {
		t.Parallel()
		f, _, v, file := setupFile(t)
		if v.FileName != "उत्तर पुस्तिका.pdf" || v.ContentType != "application/pdf" || v.Size != 3000 ||
			!v.DownloadURLExpiresAt.Equal(f.clock.Now().Add(600*time.Second)) {
			t.Errorf("verification %+v", v)
		}
		resp := f.get(t, v.DownloadURL)
		wantStatus(t, resp, http.StatusOK)
		got, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, file) || resp.Header.Get("Content-Type") != "application/pdf" ||
			!strings.Contains(resp.Header.Get("Content-Disposition"), "filename*=utf-8''%E0%A4%89") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("download: %d bytes, headers %v", len(got), resp.Header)
		}
		f.clock.Add(599 * time.Second)
		wantStatus(t, f.get(t, v.DownloadURL), http.StatusOK)
		f.clock.Add(time.Second)
		wantError(t, f.get(t, v.DownloadURL), http.StatusForbidden, "FORBIDDEN")
	})
	t.Run("the saved name keeps the sniffed type: markup sent as text is not saved as a page", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		page := []byte("<img src=x onerror=alert(document.domain)> my answer\n")
		resp := f.upload(t, code, "answer.html", page)
		wantStatus(t, resp, http.StatusCreated)
		rc := decode[web.ReceiptJSON](t, resp)
		v := decode[web.VerificationJSON](t, f.get(t, "/verifications/"+rc.VerificationCode))
		if v.FileName != "answer.html.txt" || v.ContentType != "text/plain; charset=utf-8" {
			t.Errorf("verification: name %q, type %q; want answer.html.txt, text/plain", v.FileName, v.ContentType)
		}
		dl := f.get(t, v.DownloadURL)
		wantStatus(t, dl, http.StatusOK)
		if got := dl.Header.Get("Content-Disposition"); got != "attachment; filename=answer.html.txt" {
			t.Errorf("Content-Disposition %q, want the name ending in .txt", got)
		}
	})
	t.Run("tampered, other method, other file: 403", func(t *testing.T) {
		t.Parallel()
		f, _, v, _ := setupFile(t)
		tamper := func(old, new string) string {
			if !strings.Contains(v.DownloadURL, old) {
				t.Fatalf("%q not in %s", old, v.DownloadURL)
			}
			return strings.Replace(v.DownloadURL, old, new, 1)
		}
		sig := v.DownloadURL[strings.Index(v.DownloadURL, "sig=")+4:]
		id := strings.Split(strings.TrimPrefix(v.DownloadURL, f.url), "/")[2]
		exp := v.DownloadURLExpiresAt.Unix()
		for name, u := range map[string]string{
			"signature changed": tamper("sig="+sig[:4], "sig=AAAA"),
			"expiry extended":   tamper(fmt.Sprintf("exp=%d", exp), fmt.Sprintf("exp=%d", exp+3600)),
			"other upload":      tamper(id, uuid.NewString()),
			"no signature":      tamper("sig=", "nosig="),
		} {
			if resp := f.get(t, u); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: status %d, want 403", name, resp.StatusCode)
			}
		}
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodHead} {
			req, err := http.NewRequest(m, v.DownloadURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp := f.do(t, req); resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s: status %d, want 403", m, resp.StatusCode)
			}
		}
	})
	t.Run("a link issued before a replacement stops working after it", func(t *testing.T) {
		t.Parallel()
		f, code, v, _ := setupFile(t)
		wantStatus(t, f.upload(t, code, "new.pdf", pdf(100, 6)), http.StatusCreated)
		wantError(t, f.get(t, v.DownloadURL), http.StatusGone, "REPLACED")
	})
	t.Run("the link never outlives the file", func(t *testing.T) {
		t.Parallel()
		f, _, v, _ := setupFile(t)
		f.clock.Add(72*time.Hour - 100*time.Second)
		resp := f.get(t, "/verifications/"+v.VerificationCode)
		wantStatus(t, resp, http.StatusOK)
		late := decode[web.VerificationJSON](t, resp)
		if !late.DownloadURLExpiresAt.Equal(late.ExpiresAt) {
			t.Errorf("link expires %v, file %v: want the file's expiry", late.DownloadURLExpiresAt, late.ExpiresAt)
		}
		f.clock.Add(100 * time.Second)
		// The file expired with the link: 410, as the file is.
		wantError(t, f.get(t, late.DownloadURL), http.StatusGone, "EXPIRED")
	})
	t.Run("a link past its time whose file is still there: 403", func(t *testing.T) {
		t.Parallel()
		f, _, v, _ := setupFile(t)
		f.clock.Add(exam.LinkLifetime)
		e := wantError(t, f.get(t, v.DownloadURL), http.StatusForbidden, "FORBIDDEN")
		if !strings.Contains(e.Message, "ask for a new one") {
			t.Errorf("403 message %q does not say to ask for a new link", e.Message)
		}
	})
}

// breakStore makes every write and delete of the bucket fail, as a full or
// unmounted disk would (its directory becomes a plain file; this works as
// root too); the returned function mends it.
func (f *fixture) breakStore(t *testing.T) (mend func()) {
	t.Helper()
	aside := f.dir + ".aside"
	if err := os.Rename(f.dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Remove(f.dir); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(aside, f.dir); err != nil {
			t.Fatal(err)
		}
	}
}

type failure struct {
	Operation, Key string
	Attempts       int
	Resolved       bool
}

func (f *fixture) failures(t *testing.T) []failure {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT operation, key, attempts, resolved_at IS NOT NULL FROM storage_failure ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []failure
	for rows.Next() {
		var x failure
		if err := rows.Scan(&x.Operation, &x.Key, &x.Attempts, &x.Resolved); err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// startWorkers starts the River workers and returns their job events;
// apptest stops them when the test ends.
func (f *fixture) startWorkers(t *testing.T) <-chan *river.Event {
	t.Helper()
	events, cancel := f.queue.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	t.Cleanup(cancel)
	apptest.Start(t, f.app)
	return events
}

// next waits for the next event of kind for a job of jobKind.
func next(t *testing.T, events <-chan *river.Event, kind river.EventKind, jobKind string) *river.Event {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == kind && e.Job.Kind == jobKind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s event for %s", kind, jobKind)
		}
	}
}

func TestStoreFailures(t *testing.T) {
	t.Parallel()
	t.Run("a failing write is 503, recorded, and its remains cleaned by a retried job", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		mend := f.breakStore(t)
		resp := f.upload(t, code, "a.pdf", pdf(2000, 1))
		wantError(t, resp, http.StatusServiceUnavailable, "STORAGE_UNAVAILABLE")
		if resp.Header.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		got := f.failures(t)
		if len(got) != 1 || got[0].Operation != "put" || !strings.HasPrefix(got[0].Key, "exams/") || got[0].Resolved {
			t.Fatalf("storage_failure %+v, want one open put failure", got)
		}
		if st := decode[web.StatusJSON](t, f.get(t, "/submissions/"+code)); st.UploadsLeft != 5 {
			t.Errorf("a failed upload counted: %+v", st)
		}
		events := f.startWorkers(t)
		e := next(t, events, river.EventKindJobFailed, "exam_blob_delete")
		if e.Job.Attempt != 1 {
			t.Errorf("first failure at attempt %d", e.Job.Attempt)
		}
		mend()
		next(t, events, river.EventKindJobCompleted, "exam_blob_delete")
		got = f.failures(t)
		if len(got) != 2 || !got[0].Resolved || !got[1].Resolved || got[1].Operation != "delete" || got[1].Attempts < 1 {
			t.Errorf("storage_failure %+v, want the put and the failed cleanup both resolved", got)
		}
		wantStatus(t, f.upload(t, code, "a.pdf", pdf(2000, 1)), http.StatusCreated)
	})
	t.Run("a replaced file whose delete fails is recorded and retried until it is gone", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		resp := f.upload(t, code, "a.pdf", pdf(2000, 1))
		wantStatus(t, resp, http.StatusCreated)
		old := decode[web.ReceiptJSON](t, resp)
		wantStatus(t, f.upload(t, code, "b.pdf", pdf(2000, 2)), http.StatusCreated)
		mend := f.breakStore(t)
		events := f.startWorkers(t)
		next(t, events, river.EventKindJobFailed, "exam_blob_delete")
		next(t, events, river.EventKindJobFailed, "exam_blob_delete")
		got := f.failures(t)
		if len(got) != 1 || got[0].Operation != "delete" || got[0].Attempts < 2 || got[0].Resolved {
			t.Fatalf("storage_failure %+v, want one open delete failure tried twice", got)
		}
		// Meanwhile the old code is 410 already.
		wantError(t, f.get(t, "/verifications/"+old.VerificationCode), http.StatusGone, "REPLACED")
		mend()
		next(t, events, river.EventKindJobCompleted, "exam_blob_delete")
		if got := f.failures(t); len(got) != 1 || !got[0].Resolved {
			t.Errorf("storage_failure %+v, want it resolved", got)
		}
		if b := f.blobs(t); len(b) != 1 {
			t.Errorf("blobs %v, want only the new file", b)
		}
	})
	t.Run("the expiry sweep records failed deletes and a job finishes them", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		wantStatus(t, f.upload(t, f.student(t), "a.pdf", pdf(2000, 1)), http.StatusCreated)
		wantStatus(t, f.upload(t, f.student(t), "b.pdf", pdf(2000, 2)), http.StatusCreated)
		f.clock.Add(exam.Lifetime)
		mend := f.breakStore(t)
		got, err := f.exams.Expire(context.Background(), f.queue)
		if err != nil {
			t.Fatal(err)
		}
		if got != (exam.Swept{Expired: 2, Failed: 2}) {
			t.Errorf("sweep %+v, want 2 expired, 2 failed", got)
		}
		if fs := f.failures(t); len(fs) != 2 || fs[0].Operation != "delete" {
			t.Errorf("storage_failure %+v, want 2 delete failures", fs)
		}
		mend()
		if n := f.runDeletes(t); n != 2 {
			t.Errorf("%d retry jobs, want 2", n)
		}
		for _, x := range f.failures(t) {
			if !x.Resolved {
				t.Errorf("unresolved after the retry: %+v", x)
			}
		}
		if b := f.blobs(t); len(b) != 0 {
			t.Errorf("blobs %v after the retries", b)
		}
	})
}

func TestPurgeDeletesFiles(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	closes := f.clock.Now().Add(time.Hour)
	id, err := f.exams.CreateExam(ctx, "examiner-1", "History", nil, &closes)
	if err != nil {
		t.Fatal(err)
	}
	created, _, err := f.exams.CreateStudents(ctx, "examiner-1", id, []exam.StudentInput{
		{Nickname: "a", FirstName: "A", LastName: "B", Email: "a@example.org"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := f.upload(t, created[0].UploadCode, "secret-name.pdf", pdf(1000, 1))
	wantStatus(t, resp, http.StatusCreated)
	rc := decode[web.ReceiptJSON](t, resp)
	f.clock.Add(time.Hour + exam.PurgeAfter)
	if _, err := f.exams.PurgeExam(ctx, "examiner-1", id); err != nil {
		t.Fatal(err)
	}
	wantError(t, f.get(t, "/verifications/"+rc.VerificationCode), http.StatusGone, "DELETED")
	wantError(t, f.get(t, "/submissions/"+created[0].UploadCode), http.StatusNotFound, "UNKNOWN_CODE")
	if n := f.runDeletes(t); n != 1 {
		t.Errorf("%d deletion jobs, want 1", n)
	}
	if b := f.blobs(t); len(b) != 0 {
		t.Errorf("blobs after purge: %v", b)
	}
	var names int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FROM exam_upload WHERE file_name IS NOT NULL`).Scan(&names); err != nil || names != 0 {
		t.Errorf("%d file names kept (%v)", names, err)
	}
}

func TestSweepRequeuesLostDeletions(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := context.Background()
	code := f.student(t)
	wantStatus(t, f.upload(t, code, "a.pdf", pdf(1000, 1)), http.StatusCreated)
	wantStatus(t, f.upload(t, code, "b.pdf", pdf(1000, 2)), http.StatusCreated)
	// The replaced file's job is lost (say, discarded after its retries).
	if _, err := f.pool.Exec(ctx, `DELETE FROM river_job WHERE kind = 'exam_blob_delete'`); err != nil {
		t.Fatal(err)
	}
	if got, err := f.exams.Expire(ctx, f.queue); err != nil || got.Requeued != 0 {
		t.Fatalf("sweep right after: %+v, %v; want nothing requeued yet", got, err)
	}
	f.clock.Add(exam.ReconcileAfter + time.Second)
	if got, err := f.exams.Expire(ctx, f.queue); err != nil || got.Requeued != 1 {
		t.Fatalf("sweep later: %+v, %v; want the lost deletion queued", got, err)
	}
	if got, err := f.exams.Expire(ctx, f.queue); err != nil || got.Requeued != 0 {
		t.Errorf("sweep again while queued: %+v, %v; want no second job", got, err)
	}
	if n := f.runDeletes(t); n != 1 || len(f.blobs(t)) != 1 {
		t.Errorf("%d jobs run, blobs %v; want the replaced file gone", n, f.blobs(t))
	}
}
