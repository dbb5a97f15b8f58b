ALTER TABLE form_submission DROP COLUMN swept_at;
