-- A response edited (ODK deprecatedID) after its row reached a sheet is
-- written over that row. response.edited_at says when the last edit was
-- made (set by the edit, nothing else); the export's edits cursor is the
-- last (edited_at, id) it has dealt with, and rewrite_unknown_at holds off
-- rewrites after one whose outcome is unknown (it may still land).
ALTER TABLE response ADD COLUMN edited_at timestamptz;
COMMENT ON COLUMN response.edited_at IS 'When the response was last replaced by an edit (deprecatedID); NULL if never';
CREATE INDEX response_edited ON response (form_id, edited_at, id) WHERE edited_at IS NOT NULL;
ALTER TABLE sheet_export
  ADD COLUMN edits_edited_at timestamptz,
  ADD COLUMN edits_response_id uuid,
  ADD COLUMN rewrite_unknown_at timestamptz,
  ADD CONSTRAINT sheet_export_edits_cursor CHECK ((edits_edited_at IS NULL) = (edits_response_id IS NULL));
COMMENT ON COLUMN sheet_export.edits_edited_at IS 'edited_at of the last edited response dealt with (with edits_response_id): written over its row, or already appended with the edit';
COMMENT ON COLUMN sheet_export.rewrite_unknown_at IS 'When a rewrite of unknown outcome was sent; none is sent until it has surely landed or not';
