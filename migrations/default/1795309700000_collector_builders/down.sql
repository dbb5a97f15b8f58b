ALTER TABLE collector DROP COLUMN IF EXISTS builds_assessments;
