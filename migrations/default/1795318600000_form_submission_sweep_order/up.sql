-- The reconcile sweep takes, each minute, the 1,000 submissions left
-- unprocessed (and the 1,000 responses inserted through Hasura left
-- unchecked) that it swept least recently: never swept first, then the
-- oldest. Rows whose processing is still queued or keeps failing go to the
-- back instead of holding the head of every sweep. Not indexed: the sweep
-- finds its rows by the partial indexes form_submission_received and
-- form_submission_graphql_unchecked and sorts them, and marking a row swept
-- stays an update that writes no index entry.
ALTER TABLE form_submission ADD COLUMN swept_at timestamptz;
COMMENT ON COLUMN form_submission.swept_at IS 'when the reconcile sweep last enqueued this row''s processing or check; NULL: never';
