ALTER TABLE ping DROP COLUMN swept_at;
ALTER TABLE exam_upload DROP COLUMN delete_requeues, DROP COLUMN delete_swept_at;
