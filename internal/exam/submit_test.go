package exam

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/upload"
)

// submitFixture is a Store on a fresh database and a fileblob bucket, with
// a clock the test moves and a queue whose inserts the test can watch.
type submitFixture struct {
	pool   *pgxpool.Pool
	bucket *blob.Bucket
	store  *Store
	queue  *hookedQueue

	mu  sync.Mutex
	now time.Time
}

func (f *submitFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *submitFixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// hookedQueue runs onInsert (once) when a job is inserted inside a
// transaction, then inserts it.
type hookedQueue struct {
	queue.Inserter
	onInsert func()
}

func (q *hookedQueue) InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	if q.onInsert != nil {
		q.onInsert()
		q.onInsert = nil
	}
	return q.Inserter.InsertManyTx(ctx, tx, params)
}

func setupSubmit(t *testing.T) (*submitFixture, string) {
	t.Helper()
	pool := pgtest.New(t)
	bucket := testBucket(t)
	q, err := queue.New(pool, nil, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &submitFixture{pool: pool, bucket: bucket, queue: &hookedQueue{Inserter: q},
		// The wall clock (blobs' modification times follow it), with
		// nanoseconds Postgres does not keep.
		now: time.Now().UTC().Truncate(time.Second).Add(123456789)}
	f.store = New(Deps{Pool: pool, Files: NewFiles(bucket), Queue: f.queue, Now: f.clock})
	ctx := context.Background()
	id, err := f.store.CreateExam(ctx, "examiner-1", "Chemistry", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	created, errs, err := f.store.CreateStudents(ctx, "examiner-1", id, []StudentInput{
		{Nickname: "asha", FirstName: "Asha", LastName: "Verma", Email: "asha@example.org"}}, nil)
	if err != nil || len(errs) > 0 {
		t.Fatalf("create student: %v %v", err, errs)
	}
	return f, created[0].UploadCode
}

// testBucket is a fileblob bucket in a temp dir, temp files beside the
// blobs.
func testBucket(t *testing.T) *blob.Bucket {
	t.Helper()
	bucket, err := fileblob.OpenBucket(t.TempDir(), &fileblob.Options{CreateDir: true, NoTempDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	return bucket
}

// readHook runs hook on its first read, then reads r.
type readHook struct {
	r    io.Reader
	hook func()
}

func (h *readHook) Read(p []byte) (int, error) {
	if h.hook != nil {
		h.hook()
		h.hook = nil
	}
	return h.r.Read(p)
}

func pdfBytes(n int, fill byte) []byte {
	b := bytes.Repeat([]byte{fill}, n)
	copy(b, "%PDF-1.7\n")
	return b
}

func TestSubmitOnceTheBytesAreIn(t *testing.T) {
	t.Parallel()
	t.Run("the client leaving while the upload is recorded does not undo it", func(t *testing.T) {
		t.Parallel()
		f, code := setupSubmit(t)
		ctx := context.Background()
		if _, err := f.store.Submit(ctx, Submission{Code: code, FileName: "a.pdf", Body: bytes.NewReader(pdfBytes(2000, 'a'))}); err != nil {
			t.Fatal(err)
		}
		// The second upload replaces the first: its transaction queues the
		// old blob's deletion, and there the client goes away (a phone
		// losing its signal after its last byte). Cancelled mid-commit, the
		// outcome would be unknown — and the new blob deleted as refused
		// while its row may have committed.
		reqCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		f.queue.onInsert = cancel
		rc, err := f.store.Submit(reqCtx, Submission{Code: code, FileName: "b.pdf", Body: bytes.NewReader(pdfBytes(3000, 'b'))})
		if err != nil {
			t.Fatalf("Submit with the client gone after its last byte: %v", err)
		}
		var key, state string
		if err := f.pool.QueryRow(ctx, `SELECT blob_key, state FROM exam_upload WHERE verification_code = $1`, rc.VerificationCode).Scan(&key, &state); err != nil {
			t.Fatal(err)
		}
		if ok, err := f.bucket.Exists(ctx, key); err != nil || !ok || state != StateActive {
			t.Errorf("upload %s: blob exists %v (%v); want the active upload's blob stored", state, ok, err)
		}
	})
	t.Run("uploaded_at is when the last byte arrived, not when the request began", func(t *testing.T) {
		t.Parallel()
		f, code := setupSubmit(t)
		ctx := context.Background()
		// 3 MiB at 256 kbit/s: the bytes take about 100 s.
		body := &readHook{r: bytes.NewReader(pdfBytes(MaxFileBytes, 'c')), hook: func() { f.advance(100 * time.Second) }}
		began := f.clock()
		rc, err := f.store.Submit(ctx, Submission{Code: code, FileName: "c.pdf", Body: body})
		if err != nil {
			t.Fatal(err)
		}
		arrived := began.Add(100 * time.Second).Truncate(time.Microsecond)
		var uploadedAt time.Time
		if err := f.pool.QueryRow(ctx, `SELECT uploaded_at FROM exam_upload WHERE id = $1`, rc.UploadID).Scan(&uploadedAt); err != nil {
			t.Fatal(err)
		}
		if !uploadedAt.Equal(arrived) {
			t.Errorf("uploaded_at %v, want %v (when the bytes were in)", uploadedAt, arrived)
		}
		// The receipt says what the database holds, to the microsecond.
		if want := arrived.Add(Lifetime); !rc.ExpiresAt.Equal(want) {
			t.Errorf("receipt expiresAt %v, want %v", rc.ExpiresAt, want)
		}
	})
}

func TestStorageFailureRecordsAnyMessage(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	// A store's error cut at the column's 2,000 bytes inside a character,
	// or carrying a NUL, is still recorded (Postgres refuses both as text).
	for i, msg := range []string{"x" + strings.Repeat("é", 1500), "open exams/k\x00: no such file"} {
		key := fmt.Sprintf("exams/key%d", i)
		if err := upload.RecordFailure(ctx, pool, "delete", key, errors.New(msg)); err != nil {
			t.Errorf("RecordFailure(%.20q…): %v", msg, err)
			continue
		}
		var got string
		if err := pool.QueryRow(ctx, `SELECT error FROM storage_failure WHERE key = $1`, key).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if len(got) > 2000 || !utf8.ValidString(got) || strings.ContainsRune(got, 0) || !strings.HasPrefix(got, msg[:10]) {
			t.Errorf("recorded %d bytes %.40q…", len(got), got)
		}
	}
}

func TestReapOrphans(t *testing.T) {
	t.Parallel()
	f, code := setupSubmit(t)
	ctx := context.Background()
	rc, err := f.store.Submit(ctx, Submission{Code: code, FileName: "kept.pdf", Body: bytes.NewReader(pdfBytes(1000, 'k'))})
	if err != nil {
		t.Fatal(err)
	}
	var kept string
	if err := f.pool.QueryRow(ctx, `SELECT blob_key FROM exam_upload WHERE id = $1`, rc.UploadID).Scan(&kept); err != nil {
		t.Fatal(err)
	}
	// A process killed between storing a file and recording it: the blob
	// is there, no row names it, and no job or failure row remembers it.
	lost, err := f.store.Files().Put(ctx, bytes.NewReader(pdfBytes(1000, 'l')))
	if err != nil {
		t.Fatal(err)
	}
	exists := func(key string) bool {
		t.Helper()
		ok, err := f.bucket.Exists(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// Young blobs may be uploads being recorded right now: left alone.
	if got, err := f.store.ReapOrphans(ctx, f.queue); err != nil || got != (Orphans{}) {
		t.Errorf("sweep of young blobs: %+v, %v; want nothing touched", got, err)
	}
	f.advance(OrphanAge + time.Minute)
	got, err := f.store.ReapOrphans(ctx, f.queue)
	if err != nil || got != (Orphans{Listed: 2, Deleted: 1}) {
		t.Errorf("sweep: %+v, %v; want 2 listed, the orphan deleted", got, err)
	}
	if exists(lost.Key) || !exists(kept) {
		t.Errorf("after the sweep: orphan exists %v, recorded upload's blob exists %v", exists(lost.Key), exists(kept))
	}
	if again, err := f.store.ReapOrphans(ctx, f.queue); err != nil || again != (Orphans{Listed: 1}) {
		t.Errorf("second sweep %+v, %v; want nothing deleted", again, err)
	}
}
