-- sms.reconcile looks every minute for expanded requests still PROCESSING
-- whose progress job is gone (deleted by an operator, discarded), oldest
-- first: few at any time (those being sent) among every request ever made
-- (receipts and rule flags are requests too). The progress job's recounts
-- change neither status nor expanded_at, so they stay HOT updates.
CREATE INDEX sms_request_following ON sms_request (created_at) WHERE status = 'PROCESSING' AND expanded_at IS NOT NULL;
