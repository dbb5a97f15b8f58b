package web_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/web"
)

// tus speaks the tus 1.0.0 wire protocol to the fixture's server.
func (f *fixture) tus(t *testing.T, method, path string, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = f.url + path
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return f.do(t, req)
}

// create starts a resumable upload of length bytes and returns its URL.
func (f *fixture) create(t *testing.T, code string, length int) string {
	t.Helper()
	resp := f.tus(t, http.MethodPost, "/submissions/"+code+"/tus/", nil, map[string]string{
		"Upload-Length":   strconv.Itoa(length),
		"Upload-Metadata": "filename " + base64.StdEncoding.EncodeToString([]byte("answer sheet.pdf")) + ",student " + base64.StdEncoding.EncodeToString([]byte("forged")),
	})
	wantStatus(t, resp, http.StatusCreated)
	loc := resp.Header.Get("Location")
	if !strings.Contains(loc, "/submissions/"+code+"/tus/") {
		t.Fatalf("Location %q is not under the code's tus path", loc)
	}
	if _, err := time.Parse(http.TimeFormat, resp.Header.Get("Upload-Expires")); err != nil {
		t.Errorf("creation without Upload-Expires: %v", err)
	}
	return loc
}

func offset(t *testing.T, resp *http.Response) int {
	t.Helper()
	n, err := strconv.Atoi(resp.Header.Get("Upload-Offset"))
	if err != nil {
		t.Fatalf("Upload-Offset %q: %v", resp.Header.Get("Upload-Offset"), err)
	}
	return n
}

// cutPatch sends a PATCH that declares the whole remainder but stops after
// the first n bytes of body and drops the connection, as a phone losing its
// signal does; it returns once the server has finished with it.
func (f *fixture) cutPatch(t *testing.T, loc string, from int, body []byte, n int) {
	t.Helper()
	for len(f.closed) > 0 {
		<-f.closed
	}
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(loc, f.url)
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: shala\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"+
		"Upload-Offset: %d\r\nContent-Length: %d\r\n\r\n", path, from, len(body))
	if _, err := conn.Write(body[:n]); err != nil {
		t.Fatal(err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.closed:
	case <-time.After(30 * time.Second):
		t.Fatal("the server never finished the cut request")
	}
}

func TestTusResumesAfterACut(t *testing.T) {
	t.Parallel()
	f := setup(t)
	code := f.student(t)
	file := pdf(1<<20, 7)
	loc := f.create(t, code, len(file))

	cut := len(file) * 9 / 10
	f.cutPatch(t, loc, 0, file, cut)

	head := f.tus(t, http.MethodHead, loc, nil, nil)
	wantStatus(t, head, http.StatusOK)
	if got := offset(t, head); got != cut {
		t.Fatalf("after the cut the server has %d bytes, want the %d sent", got, cut)
	}
	if head.Header.Get("Upload-Expires") == "" {
		t.Error("HEAD of an unfinished upload without Upload-Expires")
	}
	// Resume: only the remainder goes over the wire.
	rest := file[cut:]
	resp := f.tus(t, http.MethodPatch, loc, rest, map[string]string{"Upload-Offset": strconv.Itoa(cut)})
	wantStatus(t, resp, http.StatusNoContent)
	if got := offset(t, resp); got != len(file) || len(rest) != len(file)-cut {
		t.Fatalf("resumed with %d bytes to offset %d, want %d to %d", len(rest), got, len(file)-cut, len(file))
	}
	code9 := resp.Header.Get(web.HeaderVerificationCode)
	sum := sha256.Sum256(file)
	if !exam.ValidVerificationCode(code9) || resp.Header.Get(web.HeaderSHA256) != hex.EncodeToString(sum[:]) ||
		resp.Header.Get(web.HeaderUploadsLeft) != "4" {
		t.Fatalf("finish headers %v: want the receipt of the whole file", resp.Header)
	}
	// The file is the student's, whole.
	v := decode[web.VerificationJSON](t, f.get(t, "/verifications/"+code9))
	if v.FileName != "answer sheet.pdf" || v.Size != int64(len(file)) {
		t.Errorf("verification %+v", v)
	}
	got, err := io.ReadAll(f.get(t, v.DownloadURL).Body)
	if err != nil || !bytes.Equal(got, file) {
		t.Fatalf("downloaded %d bytes (%v), want the %d uploaded", len(got), err, len(file))
	}
	// A client whose last response was lost asks again: same receipt,
	// counted once.
	for range 2 {
		again := f.tus(t, http.MethodHead, loc, nil, nil)
		wantStatus(t, again, http.StatusOK)
		if again.Header.Get(web.HeaderVerificationCode) != code9 || again.Header.Get(web.HeaderUploadsLeft) != "4" {
			t.Errorf("HEAD after the finish: %v, want the first receipt", again.Header)
		}
	}
}

