package exam

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/shala-edu/shala/internal/postgres"
	"github.com/shala-edu/shala/internal/queue"
	"github.com/shala-edu/shala/internal/upload"
)

// Sweep tuning.
const (
	// ExpireBatch is how many expired uploads one step of the sweep claims.
	ExpireBatch = 1000
	// deleteParallel is how many blob deletions run at once (s3 deletes
	// are round trips; fileblob's are cheap either way).
	deleteParallel = 16
	// ReconcileAfter is how long a replaced, expired or purged upload's
	// blob may stay undeleted before the sweep queues its deletion again
	// (its job was lost, or discarded after its retries).
	ReconcileAfter = 10 * time.Minute
)

// Swept is what one sweep did.
type Swept struct {
	// Expired uploads were marked expired; Deleted of their blobs are gone,
	// Failed are recorded in storage_failure and retried by jobs.
	Expired, Deleted, Failed int
	// Requeued blobs of earlier replaced/expired/purged uploads got a new
	// deletion job.
	Requeued int
	// More is set when the sweep stopped for time with uploads left to
	// expire: run it again.
	More bool
}

// expireBatchTime is what one batch may take (ExpireBatch deletions,
// deleteParallel at a time, and its commit): a sweep starts no batch with
// less than this left of its context.
const expireBatchTime = 10 * time.Second

