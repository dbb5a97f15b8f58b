ALTER TABLE form_submission DROP CONSTRAINT IF EXISTS form_submission_rejected_code;
ALTER TABLE form_submission DROP COLUMN IF EXISTS error_code;
