// Command exams benchmarks exam answer files, each figure next to a
// reference measured in the same run on the same disk:
//
//   - uploads: students POST 1 MiB answer files (multipart, as a browser
//     sends them) to /submissions/{code} through the real router — code
//     check, streaming into fileblob with the cap, sniffing and hashing,
//     the replace-in-one-transaction — from 32 concurrent students; the
//     reference is fileblob writing the same 1 MiB blobs directly with 32
//     writers (ratio = upload MB/s ÷ raw write MB/s);
//   - memory per in-flight upload: 200 uploads held half-sent (slow
//     phones), the process's heap and stacks measured before and while
//     they are open (streamed: a whole file must not be in memory);
//   - the expiry sweep: 100,000 expired uploads among 1,000,000 rows,
//     deleted from fileblob and marked expired; the reference is deleting
//     as many blobs directly with the sweep's parallelism.
//
// It prints one result line.
//
//	go run ./bench/exams [-clients 32] [-duration 10s] [-rows 1000000] [-expired 100000]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"

	"github.com/shala-edu/shala/bench/benchdb"
	"github.com/shala-edu/shala/internal/exam"
	"github.com/shala-edu/shala/internal/queue"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/exams:", err)
		os.Exit(1)
	}
}

const fileSize = 1 << 20

func run() (err error) {
	clients := flag.Int("clients", 32, "concurrent students uploading (and raw writers)")
	duration := flag.Duration("duration", 10*time.Second, "duration of each throughput measurement")
	inflight := flag.Int("inflight", 200, "uploads held half-sent for the memory measurement")
	rows := flag.Int("rows", 1_000_000, "uploads in the table for the sweep")
	expired := flag.Int("expired", 100_000, "of which expired")
	flag.Parse()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	pool, cleanup, err := benchdb.Open(ctx, int32(*clients+16))
	if err != nil {
		return err
	}
	defer cleanup()
	dir, err := os.MkdirTemp("", "shala-bench-exams-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	a, closeApp, err := benchdb.NewApp(ctx, pool, map[string]string{
		// Temp files next to the blobs: the memory measurement counts them.
		"SHALA_BLOB_URL":      "file://" + dir + "?create_dir=true&no_tmp_dir=true",
		"SHALA_PUBLIC_URL":    "http://127.0.0.1",
		"SHALA_QUEUE_WORKERS": "0",
		// One load generator, one IP: no per-IP limit.
		"SHALA_PUBLIC_RATE":  "1e9",
		"SHALA_PUBLIC_BURST": fmt.Sprint(1 << 30),
	}, log)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeApp()) }()
	bucket, exams, q := a.Bucket, a.Exams, a.Queue
	base, stop, err := benchdb.Serve(ctx, a.Handler(), log)
	if err != nil {
		return err
	}
	defer stop()

	rawMBs, err := rawWrites(ctx, bucket, *clients, *duration)
	if err != nil {
		return fmt.Errorf("raw writes: %w", err)
	}
	codes, err := students(ctx, exams, 5000)
	if err != nil {
		return err
	}
	up, err := uploads(base, codes, *clients, *duration)
	if err != nil {
		return fmt.Errorf("uploads: %w", err)
	}
	perUpload, err := inFlightMemory(base, dir, codes[len(codes)-*inflight:], *inflight)
	if err != nil {
		return fmt.Errorf("in-flight memory: %w", err)
	}
	rawDeletes, err := rawDeleteRate(ctx, bucket, *expired)
	if err != nil {
		return fmt.Errorf("raw deletes: %w", err)
	}
	sweepRate, swept, err := sweep(ctx, pool, bucket, exams, q, *rows, *expired)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	fmt.Printf("bench/exams: 1 MiB uploads/s=%.1f MB/s=%.1f p50=%.0fms p99=%.0fms failures=%d | fileblob raw write MB/s=%.1f | ratio=%.2f | in-flight upload memory=%.0f KiB each (%d held half-sent) | expiry sweep=%.0f files/s (%d expired of %d rows) | raw fileblob deletes=%.0f/s | ratio=%.2f | clients=%d duration=%s cpus=%d\n",
		up.perSecond, up.perSecond*fileSize/1e6, ms(up.p50), ms(up.p99), up.failures, rawMBs, up.perSecond*fileSize/1e6/rawMBs,
		perUpload/1024, *inflight, sweepRate, swept, *rows, rawDeletes, sweepRate/rawDeletes, *clients, *duration, runtime.NumCPU())
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func pdf(seed int) []byte {
	b := bytes.Repeat([]byte{byte('a' + seed%26)}, fileSize)
	copy(b, fmt.Sprintf("%%PDF-1.7\n%% %d\n", seed))
	return b
}

