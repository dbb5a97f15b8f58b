DROP INDEX form_submission_graphql_unchecked;
CREATE INDEX form_submission_graphql_unchecked ON form_submission (received_at)
  WHERE source = 'graphql' AND processed_at IS NULL;
DROP INDEX form_submission_received;
CREATE INDEX form_submission_received ON form_submission (received_at) WHERE status = 'received';
ALTER TABLE form_submission DROP COLUMN swept_at;
