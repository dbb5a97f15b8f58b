-- Google Sheets exports of a form's responses: one row per response, in
-- order of (submitted_at, response id). The cursor is the last row known to
-- be in the sheet; "pending" is a batch whose append was sent but whose
-- outcome is not known yet (a timeout, a dropped connection, a crash): the
-- next run reads the sheet's tail back to see whether it landed before
-- anything else is appended, so a retry never duplicates a row.
-- Credentials (a Google service account) live in Vault, never here.
CREATE TABLE sheet_export (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  form_id             text NOT NULL REFERENCES form (id),
  spreadsheet_id      text NOT NULL CHECK (spreadsheet_id ~ '^[A-Za-z0-9_-]{10,200}$'),
  sheet_name          text NOT NULL CHECK (char_length(sheet_name) BETWEEN 1 AND 100 AND sheet_name !~ '[[:cntrl:]]'),
  enabled             boolean NOT NULL DEFAULT true,
  sheet_id            bigint,
  columns             text[] NOT NULL DEFAULT '{}' CHECK (cardinality(columns) <= 5000),
  header_columns      int NOT NULL DEFAULT 0 CHECK (header_columns >= 0),
  cursor_submitted_at timestamptz,
  cursor_response_id  uuid,
  pending_submitted_at timestamptz,
  pending_response_id uuid,
  pending_rows        int CHECK (pending_rows > 0),
  pending_at          timestamptz,
  rows_written        bigint NOT NULL DEFAULT 0 CHECK (rows_written >= 0),
  last_error          text CHECK (char_length(last_error) <= 2000),
  last_error_at       timestamptz,
  last_run_at         timestamptz,
  created_by          text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  -- Two exports appending to one tab would interleave and break the tail
  -- check.
  UNIQUE (spreadsheet_id, sheet_name),
  CHECK ((cursor_submitted_at IS NULL) = (cursor_response_id IS NULL)),
  CHECK ((pending_response_id IS NULL) = (pending_submitted_at IS NULL)
     AND (pending_response_id IS NULL) = (pending_rows IS NULL)
     AND (pending_response_id IS NULL) = (pending_at IS NULL))
);
COMMENT ON TABLE sheet_export IS 'A form''s responses appended to a Google Sheet tab, one row per response, never duplicated';
COMMENT ON COLUMN sheet_export.columns IS 'Question names in sheet column order after KEY, SubmissionDate, FormVersion; new questions are added at the end';
COMMENT ON COLUMN sheet_export.header_columns IS 'How many header cells (row 1) are written, fixed columns included';
COMMENT ON COLUMN sheet_export.cursor_submitted_at IS 'submitted_at (response.created_at) of the last row known to be in the sheet';
COMMENT ON COLUMN sheet_export.pending_response_id IS 'Last response of a batch sent whose outcome is unknown until the sheet is read back';
CREATE INDEX sheet_export_form ON sheet_export (form_id);
CREATE TRIGGER sheet_export_updated_at BEFORE UPDATE ON sheet_export FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Write pacing shared by every replica: one service account writes every
-- spreadsheet, and Google's quota (60 writes a minute per user) is per
-- account, so writes are spaced through this row.
CREATE TABLE sheets_quota (
  key     text PRIMARY KEY,
  next_at timestamptz NOT NULL
);
COMMENT ON TABLE sheets_quota IS 'When the next Google Sheets write may start, per quota key';
