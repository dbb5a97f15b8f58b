DROP FUNCTION IF EXISTS form_submission_claim(text);
DROP INDEX IF EXISTS form_submission_live_edit;
