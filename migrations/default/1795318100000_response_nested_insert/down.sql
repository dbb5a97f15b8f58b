DROP TRIGGER answer_nested_insert ON answer;
DROP FUNCTION answer_nested_insert();
DROP TRIGGER response_nested_insert ON response;
DROP FUNCTION response_nested_insert();
DROP FUNCTION hasura_session();
DROP INDEX form_submission_graphql_unchecked;
DROP INDEX form_submission_submitted_by;
ALTER TABLE form_question DROP COLUMN repeat_depth;
UPDATE form_submission SET duplicate_of = NULL WHERE duplicate_of IN (SELECT id FROM form_submission WHERE source = 'graphql');
DELETE FROM answer WHERE response_id IN (SELECT r.id FROM response r JOIN form_submission s ON s.id = r.submission_id WHERE s.source = 'graphql');
DELETE FROM response_flag WHERE response_id IN (SELECT r.id FROM response r JOIN form_submission s ON s.id = r.submission_id WHERE s.source = 'graphql');
DELETE FROM response WHERE submission_id IN (SELECT id FROM form_submission WHERE source = 'graphql');
DELETE FROM form_submission WHERE source = 'graphql';
ALTER TABLE form_submission DROP CONSTRAINT form_submission_xml_present, ALTER COLUMN xml SET NOT NULL;
ALTER TABLE form_submission DROP CONSTRAINT form_submission_source_check,
  ADD CONSTRAINT form_submission_source_check CHECK (source IN ('action', 'openrosa', 'hasura'));