// Expire deletes the blobs of uploads past expires_at and marks them
// expired, in batches of ExpireBatch. Each batch is one transaction: claim
// the rows (FOR UPDATE SKIP LOCKED, so two sweeps share the work), delete
// their blobs concurrently, then one UPDATE marks them expired — with
// deleted_at for the blobs that are gone (already gone counts). A failed
// deletion is recorded in storage_failure and becomes a DeleteBlobArgs job,
// retried with backoff, in the same transaction. Batches overlap: while one
// batch's UPDATE commits, the next is claimed (its rows are the next ones
// not locked) and its blobs deleted. A crash mid-batch leaves the rows
// active (access is refused by time anyway) for the next sweep; deleting
// again is harmless. Then blobs of uploads left undeleted for
// ReconcileAfter get their job queued again. The cost follows the expired
// rows (partial indexes), not the table; a second run finds nothing to do.
func (s *Store) Expire(ctx context.Context, q queue.Inserter) (Swept, error) {
	var out Swept
	now := s.now()
	var committing chan error // the previous batch's mark-and-commit
	wait := func() error {
		if committing == nil {
			return nil
		}
		err := <-committing
		committing = nil
		return err
	}
	for {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			// wait before out is read: the last batch's commit counts into it.
			werr := wait()
			return out, errors.Join(postgres.Translate(err, "exam_upload"), werr)
		}
		rows, err := tx.Query(ctx, `SELECT id, blob_key FROM exam_upload WHERE state = 'active' AND expires_at <= $1
			ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, ExpireBatch)
		var batch []DeleteBlobArgs
		if err == nil {
			batch, err = pgx.CollectRows(rows, pgx.RowToStructByPos[DeleteBlobArgs])
		}
		if err != nil || len(batch) == 0 {
			err = s.finishSweep(ctx, tx, q, now, err, wait, &out)
			return out, err
		}
		deleted, failed := s.deleteBlobs(ctx, batch)
		if err := wait(); err != nil {
			return out, errors.Join(err, rollback(ctx, tx))
		}
		committing = make(chan error, 1)
		go func() { committing <- s.markExpired(ctx, tx, q, now, batch, deleted, failed, &out) }()
		dl, hasDeadline := ctx.Deadline()
		outOfTime := hasDeadline && time.Until(dl) < expireBatchTime
		if len(batch) < ExpireBatch || ctx.Err() != nil || outOfTime {
			out.More = len(batch) == ExpireBatch && outOfTime
			err = s.finishSweep(ctx, nil, q, now, nil, wait, &out)
			return out, err
		}
	}
}

// finishSweep ends a sweep: it rolls back tx (an empty or failed claim),
// waits for the last batch's commit, then requeues lost deletions.
func (s *Store) finishSweep(ctx context.Context, tx pgx.Tx, q queue.Inserter, now time.Time, claimErr error, wait func() error, out *Swept) error {
	var rerr error
	if tx != nil {
		rerr = rollback(ctx, tx)
	}
	if err := errors.Join(postgres.Translate(claimErr, "exam_upload"), rerr, wait()); err != nil {
		return err
	}
	n, err := s.requeue(ctx, q, now)
	out.Requeued = n
	return err
}

// markExpired marks a claimed batch expired (deleted_at for the blobs that
// are gone), records and queues the failed deletions, and commits tx. out
// counts the batch once committed; the sweep runs one of these at a time.
func (s *Store) markExpired(ctx context.Context, tx pgx.Tx, q queue.Inserter, now time.Time,
	batch []DeleteBlobArgs, deleted []uuid.UUID, failed []failedDelete, out *Swept) error {
	ids := make([]uuid.UUID, len(batch))
	for i, a := range batch {
		ids[i] = a.UploadID
	}
	if deleted == nil {
		deleted = []uuid.UUID{} // none deleted: an empty array, not NULL (postgres.NilArgs)
	}
	_, err := tx.Exec(ctx, `UPDATE exam_upload SET state = 'expired', state_changed_at = $1::timestamptz,
			deleted_at = CASE WHEN id = ANY($3::uuid[]) THEN $1::timestamptz END
		WHERE id = ANY($2)`, now, ids, deleted)
	if err == nil && len(failed) > 0 {
		err = s.retryLater(ctx, tx, q, failed)
	}
	if err == nil {
		err = tx.Commit(ctx)
	}
	if err != nil {
		return errors.Join(postgres.Translate(err, "exam_upload"), rollback(ctx, tx))
	}
	out.Expired += len(batch)
	out.Deleted += len(deleted)
	out.Failed += len(failed)
	return nil
}

// rollback ends tx; after a commit, or on a connection already gone, there
// is nothing to report.
func rollback(ctx context.Context, tx pgx.Tx) error {
	if err := tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		return err
	}
	return nil
}

type failedDelete struct {
	DeleteBlobArgs
	err error
}

// deleteBlobs deletes the batch's blobs, deleteParallel at a time.
func (s *Store) deleteBlobs(ctx context.Context, batch []DeleteBlobArgs) (deleted []uuid.UUID, failed []failedDelete) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, deleteParallel)
	for _, a := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := s.files.Delete(ctx, a.Key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = append(failed, failedDelete{a, err})
			} else {
				deleted = append(deleted, a.UploadID)
			}
		})
	}
	wg.Wait()
	return deleted, failed
}

// retryLater records failed deletions and queues a job for each, in tx.
func (s *Store) retryLater(ctx context.Context, tx pgx.Tx, q queue.Inserter, failed []failedDelete) error {
	jobs := make([]river.InsertManyParams, len(failed))
	for i, f := range failed {
		cause := f.err
		var se *upload.StorageError
		if errors.As(cause, &se) {
			cause = se.Err
		}
		if err := upload.RecordFailure(ctx, tx, "delete", f.Key, cause); err != nil {
			return err
		}
		jobs[i] = river.InsertManyParams{Args: f.DeleteBlobArgs}
	}
	if _, err := q.InsertManyTx(ctx, tx, jobs); err != nil {
		return err
	}
	s.log.WarnContext(ctx, "blobs not deleted; recorded and queued for retry", "count", len(failed), "first_err", failed[0].err)
	return nil
}

// MaxDeleteRequeues is how many times the sweep queues a blob's deletion
// again after its job was lost or discarded (each job retries for about
// three weeks): a key the storage refuses for good is not retried for
// ever. It stays recorded in storage_failure; an operator who mended the
// cause sets exam_upload.delete_requeues = 0, and the next sweep queues it.
const MaxDeleteRequeues = 3

// requeue queues deletion jobs for blobs of uploads left undeleted longer
// than ReconcileAfter (a job lost or discarded), ExpireBatch a sweep: those
// it swept least recently (delete_swept_at: never first, then the oldest),
// marking them swept. Jobs are unique while queued, so a blob whose job is
// still retrying is not doubled, and it goes to the back instead of holding
// the head of every sweep — a thousand deletions failing through a storage
// outage never keep a lost one from being queued. A row whose deletion was
// queued again MaxDeleteRequeues times is left. delete_swept_at is in no
// index: the sort is over what exam_upload_blob_pending finds, and the
// mark writes no index entry.
func (s *Store) requeue(ctx context.Context, q queue.Inserter, now time.Time) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, blob_key FROM exam_upload
			WHERE state <> 'active' AND deleted_at IS NULL AND state_changed_at < $1 AND delete_requeues < $3
			ORDER BY delete_swept_at NULLS FIRST, state_changed_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED`,
			now.Add(-ReconcileAfter), ExpireBatch, MaxDeleteRequeues)
		if err != nil {
			return err
		}
		pending, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DeleteBlobArgs])
		if err != nil || len(pending) == 0 {
			return err
		}
		jobs := make([]river.InsertManyParams, len(pending))
		swept := make([]uuid.UUID, len(pending))
		for i, a := range pending {
			jobs[i] = river.InsertManyParams{Args: a}
			swept[i] = a.UploadID
		}
		res, err := q.InsertManyTx(ctx, tx, jobs)
		if err != nil {
			return err
		}
		// The uploads whose job is new, read from the jobs: RETURNING
		// promises no order.
		queued := []uuid.UUID{} // an empty array, not NULL (postgres.NilArgs)
		for _, r := range res {
			if r.UniqueSkippedAsDuplicate {
				continue
			}
			var a DeleteBlobArgs
			if err := json.Unmarshal(r.Job.EncodedArgs, &a); err != nil {
				return fmt.Errorf("requeued job %d: %w", r.Job.ID, err)
			}
			queued = append(queued, a.UploadID)
		}
		n = len(queued)
		_, err = tx.Exec(ctx, `UPDATE exam_upload SET delete_swept_at = $3,
				delete_requeues = delete_requeues + CASE WHEN id = ANY($2::uuid[]) THEN 1 ELSE 0 END
			WHERE id = ANY($1)`, swept, queued, now)
		return err
	})
	if err != nil {
		n = 0 // rolled back
	}
	return n, postgres.Translate(err, "exam_upload")
}

