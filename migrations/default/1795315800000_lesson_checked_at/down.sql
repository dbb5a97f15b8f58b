DROP INDEX IF EXISTS lesson_live_checked;
ALTER TABLE lesson DROP COLUMN IF EXISTS checked_at;