// rawWrites is the reference: 1 MiB blobs written straight to fileblob by
// n writers, in MB/s.
func rawWrites(ctx context.Context, bucket *blob.Bucket, n int, d time.Duration) (float64, error) {
	file := pdf(0)
	var count atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range n {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				key := fmt.Sprintf("raw/%d-%d", w, i)
				if err := bucket.WriteAll(ctx, key, file, &blob.WriterOptions{ContentType: "application/pdf"}); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				count.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(count.Load()) * fileSize / 1e6 / time.Since(start).Seconds(), nil
}

// students creates one exam with n students and returns their codes.
func students(ctx context.Context, exams *exam.Store, n int) ([]string, error) {
	id, err := exams.CreateExam(ctx, "bench-examiner", "Bench exam", nil, nil)
	if err != nil {
		return nil, err
	}
	var codes []string
	for len(codes) < n {
		batch := make([]exam.StudentInput, min(exam.MaxStudentsPerCall, n-len(codes)))
		for i := range batch {
			k := len(codes) + i
			batch[i] = exam.StudentInput{Nickname: fmt.Sprintf("s%d", k), FirstName: "Bench", LastName: "Student", Email: fmt.Sprintf("s%d@example.org", k)}
		}
		created, rowErrs, err := exams.CreateStudents(ctx, "bench-examiner", id, batch, nil)
		if err != nil {
			return nil, err
		}
		if len(rowErrs) > 0 {
			return nil, fmt.Errorf("students: %v", rowErrs[0])
		}
		for _, c := range created {
			codes = append(codes, c.UploadCode)
		}
	}
	return codes, nil
}

type uploadResult struct {
	perSecond float64
	p50, p99  time.Duration
	failures  int64
}

// uploads has n students upload 1 MiB files for d, each student five times
// (the limit) before the next student's code is taken.
func uploads(base string, codes []string, n int, d time.Duration) (uploadResult, error) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var next atomic.Int64
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range n {
		wg.Go(func() {
			body, ct := multipartFile(pdf(w))
			for time.Now().Before(deadline) {
				i := int(next.Add(1)) - 1
				if i/5 >= len(codes)-400 { // the last codes are kept for the memory measurement
					firstErr.CompareAndSwap(nil, errors.New("out of students: raise the count"))
					return
				}
				t0 := time.Now()
				resp, err := client.Post(base+"/submissions/"+codes[i/5], ct, bytes.NewReader(body))
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					failed.Add(1)
					continue
				}
				ok.Add(1)
				mu.Lock()
				latencies = append(latencies, time.Since(t0))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, isErr := firstErr.Load().(error); isErr {
		return uploadResult{}, err
	}
	if len(latencies) == 0 {
		return uploadResult{}, fmt.Errorf("no upload succeeded (%d failed)", failed.Load())
	}
	slices.Sort(latencies)
	return uploadResult{perSecond: float64(ok.Load()) / elapsed.Seconds(), p50: latencies[len(latencies)/2],
		p99: latencies[len(latencies)*99/100], failures: failed.Load()}, nil
}

func multipartFile(file []byte) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, err := mw.CreateFormFile("file", "answers.pdf")
	if err == nil {
		_, err = w.Write(file)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		panic(err) // writing to memory
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// inFlightMemory holds n uploads half-sent and returns the process's extra
// heap and stack bytes per upload while they are open.
func inFlightMemory(base, dir string, codes []string, n int) (float64, error) {
	before := memInUse()
	addr := strings.TrimPrefix(base, "http://")
	body, ct := multipartFile(pdf(99))
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /submissions/%s HTTP/1.1\r\nHost: bench\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", codes[i], ct, len(body))
		if _, err := c.Write(body[:len(body)/2]); err != nil {
			return 0, err
		}
	}
	// Every upload is streaming into its blob: its temp file exists.
	deadline := time.Now().Add(60 * time.Second)
	for countTemp(dir) < n {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("only %d of %d uploads reached storage", countTemp(dir), n)
		}
		runtime.Gosched()
	}
	during := memInUse()
	return (float64(during) - float64(before)) / float64(n), nil
}

func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func countTemp(dir string) int {
	n := 0
	_ = filepath.WalkDir(filepath.Join(dir, exam.BlobPrefix), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			n++
		}
		return nil
	})
	return n
}

