DROP INDEX response_edited;
ALTER TABLE sheet_export DROP CONSTRAINT sheet_export_edits_cursor, DROP COLUMN edits_updated_at, DROP COLUMN edits_response_id;
