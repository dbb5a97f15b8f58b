package exam

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/shala-edu/shala/internal/pgtest"
	"github.com/shala-edu/shala/internal/queue"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestCodes(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		u, v := NewUploadCode(), NewVerificationCode()
		if !ValidUploadCode(u) || !ValidVerificationCode(v) {
			t.Fatalf("codes %q %q have the wrong shape", u, v)
		}
		if seen[u] {
			t.Fatalf("upload code %q drawn twice in 2000", u)
		}
		seen[u] = true
		for _, r := range u {
			counts[r]++
		}
	}
	// 16,000 characters over 36 symbols: each about 444; a symbol never
	// drawn, or drawn three times too often, means a broken alphabet.
	if len(counts) != 36 {
		t.Errorf("%d distinct characters in upload codes, want 36", len(counts))
	}
	for r, n := range counts {
		if n < 150 || n > 1300 {
			t.Errorf("character %q drawn %d times of 16,000", r, n)
		}
	}
	for _, bad := range []string{"", "ABCDEFG", "ABCDEFGHI", "abcdefgh", "ABCD-FGH", "ÄBCDEFGH"} {
		if ValidUploadCode(bad) {
			t.Errorf("ValidUploadCode(%q) = true", bad)
		}
	}
}

func TestCleanFileName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"answers.pdf":               "answers.pdf",
		`C:\Users\asha\answers.pdf`: "answers.pdf",
		"../../etc/passwd":          "passwd",
		"a\x00b\r\n\"c\".txt":       "abc.txt",
		"  उत्तर.pdf  ":             "उत्तर.pdf",
		strings.Repeat("ज", 200):    strings.Repeat("ज", 85),
		"":                          "",
		"/":                         "",
	} {
		got := cleanFileName(in)
		if (got == nil) != (want == "") || (got != nil && *got != want) {
			t.Errorf("cleanFileName(%q) = %v, want %q", in, got, want)
		}
	}
}

// TestExpirySweepUsesItsIndex shows the sweep's cost follows the expired
// rows: its claim reads the partial index on active uploads by expiry, not
// the table.
func TestExpirySweepUsesItsIndex(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `
		INSERT INTO exam (id, title, examiner_id) VALUES ('00000000-0000-0000-0000-000000000001', 'x', 'e');
		INSERT INTO exam_student (id, exam_id, nickname, first_name, last_name, email, upload_code)
		SELECT gen_random_uuid(), '00000000-0000-0000-0000-000000000001', 'n', 'f', 'l', i || '@example.org',
		       upper(substr(md5(i::text), 1, 8)) FROM generate_series(1, 20000) i;
		INSERT INTO exam_upload (student_id, attempt, blob_key, content_type, size, sha256, verification_code,
		       uploaded_at, expires_at, state, state_changed_at)
		SELECT id, 1, 'exams/' || id, 'application/pdf', 1, repeat('a', 64), substr(md5(id::text), 1, 9),
		       t, t + interval '72 hours', 'replaced', t
		FROM (SELECT id, now() - interval '10 days' AS t FROM exam_student) s;
		UPDATE exam_upload SET state = 'active' WHERE ctid IN (SELECT ctid FROM exam_upload LIMIT 50);
		UPDATE exam_upload SET deleted_at = now() WHERE state <> 'active';
		ANALYZE exam_upload;`)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	rows, err := pool.Query(ctx, `EXPLAIN SELECT id FROM exam_upload WHERE state = 'active' AND expires_at <= $1
		ORDER BY expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED`, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if !strings.Contains(plan.String(), "exam_upload_expiry") || strings.Contains(plan.String(), "Seq Scan") {
		t.Errorf("the sweep's claim does not use exam_upload_expiry:\n%s", plan.String())
	}
}

// TestExpireManyBatches sweeps more than two batches, so that a batch is
// claimed and deleted while the previous one commits.
func TestExpireManyBatches(t *testing.T) {
	t.Parallel()
	pool := pgtest.New(t)
	ctx := context.Background()
	bucket := testBucket(t)
	q, err := queue.New(pool, nil, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s := New(Deps{Pool: pool, Files: NewFiles(bucket), Queue: q, Now: func() time.Time { return now }})
	const n = 2*ExpireBatch + 345
	_, err = pool.Exec(ctx, `
		INSERT INTO exam (id, title, examiner_id) VALUES ('00000000-0000-0000-0000-000000000001', 'x', 'e');
		INSERT INTO exam_student (exam_id, nickname, first_name, last_name, email, upload_code)
		SELECT '00000000-0000-0000-0000-000000000001', 'n', 'f', 'l', i || '@example.org', upper(lpad(to_hex(i), 8, '0'))
		FROM generate_series(1, 2500) i;
		INSERT INTO exam_upload (student_id, attempt, blob_key, content_type, size, sha256, verification_code,
		       uploaded_at, expires_at, state_changed_at)
		SELECT id, 1, 'exams/' || upload_code, 'application/pdf', 1, repeat('a', 64), lower(lpad(upload_code, 9, '0')),
		       now() - interval '73 hours', now() - interval '1 hour', now()
		FROM exam_student ORDER BY upload_code LIMIT 2345;
		INSERT INTO exam_upload (student_id, attempt, blob_key, content_type, size, sha256, verification_code,
		       uploaded_at, expires_at, state_changed_at)
		SELECT id, 1, 'exams/' || upload_code, 'application/pdf', 1, repeat('a', 64), lower(lpad(upload_code, 9, '0')),
		       now(), now() + interval '72 hours', now()
		FROM exam_student ORDER BY upload_code OFFSET 2345;`)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `SELECT blob_key FROM exam_upload ORDER BY blob_key`) // the expired ones first
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if err := bucket.WriteAll(ctx, k, []byte("%PDF-1.7\n"), nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Expire(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got != (Swept{Expired: n, Deleted: n}) {
		t.Errorf("sweep %+v, want %d expired and deleted", got, n)
	}
	var expired, left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'expired' AND deleted_at IS NOT NULL),
		count(*) FILTER (WHERE state = 'active') FROM exam_upload`).Scan(&expired, &left); err != nil {
		t.Fatal(err)
	}
	if expired != n || left != 2500-n {
		t.Errorf("%d expired with deleted_at, %d active; want %d and %d", expired, left, n, 2500-n)
	}
	for i, k := range keys {
		ok, err := bucket.Exists(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if ok != (i >= n) {
			t.Errorf("blob %s exists %v", k, ok)
		}
	}
	if again, err := s.Expire(ctx, q); err != nil || again != (Swept{}) {
		t.Errorf("second sweep %+v, %v; want nothing", again, err)
	}
}
