-- sms.reconcile looks every minute for requests whose expansion never
-- finished (PROCESSING, not expanded): few at any time among every request
-- ever made (receipts and rule flags are requests too).
CREATE INDEX sms_request_unexpanded ON sms_request (created_at) WHERE status = 'PROCESSING' AND expanded_at IS NULL;
