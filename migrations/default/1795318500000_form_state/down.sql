-- Without form states nothing would put FORM_CLOSED refusals back: they go
-- back to processing now, and are accepted (the form no longer closes).
UPDATE form_submission SET status = 'received', error_code = NULL, errors = NULL, processed_at = NULL
  WHERE status = 'rejected' AND error_code = 'FORM_CLOSED';
DROP TRIGGER response_form_open ON response;
DROP FUNCTION response_form_open();
DROP INDEX form_submission_form_closed;
ALTER TABLE form DROP COLUMN state;
