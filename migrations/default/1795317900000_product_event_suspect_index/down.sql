DROP INDEX IF EXISTS product_event_unsent_refused;
DROP INDEX IF EXISTS product_event_unsent_suspect;
