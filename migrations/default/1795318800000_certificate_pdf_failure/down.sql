DROP INDEX leaving_certificate_pdf_pending;
CREATE INDEX leaving_certificate_pdf_pending ON leaving_certificate (issued_at) WHERE pdf_key IS NULL;
ALTER TABLE leaving_certificate DROP COLUMN pdf_error, DROP COLUMN pdf_failed_at;
