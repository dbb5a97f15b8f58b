DROP TRIGGER response_form_open ON response;
DROP FUNCTION response_form_open();
DROP INDEX form_submission_form_closed;
ALTER TABLE form DROP COLUMN state;
