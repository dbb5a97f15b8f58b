DROP INDEX IF EXISTS product_event_unsent_suspect;
ALTER TABLE product_event DROP COLUMN IF EXISTS refused_for_itself;
