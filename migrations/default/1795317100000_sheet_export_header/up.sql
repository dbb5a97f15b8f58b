-- The labels an export last wrote to its tab's row 1, so that a label
-- renamed by a later form version is rewritten there too (the CSV always
-- shows the current labels). header_layout_at is the registration time of
-- the newest form version the header was checked against: a version
-- registered after it makes the export due for a run. Exports written
-- before this migration know neither: their header is checked, and
-- rewritten, once.
ALTER TABLE sheet_export
  ADD COLUMN header text[] NOT NULL DEFAULT '{}' CHECK (cardinality(header) <= 5003),
  ADD COLUMN header_layout_at timestamptz;
COMMENT ON COLUMN sheet_export.header IS 'Labels last written to row 1, fixed columns included; empty when not known';
COMMENT ON COLUMN sheet_export.header_layout_at IS 'registered_at of the newest form version the header was checked against';
