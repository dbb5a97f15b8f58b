ALTER TABLE student_event DROP CONSTRAINT student_event_certificate;
ALTER TABLE student DROP CONSTRAINT student_admitted_from_certificate;
DROP TABLE leaving_certificate;
DROP TABLE student_document;
DROP TRIGGER student_corrected ON student;
DROP FUNCTION student_corrected();
DROP TABLE student_event;
ALTER TABLE student DROP COLUMN admitted_from_certificate, DROP COLUMN transfer_source,
  DROP CONSTRAINT student_name_certificate, DROP CONSTRAINT student_father_name_certificate,
  DROP CONSTRAINT student_mother_name_certificate, DROP CONSTRAINT student_admission_number_certificate;
DROP INDEX student_aadhaar_active;
ALTER TABLE student DROP CONSTRAINT student_aadhaar_no_plaintext, DROP CONSTRAINT student_aadhaar_whole,
  DROP COLUMN aadhaar_last4, DROP COLUMN aadhaar_ciphertext, DROP COLUMN aadhaar_hash;
ALTER TABLE student RENAME COLUMN aadhaar_legacy TO aadhaar;
CREATE UNIQUE INDEX student_aadhaar ON student (aadhaar) WHERE aadhaar IS NOT NULL;
