DROP INDEX leaving_certificate_student_all;
DROP TRIGGER student_rules ON student;
DROP FUNCTION student_rules();
ALTER TABLE student
  ADD CONSTRAINT student_aadhaar_no_plaintext CHECK (aadhaar_legacy IS NULL) NOT VALID,
  ADD CONSTRAINT student_name_certificate CHECK (
    char_length(name) <= 40 AND name ~ '^[A-Za-z0-9\u0900-\u097F .''\u200C\u200D-]+$') NOT VALID,
  ADD CONSTRAINT student_father_name_certificate CHECK (
    char_length(father_name) <= 36 AND father_name ~ '^[A-Za-z0-9\u0900-\u097F .''\u200C\u200D-]*$') NOT VALID,
  ADD CONSTRAINT student_mother_name_certificate CHECK (
    char_length(mother_name) <= 36 AND mother_name ~ '^[A-Za-z0-9\u0900-\u097F .''\u200C\u200D-]*$') NOT VALID,
  ADD CONSTRAINT student_admission_number_certificate CHECK (
    char_length(admission_number) <= 20 AND admission_number ~ '^[A-Za-z0-9/ .-]+$') NOT VALID;
