-- The functions go back with 1795318100000's down; this keeps the later
-- trigger condition harmless until then.
DROP INDEX form_submission_submitted_by;
DROP TRIGGER response_nested_insert ON response;
CREATE TRIGGER response_nested_insert BEFORE INSERT ON response
  FOR EACH ROW WHEN (NEW.submission_id IS NULL) EXECUTE FUNCTION response_nested_insert();
