DROP INDEX IF EXISTS product_event_unsent_fresh;
