package server_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"github.com/shala-edu/shala/internal/slowread/slowreadtest"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/pgtest"
)

func multipartSubmission(t *testing.T, doc string, photo []byte) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	xw, _ := mw.CreateFormFile("xml_submission_file", "submission.xml")
	_, _ = xw.Write([]byte(doc))
	pw, _ := mw.CreateFormFile("1700463587123.jpg", "1700463587123.jpg")
	_, _ = pw.Write(photo)
	_ = mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

// TestSlowPhonesAreServedAndStalledOnesDropped: the server keeps a short
// whole-request read timeout (as production keeps one for every other
// route); an OpenRosa upload that takes several times longer but keeps above
// the floor is received, one that stalls or trickles below the floor is
// dropped within a window and answered 503 (so Collect sends again) with
// nothing of the connection's own error in the answer.
func TestSlowPhonesAreServedAndStalledOnesDropped(t *testing.T) {
	t.Parallel()
	const window = 300 * time.Millisecond
	b := setupServer(t, pgtest.New(t), discard, func(c *config.Config) {
		c.OpenRosaMaxBytes = 1 << 20
		c.UploadMinRate, c.UploadWindow = 8<<10, window // 2.4 kB per window
	}, func(s *http.Server) {
		s.ReadTimeout, s.WriteTimeout = 400*time.Millisecond, 600*time.Millisecond
	})
	b.registerHousehold(t)
	_, token := b.createCollector(t)
	doc := xformFile(t, "household_submission.xml")
	photo := bytes.Repeat([]byte{0xff, 0xd8, 0xff, 0xe0}, 15<<10) // 60 kB

	send := func(t *testing.T, doc string, p *slowreadtest.Link) (int, http.Header, string) {
		t.Helper()
		body, ctype := multipartSubmission(t, doc, photo)
		p.Data = body
		// The answer can come before the transport gives up the body:
		// a stalled phone's reader ends with the request, not the test.
		defer p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.url+"/openrosa/key/"+token+"/submission", p)
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("X-OpenRosa-Version", "1.0")
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(raw)
	}

	t.Run("slow but steady: received", func(t *testing.T) {
		// 4 kB every 100 ms (≈ 320 kbit/s): ~1.6 s, four times the read timeout.
		status, _, body := send(t, doc, &slowreadtest.Link{Chunk: 4 << 10, Interval: 100 * time.Millisecond})
		if status != http.StatusCreated || !strings.Contains(body, "Form received") {
			t.Fatalf("got %d %s, want 201 Form received", status, body)
		}
		if n := b.count(t, `SELECT count(*) FROM form_attachment WHERE size = $1`, len(photo)); n != 1 {
			t.Errorf("%d attachments of the photo's size, want 1", n)
		}
	})

	other := func(n string) string {
		return strings.Replace(doc, "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7b", "uuid:6f1c2d8e-3b4a-4e5f-9a7b-2c1d0e9f8a7"+n, 1)
	}
	for _, tt := range []struct {
		name string
		doc  string
		p    *slowreadtest.Link
	}{
		{"stalled: dropped", other("c"), &slowreadtest.Link{Chunk: 4 << 10, Interval: 10 * time.Millisecond, StallAt: 12 << 10}},
		{"below the floor: dropped", other("d"), &slowreadtest.Link{Chunk: 200, Interval: 100 * time.Millisecond}}, // 2 kB/s
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := send(t, tt.doc, tt.p)
			var env struct {
				XMLName xml.Name `xml:"OpenRosaResponse"`
				Message string   `xml:"message"`
			}
			if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || xml.Unmarshal([]byte(body), &env) != nil ||
				!strings.Contains(env.Message, "send it again") {
				t.Fatalf("got %d (Retry-After %q) %s, want 503 with Retry-After and an OpenRosa message asking to send again", status, hdr.Get("Retry-After"), body)
			}
			for _, leak := range []string{"tcp", "127.0.0.1", "timeout", "i/o"} {
				if strings.Contains(body, leak) {
					t.Errorf("answer %q contains %q", body, leak)
				}
			}
			if sent := tt.p.Sent(); sent >= len(tt.p.Data) {
				t.Errorf("the whole body was sent (%d bytes): the test did not exercise a drop", sent)
			}
		})
	}
	if n := b.count(t, `SELECT count(*) FROM form_submission`); n != 1 {
		t.Errorf("%d submissions stored, want only the complete one", n)
	}
}
