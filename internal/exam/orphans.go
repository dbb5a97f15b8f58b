package exam

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"gocloud.dev/blob"

	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
)

// OrphanAge is how long a blob under BlobPrefix may go unwritten with no
// upload naming it before the orphan sweep deletes it: far longer than
// storing and recording one upload takes (a write in progress touches its
// file with every chunk).
const OrphanAge = time.Hour

// orphanBatch is how many listed keys one query checks.
const orphanBatch = 1000

// Orphans is what one orphan sweep did.
type Orphans struct {
	// Listed blobs older than OrphanAge; Deleted of them no upload named;
	// Failed deletions are recorded in storage_failure and queued.
	Listed, Deleted, Failed int
}

// ReapOrphans deletes the blobs under BlobPrefix that no exam_upload row
// names and that were last written more than OrphanAge ago: what a process
// killed between storing a file and recording it left behind (or one that
// could reach neither the store nor the database to clean up). Every
// other failure path deletes its own blob; this is the net under them. It
// lists the whole prefix — about 72 hours of files, since expired ones are
// deleted — so it runs daily, apart from the hourly expiry sweep whose cost
// follows the expired rows. A failed deletion is recorded and becomes a
// DeleteBlobArgs job through q.
func (s *Store) ReapOrphans(ctx context.Context, q queue.Inserter) (Orphans, error) {
	var out Orphans
	cutoff := s.now().Add(-OrphanAge)
	it := s.files.Bucket().List(&blob.ListOptions{Prefix: BlobPrefix})
	var keys []string
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("list %s: %w", BlobPrefix, err)
		}
		if obj.IsDir || !obj.ModTime.Before(cutoff) {
			continue
		}
		out.Listed++
		if keys = append(keys, obj.Key); len(keys) == orphanBatch {
			if err := s.reap(ctx, q, keys, &out); err != nil {
				return out, err
			}
			keys = keys[:0]
		}
	}
	return out, s.reap(ctx, q, keys, &out)
}

// reap deletes those of keys no upload names.
func (s *Store) reap(ctx context.Context, q queue.Inserter, keys []string, out *Orphans) error {
	if len(keys) == 0 {
		return nil
	}
	rows, err := s.pool.Query(ctx, `SELECT blob_key FROM exam_upload WHERE blob_key = ANY($1)`, keys)
	if err != nil {
		return postgres.Translate(err, "exam_upload")
	}
	named, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return postgres.Translate(err, "exam_upload")
	}
	known := make(map[string]bool, len(named))
	for _, k := range named {
		known[k] = true
	}
	var orphans []DeleteBlobArgs
	for _, k := range keys {
		if !known[k] {
			orphans = append(orphans, DeleteBlobArgs{Key: k})
		}
	}
	deleted, failed := s.deleteBlobs(ctx, orphans)
	out.Deleted += len(deleted)
	out.Failed += len(failed)
	if len(failed) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.retryLater(ctx, tx, q, failed) })
}

// ReapOrphansArgs is the daily orphan sweep; at most one per minute.
type ReapOrphansArgs struct{ queue.PerMinute }

// Kind is the job kind.
func (ReapOrphansArgs) Kind() string { return "exam_orphan_sweep" }

// ReapOrphansWorker runs the orphan sweep.
type ReapOrphansWorker struct {
	river.WorkerDefaults[ReapOrphansArgs]
	Store *Store
}

// Timeout: listing about three days of files and a query per thousand;
// what is left over, the next day's run takes.
func (w *ReapOrphansWorker) Timeout(*river.Job[ReapOrphansArgs]) time.Duration {
	return 15 * time.Minute
}

// NextRetry backs off as River does (attempt⁴ seconds): a sweep that
// failed or ran out of time after minutes is not a rescued one to retry at
// once (see queue.AddLong).
func (w *ReapOrphansWorker) NextRetry(job *river.Job[ReapOrphansArgs]) time.Time {
	return (&river.DefaultClientRetryPolicy{}).NextRetry(job.JobRow)
}

// Work sweeps, queueing retries through the job's own client.
func (w *ReapOrphansWorker) Work(ctx context.Context, job *river.Job[ReapOrphansArgs]) error {
	res, err := w.Store.ReapOrphans(ctx, river.ClientFromContext[pgx.Tx](ctx))
	if res.Deleted > 0 || res.Failed > 0 {
		w.Store.log.WarnContext(ctx, "orphaned exam blobs deleted", "listed", res.Listed, "deleted", res.Deleted, "failed", res.Failed)
	}
	return err
}