// ExpireArgs is the expiry sweep, run hourly by River and by the Hasura
// cron trigger expire_exam_uploads; at most one per minute.
type ExpireArgs struct{ queue.PerMinute }

// Kind is the job kind.
func (ExpireArgs) Kind() string { return "exam_expire" }

// ExpireWorker runs the sweep.
type ExpireWorker struct {
	river.WorkerDefaults[ExpireArgs]
	Store *Store
}

// Timeout: a run takes batches while one fits (a sweep of 100,000 expired
// files takes about a minute on one machine, see the README's benchmark)
// and snoozes to go on, so it stays within the rescue rule
// (queue.MaxTimeout).
func (w *ExpireWorker) Timeout(*river.Job[ExpireArgs]) time.Duration { return queue.MaxTimeout }

// Work sweeps, queueing retries through the job's own client.
func (w *ExpireWorker) Work(ctx context.Context, job *river.Job[ExpireArgs]) error {
	res, err := w.Store.Expire(ctx, river.ClientFromContext[pgx.Tx](ctx))
	if res.Expired > 0 || res.Requeued > 0 {
		w.Store.log.InfoContext(ctx, "exam uploads expired", "expired", res.Expired, "deleted", res.Deleted,
			"failed", res.Failed, "requeued", res.Requeued)
	}
	if err == nil && res.More {
		return river.JobSnooze(0)
	}
	return err
}

// DeleteBlobWorker deletes one answer file's blob. A blob already gone is
// done. On failure it records the attempt in storage_failure and River
// retries with backoff (attempt⁴ seconds: minutes, then hours, then days);
// on success it marks the upload's deleted_at and resolves the key's
// failures.
type DeleteBlobWorker struct {
	river.WorkerDefaults[DeleteBlobArgs]
	Store *Store
}

// Timeout: one delete call, within the rescue rule (queue.MaxTimeout).
func (w *DeleteBlobWorker) Timeout(*river.Job[DeleteBlobArgs]) time.Duration { return queue.MaxTimeout }

// Work deletes the blob.
func (w *DeleteBlobWorker) Work(ctx context.Context, job *river.Job[DeleteBlobArgs]) error {
	return w.Store.DeleteBlob(ctx, job.Args)
}

// DeleteBlob deletes a's blob and records the outcome.
func (s *Store) DeleteBlob(ctx context.Context, a DeleteBlobArgs) error {
	if err := s.files.Delete(ctx, a.Key); err != nil {
		cause := err
		var se *upload.StorageError
		if errors.As(err, &se) {
			cause = se.Err
		}
		if rerr := upload.RecordFailure(ctx, s.pool, "delete", a.Key, cause); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if a.UploadID != uuid.Nil {
			if _, err := tx.Exec(ctx, `UPDATE exam_upload SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL`, a.UploadID, s.now()); err != nil {
				return err
			}
		}
		return upload.ResolveFailures(ctx, tx, a.Key)
	})
}
