-- A response edited (ODK deprecatedID) after its row reached a sheet is
-- written over that row. The edits cursor is the last (updated_at, id) of
-- an edited response rewritten; responses are updated only by edits.
ALTER TABLE sheet_export
  ADD COLUMN edits_updated_at timestamptz,
  ADD COLUMN edits_response_id uuid,
  ADD CONSTRAINT sheet_export_edits_cursor CHECK ((edits_updated_at IS NULL) = (edits_response_id IS NULL));
COMMENT ON COLUMN sheet_export.edits_updated_at IS 'updated_at of the last edited response whose row was rewritten (with edits_response_id)';
CREATE INDEX response_edited ON response (form_id, updated_at, id) WHERE updated_at > created_at;