// rawDeleteRate is the reference: n small blobs deleted straight from
// fileblob, 16 at a time as the sweep does.
func rawDeleteRate(ctx context.Context, bucket *blob.Bucket, n int) (float64, error) {
	keys, err := makeBlobs(ctx, bucket, "rawdel/", n)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr atomic.Value
	ch := make(chan string)
	for range 16 {
		wg.Go(func() {
			for k := range ch {
				if err := bucket.Delete(ctx, k); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

func makeBlobs(ctx context.Context, bucket *blob.Bucket, prefix string, n int) ([]string, error) {
	keys := make([]string, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	ch := make(chan int)
	small := []byte("%PDF-1.7\n answer\n")
	for range 16 {
		wg.Go(func() {
			for i := range ch {
				if err := bucket.WriteAll(ctx, keys[i], small, &blob.WriterOptions{ContentType: "application/pdf"}); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	for i := range keys {
		keys[i] = fmt.Sprintf("%sb%d", prefix, i)
		ch <- i
	}
	close(ch)
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return nil, err
	}
	return keys, nil
}

// sweep fills exam_upload with rows uploads (one per student) of which
// expired are past their expiry and have a blob, then times exam.Expire.
func sweep(ctx context.Context, pool *pgxpool.Pool, bucket *blob.Bucket, exams *exam.Store, q queue.Inserter, rows, expired int) (float64, int, error) {
	examID := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO exam (id, title, examiner_id) VALUES ($1, 'Sweep bench', 'bench')`, examID); err != nil {
		return 0, 0, err
	}
	_, err := pool.Exec(ctx, `
		INSERT INTO exam_student (exam_id, nickname, first_name, last_name, email, upload_code)
		SELECT $1, 'n' || i, 'F', 'L', 'sweep' || i || '@example.org', upper(lpad(to_hex(i), 8, '0'))
		FROM generate_series(1, $2::int) i`, examID, rows)
	if err != nil {
		return 0, 0, err
	}
	// Rows 1..expired expired an hour ago; the rest expire in two days.
	_, err = pool.Exec(ctx, `
		INSERT INTO exam_upload (student_id, attempt, blob_key, content_type, size, sha256, verification_code,
			uploaded_at, expires_at, state_changed_at)
		SELECT st.id, 1, 'exams/b' || (row_number() OVER (ORDER BY st.upload_code) - 1), 'application/pdf', 17, repeat('a', 64),
			lpad(to_hex(row_number() OVER (ORDER BY st.upload_code)), 9, '0'),
			CASE WHEN row_number() OVER (ORDER BY st.upload_code) <= $2 THEN now() - interval '73 hours' ELSE now() - interval '24 hours' END,
			CASE WHEN row_number() OVER (ORDER BY st.upload_code) <= $2 THEN now() - interval '1 hour' ELSE now() + interval '48 hours' END,
			now()
		FROM exam_student st WHERE st.exam_id = $1`, examID, expired)
	if err != nil {
		return 0, 0, err
	}
	if _, err := pool.Exec(ctx, `ANALYZE exam_upload; ANALYZE exam_student`); err != nil {
		return 0, 0, err
	}
	if _, err := makeBlobs(ctx, bucket, exam.BlobPrefix, expired); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	res, err := exams.Expire(ctx, q)
	elapsed := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if res.Expired != expired || res.Deleted != expired {
		b, _ := json.Marshal(res)
		return 0, 0, fmt.Errorf("sweep did %s, want %d expired and deleted", b, expired)
	}
	return float64(res.Deleted) / elapsed.Seconds(), res.Deleted, nil
}
