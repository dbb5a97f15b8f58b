package web_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"

	"github.com/shala-edu/shala/internal/config"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/web"
)

// TestS3WithMinIO runs the upload, verification and presigned-download path
// on s3blob against a real MinIO server, when the minio binary is on PATH
// (`go install github.com/minio/minio@latest`); otherwise it is skipped.
// Not parallel: the AWS credentials are process environment.
func TestS3WithMinIO(t *testing.T) {
	bin, err := exec.LookPath("minio")
	if err != nil {
		t.Skip("minio is not on PATH: s3blob against MinIO not exercised")
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "server", t.TempDir(), "--address", addr, "--console-address", freePort(t), "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER=shalatest", "MINIO_ROOT_PASSWORD=shalatest-secret-key")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Errorf("stop minio: %v", err)
		}
		var killed *exec.ExitError
		if err := cmd.Wait(); err != nil && !errors.As(err, &killed) {
			t.Errorf("wait for minio: %v", err)
		}
	})
	waitHealthy(t, "http://"+addr+"/minio/health/live")
	t.Setenv("AWS_ACCESS_KEY_ID", "shalatest")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "shalatest-secret-key")
	t.Setenv("AWS_REGION", "us-east-1")
	ctx := context.Background()
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://" + addr)
		o.UsePathStyle = true
	})
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("shala-test")}); err != nil {
		t.Fatal(err)
	}

	f := setup(t, func(c *config.Config) {
		c.BlobURL = "s3://shala-test?region=us-east-1&endpoint=http://" + addr + "&use_path_style=true&disable_https=true"
	})
	objects := func() []string {
		var keys []string
		it := f.bucket.List(&blob.ListOptions{Prefix: exam.BlobPrefix})
		for {
			o, err := it.Next(ctx)
			if err == io.EOF {
				return keys
			}
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, o.Key)
		}
	}
	code := f.student(t)
	wantError(t, f.upload(t, code, "big.pdf", pdf(exam.MaxFileBytes+1, 1)), http.StatusRequestEntityTooLarge, "FILE_TOO_LARGE")
	if keys := objects(); len(keys) != 0 {
		t.Fatalf("objects after a refused upload: %v", keys)
	}
	file := pdf(exam.MaxFileBytes, 2)
	resp := f.upload(t, code, "answers.pdf", file)
	wantStatus(t, resp, http.StatusCreated)
	rc := decode[web.ReceiptJSON](t, resp)
	v := decode[web.VerificationJSON](t, f.get(t, "/verifications/"+rc.VerificationCode))
	if !strings.HasPrefix(v.DownloadURL, "http://"+addr+"/shala-test/exams/") {
		t.Fatalf("download URL %s: want MinIO's presigned URL", v.DownloadURL)
	}
	dl := f.get(t, v.DownloadURL)
	wantStatus(t, dl, http.StatusOK)
	got, err := io.ReadAll(dl.Body)
	if err != nil || !bytes.Equal(got, file) || !strings.Contains(dl.Header.Get("Content-Disposition"), "answers.pdf") ||
		dl.Header.Get("Content-Type") != "application/pdf" {
		t.Fatalf("presigned download: %d bytes (%v), headers %v", len(got), err, dl.Header)
	}
	// After a replacement and its deletion job, the old link finds nothing.
	wantStatus(t, f.upload(t, code, "new.pdf", pdf(100, 3)), http.StatusCreated)
	f.runDeletes(t)
	if resp := f.get(t, v.DownloadURL); resp.StatusCode != http.StatusNotFound {
		t.Errorf("old presigned link after the replaced file's deletion: %d, want 404", resp.StatusCode)
	}
	if keys := objects(); len(keys) != 1 {
		t.Errorf("objects %v, want only the new file", keys)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitHealthy polls MinIO's liveness endpoint until it answers (it starts
// in about half a second), within a deadline.
func waitHealthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-time.After(50 * time.Millisecond): // a server starting up: nothing to wait on but its port
		case <-t.Context().Done():
			return
		}
	}
	t.Fatalf("minio did not become healthy at %s", url)
}
