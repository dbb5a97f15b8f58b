package student_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"gocloud.dev/blob/fileblob"

	"github.com/shala-edu/shala/internal/student"
)

// Transfer documents uploaded and never attached to a student are deleted,
// file and row, once past DocumentRetention; attached ones and recent ones
// stay. (Before, nothing ever removed them.)
func TestUnattachedDocumentsAreSwept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	bucket, err := fileblob.OpenBucket(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	now := time.Now()
	store := student.NewStore(b.pool, b.prot)
	store.Now = func() time.Time { return now }

	add := func(name string, age time.Duration, attached bool) (uuid.UUID, string) {
		t.Helper()
		key := student.DocumentPrefix + name
		if err := bucket.WriteAll(ctx, key, []byte("%PDF-1.4 "+name), nil); err != nil {
			t.Fatal(err)
		}
		var owner *uuid.UUID
		if attached {
			owner = &b.student
		}
		var id uuid.UUID
		if err := b.pool.QueryRow(ctx, `INSERT INTO student_document (student_id, school_id, kind, blob_key, content_type, size_bytes, sha256, uploaded_at)
			VALUES ($1, $2, 'OTHER', $3, 'application/pdf', 10, repeat('a', 64), $4) RETURNING id`,
			owner, b.school, key, now.Add(-age)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id, key
	}
	oldLoose, oldLooseKey := add("old-loose", student.DocumentRetention+time.Hour, false)
	_, goneKey := add("old-loose-file-gone", student.DocumentRetention+2*time.Hour, false)
	if err := bucket.Delete(ctx, goneKey); err != nil {
		t.Fatal(err)
	}
	newLoose, newLooseKey := add("new-loose", time.Hour, false)
	oldAttached, oldAttachedKey := add("old-attached", student.DocumentRetention+time.Hour, true)

	n, err := store.SweepUnattachedDocuments(ctx, bucket)
	if err != nil || n != 2 {
		t.Fatalf("swept %d (%v), want the 2 unattached documents past retention", n, err)
	}
	exists := func(key string) bool {
		ok, err := bucket.Exists(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	rows := func(id uuid.UUID) int {
		var c int
		if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM student_document WHERE id = $1`, id).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if exists(oldLooseKey) || rows(oldLoose) != 0 {
		t.Errorf("the old unattached document is still there (file %v, rows %d)", exists(oldLooseKey), rows(oldLoose))
	}
	for _, kept := range []struct {
		id  uuid.UUID
		key string
	}{{newLoose, newLooseKey}, {oldAttached, oldAttachedKey}} {
		if !exists(kept.key) || rows(kept.id) != 1 {
			t.Errorf("%s was swept, want it kept", kept.key)
		}
	}
	if n, err := store.SweepUnattachedDocuments(ctx, bucket); err != nil || n != 0 {
		t.Errorf("second sweep: %d (%v), want nothing left to do", n, err)
	}
}
