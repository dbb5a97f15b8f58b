package exam

import (
	"context"
	"testing"
	"time"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
)

// requeueFixture is a store on a fresh database whose clock a test moves
// on, and an insert-only queue client (no worker runs the jobs).
type requeueFixture struct {
	t     *testing.T
	store *Store
	q     *queue.Client
	now   time.Time
}

func setupRequeue(t *testing.T) *requeueFixture {
	t.Helper()
	pool := pgtest.New(t)
	q, err := queue.New(pool, nil, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &requeueFixture{t: t, q: q, now: time.Now()}
	f.store = New(Deps{Pool: pool, Files: NewFiles(testBucket(t)), Queue: q, Now: func() time.Time { return f.now }})
	if _, err := pool.Exec(context.Background(), `
		INSERT INTO exam (id, title, examiner_id) VALUES ('00000000-0000-0000-0000-000000000001', 'x', 'e');
		INSERT INTO exam_student (exam_id, nickname, first_name, last_name, email, upload_code)
		SELECT '00000000-0000-0000-0000-000000000001', 'n', 'f', 'l', i || '@example.org', upper(lpad(to_hex(i), 8, '0'))
		FROM generate_series(1, 1001) i`); err != nil {
		t.Fatal(err)
	}
	return f
}

// replaced adds n uploads replaced age ago (the first a second older than
// the next) whose blobs were never deleted, and no deletion job.
func (f *requeueFixture) replaced(n int, age time.Duration) {
	f.t.Helper()
	if _, err := f.store.pool.Exec(context.Background(), `
		INSERT INTO exam_upload (student_id, attempt, blob_key, content_type, size, sha256, verification_code,
		       uploaded_at, expires_at, state, state_changed_at)
		SELECT id, 1, 'exams/' || upload_code, 'application/pdf', 1, repeat('a', 64), lower(lpad(upload_code, 9, '0')),
		       t, t + interval '72 hours', 'replaced', t + make_interval(secs => row_number() OVER (ORDER BY upload_code))
		FROM (SELECT st.id, st.upload_code, $2::timestamptz - make_interval(secs => $3) AS t
		      FROM exam_student st WHERE NOT EXISTS (SELECT 1 FROM exam_upload u WHERE u.student_id = st.id)
		      ORDER BY st.upload_code LIMIT $1) s`, n, f.now, age.Seconds()); err != nil {
		f.t.Fatal(err)
	}
}

// sweep runs the expiry sweep a minute after the last one and returns how
// many deletions it queued again.
func (f *requeueFixture) sweep() int {
	f.t.Helper()
	f.now = f.now.Add(time.Minute)
	got, err := f.store.Expire(context.Background(), f.q)
	if err != nil {
		f.t.Fatal(err)
	}
	return got.Requeued
}

func (f *requeueFixture) count(q string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.store.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// TestRequeueIsNotHeldBackByDeletionsStillRetrying: a sweep's worth of
// older blobs whose deletion jobs keep failing (a storage outage) never
// keeps a newer blob whose job was lost from getting one.
func TestRequeueIsNotHeldBackByDeletionsStillRetrying(t *testing.T) {
	t.Parallel()
	f := setupRequeue(t)
	f.replaced(ExpireBatch, 2*time.Hour)
	if n := f.sweep(); n != ExpireBatch {
		t.Fatalf("first sweep queued %d deletions again, want %d", n, ExpireBatch)
	}
	// Their jobs fail and are retried later.
	if _, err := f.store.pool.Exec(context.Background(), `UPDATE river_job SET state = 'retryable', attempt = 5,
		scheduled_at = now() + interval '1 day' WHERE kind = 'exam_blob_delete'`); err != nil {
		t.Fatal(err)
	}
	f.replaced(1, time.Hour) // newer, and its job lost
	if n := f.sweep(); n != 1 {
		t.Errorf("second sweep queued %d deletions again, want the newer blob's", n)
	}
	if n := f.count(`SELECT count(*) FROM river_job j JOIN exam_upload u ON j.args ->> 'upload_id' = u.id::text
		WHERE j.kind = 'exam_blob_delete' AND u.state_changed_at > $1`, f.now.Add(-90*time.Minute)); n != 1 {
		t.Errorf("%d deletion jobs for the newer blob, want 1", n)
	}
	if n := f.sweep(); n != 0 {
		t.Errorf("third sweep queued %d, want none (all queued)", n)
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'exam_blob_delete'`); n != ExpireBatch+1 {
		t.Errorf("%d deletion jobs, want one per blob (%d)", n, ExpireBatch+1)
	}
}

// TestRequeueStopsAfterMaxDeleteRequeues: a blob whose deletion jobs are
// discarded every time (a key the storage refuses for good) is queued
// again MaxDeleteRequeues times, not for ever, until an operator resets
// its count.
func TestRequeueStopsAfterMaxDeleteRequeues(t *testing.T) {
	t.Parallel()
	f := setupRequeue(t)
	f.replaced(1, time.Hour)
	discard := func() {
		t.Helper()
		if _, err := f.store.pool.Exec(context.Background(), `UPDATE river_job SET state = 'discarded', finalized_at = now(),
			attempt = max_attempts WHERE kind = 'exam_blob_delete' AND state <> 'discarded'`); err != nil {
			t.Fatal(err)
		}
	}
	for i := range MaxDeleteRequeues {
		if n := f.sweep(); n != 1 {
			t.Fatalf("sweep %d queued %d, want 1", i+1, n)
		}
		discard()
	}
	for range 2 {
		if n := f.sweep(); n != 0 {
			t.Errorf("a sweep after %d requeues queued %d, want none", MaxDeleteRequeues, n)
		}
	}
	if n := f.count(`SELECT count(*) FROM river_job WHERE kind = 'exam_blob_delete'`); n != MaxDeleteRequeues {
		t.Errorf("%d deletion jobs, want %d", n, MaxDeleteRequeues)
	}
	// The operator mended the cause and puts it back.
	if _, err := f.store.pool.Exec(context.Background(), `UPDATE exam_upload SET delete_requeues = 0`); err != nil {
		t.Fatal(err)
	}
	if n := f.sweep(); n != 1 {
		t.Errorf("after the reset the sweep queued %d, want 1", n)
	}
}
