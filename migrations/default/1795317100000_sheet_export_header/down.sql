ALTER TABLE sheet_export DROP COLUMN header, DROP COLUMN header_layout_at;
