-- The blob-deletion requeue of the exam expiry sweep and the ping sweep
-- take the rows they swept least recently (never swept first, then the
-- oldest), as the forms sweep does (form_submission.swept_at): rows whose
-- jobs are still queued or failing and retried go to the back instead of
-- filling every sweep's 1,000 and holding back a row whose job was lost.
-- Neither column is indexed: each sweep sorts what it already finds (the
-- partial index exam_upload_blob_pending; the pings without a pong), and
-- marking a row swept stays an update that writes no index entry.
ALTER TABLE exam_upload ADD COLUMN delete_swept_at timestamptz,
  ADD COLUMN delete_requeues integer NOT NULL DEFAULT 0 CHECK (delete_requeues >= 0);
COMMENT ON COLUMN exam_upload.delete_swept_at IS 'when the expiry sweep last queued (or found queued) this blob''s deletion again; NULL: never';
COMMENT ON COLUMN exam_upload.delete_requeues IS 'deletion jobs the expiry sweep queued again after the earlier one was lost or discarded; at exam.MaxDeleteRequeues it stops (set 0 to have it try again)';

ALTER TABLE ping ADD COLUMN swept_at timestamptz;
COMMENT ON COLUMN ping.swept_at IS 'when the reconcile sweep last enqueued this ping''s pong; NULL: never';
