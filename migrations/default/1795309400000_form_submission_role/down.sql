ALTER TABLE form_submission DROP COLUMN IF EXISTS submitted_role;
