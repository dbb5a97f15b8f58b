-- The reconcile sweep takes, each minute, the 1,000 submissions left
-- unprocessed that it swept least recently (never swept first, then the
-- oldest): rows whose processing is still queued or keeps failing go to the
-- back instead of holding the head of every sweep.
ALTER TABLE form_submission ADD COLUMN swept_at timestamptz;
COMMENT ON COLUMN form_submission.swept_at IS 'when the reconcile sweep last enqueued this row''s processing or check; NULL: never';

DROP INDEX form_submission_received;
CREATE INDEX form_submission_received ON form_submission (swept_at NULLS FIRST, received_at) WHERE status = 'received';

DROP INDEX form_submission_graphql_unchecked;
CREATE INDEX form_submission_graphql_unchecked ON form_submission (swept_at NULLS FIRST, received_at)
  WHERE source = 'graphql' AND processed_at IS NULL;
