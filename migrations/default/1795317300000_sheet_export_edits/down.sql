ALTER TABLE sheet_export DROP CONSTRAINT sheet_export_edits_cursor, DROP COLUMN edits_edited_at, DROP COLUMN edits_response_id,
  DROP COLUMN rewrite_unknown_at;
DROP INDEX response_edited;
ALTER TABLE response DROP COLUMN edited_at;
