DROP INDEX IF EXISTS form_submission_edit_of;