func TestTusRules(t *testing.T) {
	t.Parallel()
	t.Run("discovery announces creation, termination and expiration", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		resp := f.tus(t, http.MethodOptions, "/submissions/"+f.student(t)+"/tus/", nil, nil)
		ext := resp.Header.Get("Tus-Extension")
		for _, want := range []string{"creation", "termination", "expiration"} {
			if !strings.Contains(ext, want) {
				t.Errorf("Tus-Extension %q lacks %s", ext, want)
			}
		}
		if strings.Contains(ext, "defer") {
			t.Errorf("Tus-Extension %q offers deferred lengths, which are refused", ext)
		}
		if resp.Header.Get("Tus-Max-Size") != strconv.Itoa(exam.MaxFileBytes) {
			t.Errorf("Tus-Max-Size %q", resp.Header.Get("Tus-Max-Size"))
		}
	})
	t.Run("a declared length over 3 MiB is 413 at creation", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		resp := f.tus(t, http.MethodPost, "/submissions/"+f.student(t)+"/tus/", nil, map[string]string{"Upload-Length": strconv.Itoa(exam.MaxFileBytes + 1)})
		wantStatus(t, resp, http.StatusRequestEntityTooLarge)
		f.create(t, f.student(t), exam.MaxFileBytes)
	})
	t.Run("the limit is checked at creation and again at the finish", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		for i := range 4 {
			wantStatus(t, f.upload(t, code, "a.pdf", pdf(100, byte(i))), http.StatusCreated)
		}
		loc := f.create(t, code, 500)
		wantStatus(t, f.upload(t, code, "five.pdf", pdf(100, 9)), http.StatusCreated)
		wantError(t, f.tus(t, http.MethodPatch, loc, pdf(500, 1), map[string]string{"Upload-Offset": "0"}), http.StatusUnprocessableEntity, "UPLOAD_LIMIT_REACHED")
		wantError(t, f.tus(t, http.MethodPost, "/submissions/"+code+"/tus/", nil, map[string]string{"Upload-Length": "100"}), http.StatusUnprocessableEntity, "UPLOAD_LIMIT_REACHED")
		if got := len(f.blobs(t)); got != 5 {
			t.Errorf("%d blobs, want 5 (the refused finish stored nothing)", got)
		}
		wantStatus(t, f.tus(t, http.MethodHead, loc, nil, nil), http.StatusNotFound)
		if left := f.tusFiles(t); len(left) != 0 {
			t.Errorf("tus directory after a refused finish: %v", left)
		}
	})
	t.Run("a finished file of the wrong type is 415", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		gif := []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;")
		loc := f.create(t, code, len(gif))
		wantError(t, f.tus(t, http.MethodPatch, loc, gif, map[string]string{"Upload-Offset": "0"}), http.StatusUnsupportedMediaType, "UNSUPPORTED_TYPE")
		if st := decode[web.StatusJSON](t, f.get(t, "/submissions/"+code)); st.UploadsLeft != 5 {
			t.Errorf("a refused file counted: %+v", st)
		}
		// It can never be accepted: its bytes are removed at once, not kept
		// an hour (a code holder sending junk again and again must not fill
		// the disk).
		wantStatus(t, f.tus(t, http.MethodHead, loc, nil, nil), http.StatusNotFound)
		if left := f.tusFiles(t); len(left) != 0 {
			t.Errorf("tus directory after a refused finish: %v", left)
		}
	})
	t.Run("an upload belongs to the code that created it", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		loc := f.create(t, f.student(t), 100)
		other := f.student(t)
		stolen := strings.Replace(loc, loc[strings.Index(loc, "/submissions/")+13:strings.Index(loc, "/tus/")], other, 1)
		wantStatus(t, f.tus(t, http.MethodHead, stolen, nil, nil), http.StatusNotFound)
		wantStatus(t, f.tus(t, http.MethodPatch, stolen, pdf(100, 1), map[string]string{"Upload-Offset": "0"}), http.StatusNotFound)
		wantStatus(t, f.tus(t, http.MethodHead, loc, nil, nil), http.StatusOK)
	})
	t.Run("unfinished uploads expire after 24 h", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		loc := f.create(t, code, 1000)
		wantStatus(t, f.tus(t, http.MethodPatch, loc, pdf(1000, 1)[:400], map[string]string{"Upload-Offset": "0"}), http.StatusNoContent)
		f.clock.Add(24*time.Hour - time.Second)
		wantStatus(t, f.tus(t, http.MethodHead, loc, nil, nil), http.StatusOK)
		f.clock.Add(time.Second)
		wantError(t, f.tus(t, http.MethodPatch, loc, pdf(1000, 1)[400:], map[string]string{"Upload-Offset": "400"}), http.StatusGone, "EXPIRED")
		wantStatus(t, f.tus(t, http.MethodHead, loc, nil, nil), http.StatusNotFound)
	})
	t.Run("a student holds at most three unfinished uploads; a new one removes the oldest", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		var locs []string
		for range web.TusMaxUnfinished + 1 {
			locs = append(locs, f.create(t, code, 1000))
			f.clock.Add(time.Minute)
		}
		wantStatus(t, f.tus(t, http.MethodHead, locs[0], nil, nil), http.StatusNotFound)
		for _, loc := range locs[1:] {
			wantStatus(t, f.tus(t, http.MethodHead, loc, nil, nil), http.StatusOK)
		}
	})
	t.Run("termination removes an unfinished upload", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		loc := f.create(t, f.student(t), 1000)
		wantStatus(t, f.tus(t, http.MethodDelete, loc, nil, nil), http.StatusNoContent)
		wantStatus(t, f.tus(t, http.MethodHead, loc, nil, nil), http.StatusNotFound)
	})
	t.Run("creation with the whole file in the POST finishes at once", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		file := pdf(3000, 2)
		resp := f.tus(t, http.MethodPost, "/submissions/"+f.student(t)+"/tus/", file, map[string]string{"Upload-Length": strconv.Itoa(len(file))})
		wantStatus(t, resp, http.StatusCreated)
		if !exam.ValidVerificationCode(resp.Header.Get(web.HeaderVerificationCode)) {
			t.Errorf("creation-with-upload headers %v: want the receipt", resp.Header)
		}
	})
}

