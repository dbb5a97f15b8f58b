-- A certificate whose PDF could not be made says so, instead of its pdfUrl
-- answering "being prepared" for ever: the render job's last attempt
-- records its error here, and the certificate.reconcile sweep records one
-- when render jobs keep ending discarded with nothing recorded (a process
-- killed during their last attempt). The sweep queues no render for a
-- certificate with pdf_error; an operator clears pdf_error to have it
-- rendered again (README, PDF). pdf_failed_at stays while it is retried:
-- only render jobs queued after it count towards the sweep's bound.
ALTER TABLE leaving_certificate
  ADD COLUMN pdf_error text CHECK (char_length(pdf_error) BETWEEN 1 AND 1000),
  ADD COLUMN pdf_failed_at timestamptz,
  ADD CONSTRAINT leaving_certificate_pdf_failure CHECK (pdf_error IS NULL OR pdf_failed_at IS NOT NULL),
  ADD CONSTRAINT leaving_certificate_pdf_failure_or_pdf CHECK (pdf_failed_at IS NULL OR pdf_key IS NULL);
COMMENT ON COLUMN leaving_certificate.pdf_error IS 'why the PDF could not be made (rendering stopped; NULL: none, or being made again)';
COMMENT ON COLUMN leaving_certificate.pdf_failed_at IS 'when making the PDF last failed; NULL once the PDF exists';
-- The sweep's candidates: no PDF and no recorded failure.
DROP INDEX leaving_certificate_pdf_pending;
CREATE INDEX leaving_certificate_pdf_pending ON leaving_certificate (issued_at) WHERE pdf_key IS NULL AND pdf_error IS NULL;