// tusFiles lists what the tus directory holds (uploads' data, info and
// lock files).
func (f *fixture) tusFiles(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(f.tusDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestTusBehindAProxy(t *testing.T) {
	t.Parallel()
	// People reach shala at SHALA_PUBLIC_URL (TLS ended by a proxy in
	// front); the upload's URL must be there, not at the address the
	// request arrived on (plain http, an internal host).
	f := setup(t, func(c *config.Config) { c.PublicURL = "https://exams.example.org/shala" })
	code := f.student(t)
	resp := f.tus(t, http.MethodPost, "/submissions/"+code+"/tus/", nil, map[string]string{"Upload-Length": "100"})
	wantStatus(t, resp, http.StatusCreated)
	loc := resp.Header.Get("Location")
	if want := "https://exams.example.org/shala/submissions/" + code + "/tus/"; !strings.HasPrefix(loc, want) || len(loc) != len(want)+48 {
		t.Errorf("Location %q, want %s followed by the upload's id", loc, want)
	}
}

func TestTusFinishRetried(t *testing.T) {
	t.Parallel()
	t.Run("a PATCH again after a failed finish accepts the file and returns the receipt", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		code := f.student(t)
		file := pdf(2000, 3)
		loc := f.create(t, code, len(file))
		mend := f.breakStore(t)
		wantError(t, f.tus(t, http.MethodPatch, loc, file, map[string]string{"Upload-Offset": "0"}), http.StatusServiceUnavailable, "STORAGE_UNAVAILABLE")
		mend()
		// A client that retries the request (rather than asking HEAD
		// first) sends an empty PATCH at the end offset: the 204 must mean
		// the file is accepted, with its receipt.
		resp := f.tus(t, http.MethodPatch, loc, []byte{}, map[string]string{"Upload-Offset": strconv.Itoa(len(file))})
		wantStatus(t, resp, http.StatusNoContent)
		vc := resp.Header.Get(web.HeaderVerificationCode)
		if !exam.ValidVerificationCode(vc) || resp.Header.Get(web.HeaderUploadsLeft) != "4" {
			t.Fatalf("PATCH after a failed finish: headers %v, want the receipt", resp.Header)
		}
		if st := decode[web.StatusJSON](t, f.get(t, "/submissions/"+code)); !st.HasUpload || st.UploadsLeft != 4 {
			t.Errorf("status %+v, want the file accepted once", st)
		}
		if again := f.tus(t, http.MethodHead, loc, nil, nil); again.Header.Get(web.HeaderVerificationCode) != vc {
			t.Errorf("HEAD after: %v, want the same receipt", again.Header)
		}
	})
}

func TestTusErrorsSpeakTus(t *testing.T) {
	t.Parallel()
	f := setup(t)
	// tus 1.0.0: Tus-Resumable in every response but OPTIONS, shala's own
	// errors included.
	for _, resp := range []*http.Response{
		f.tus(t, http.MethodPost, "/submissions/ZZZZZZZZ/tus/", nil, map[string]string{"Upload-Length": "100"}),
		f.tus(t, http.MethodHead, "/submissions/"+f.student(t)+"/tus/"+strings.Repeat("0", 48), nil, nil),
	} {
		wantStatus(t, resp, http.StatusNotFound)
		if got := resp.Header.Get("Tus-Resumable"); got != "1.0.0" {
			t.Errorf("%s %s: Tus-Resumable %q, want 1.0.0", resp.Request.Method, resp.Request.URL.Path, got)
		}
	}
}

// The public rate limit in front of the tus routes speaks tus too.
func TestTusRateLimitSpeaksTus(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *config.Config) { c.PublicRate, c.PublicBurst = 0.001, 1 })
	code := f.student(t)
	f.tus(t, http.MethodHead, "/submissions/"+code+"/tus/"+strings.Repeat("0", 48), nil, nil).Body.Close()
	resp := f.tus(t, http.MethodHead, "/submissions/"+code+"/tus/"+strings.Repeat("0", 48), nil, nil)
	wantStatus(t, resp, http.StatusTooManyRequests)
	if got := resp.Header.Get("Tus-Resumable"); got != "1.0.0" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("429: Tus-Resumable %q, Retry-After %q; want 1.0.0 and a wait", got, resp.Header.Get("Retry-After"))
	}
}

func TestExamWindow(t *testing.T) {
	t.Parallel()
	f := setup(t)
	opens, closes := f.clock.Now().Add(time.Hour), f.clock.Now().Add(3*time.Hour)
	code := f.studentIn(t, &opens, &closes)
	wantError(t, f.upload(t, code, "early.pdf", pdf(100, 1)), http.StatusUnprocessableEntity, "EXAM_NOT_OPEN")
	wantError(t, f.tus(t, http.MethodPost, "/submissions/"+code+"/tus/", nil, map[string]string{"Upload-Length": "100"}), http.StatusUnprocessableEntity, "EXAM_NOT_OPEN")

	f.clock.Add(3*time.Hour - time.Minute) // a minute before the close
	slow := f.create(t, code, 1000)        // a slow link, finishing after the close
	reserved := f.create(t, code, 1000)    // a placeholder, filled in at leisure
	f.clock.Add(time.Minute)
	wantError(t, f.upload(t, code, "late.pdf", pdf(100, 2)), http.StatusUnprocessableEntity, "EXAM_CLOSED")
	wantError(t, f.tus(t, http.MethodPost, "/submissions/"+code+"/tus/", nil, map[string]string{"Upload-Length": "100"}), http.StatusUnprocessableEntity, "EXAM_CLOSED")

	// Started before the close, finished within the grace a slow link
	// needs: accepted.
	f.clock.Add(exam.LateFinishGrace - time.Second)
	resp := f.tus(t, http.MethodPatch, slow, pdf(1000, 3), map[string]string{"Upload-Offset": "0"})
	wantStatus(t, resp, http.StatusNoContent)
	if !exam.ValidVerificationCode(resp.Header.Get(web.HeaderVerificationCode)) {
		t.Errorf("finish within the grace: headers %v, want the receipt", resp.Header)
	}
	// Started before the close but finished after the grace — up to 24 h
	// later, answers written after the close — refused.
	f.clock.Add(time.Second)
	wantError(t, f.tus(t, http.MethodPatch, reserved, pdf(1000, 4), map[string]string{"Upload-Offset": "0"}), http.StatusUnprocessableEntity, "EXAM_CLOSED")
}
