-- The name rules and the no-plaintext-Aadhaar rule of 1795313000000 were
-- NOT VALID check constraints. Postgres skips old rows when such a
-- constraint is added, but checks it on every later UPDATE of a row,
-- whatever the update changes: one student written before them (a name with
-- brackets or of 45 characters, an Aadhaar not yet encrypted) made every
-- update of their row fail — their whole class's promotion, their leaving
-- certificate, a correction of their phone through Hasura, and the start-up
-- encryption of their own Aadhaar, which then stayed in plaintext for good
-- (a correction could not clear it either). The same rules now hold for what
-- a write sets: every column of an insert, and on update the columns it
-- changes. Old values stay until someone changes them; nothing new breaks
-- the rules. The errors keep the constraints' names (shala translates them
-- by name) and never carry the values.
ALTER TABLE student
  DROP CONSTRAINT student_name_certificate,
  DROP CONSTRAINT student_father_name_certificate,
  DROP CONSTRAINT student_mother_name_certificate,
  DROP CONSTRAINT student_admission_number_certificate,
  DROP CONSTRAINT student_aadhaar_no_plaintext;

CREATE FUNCTION student_rules() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  names constant text := '^[A-Za-z0-9\u0900-\u097F .''\u200C\u200D-]*$';
  rule text;
  col text;
BEGIN
  IF NEW.aadhaar_legacy IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.aadhaar_legacy IS DISTINCT FROM OLD.aadhaar_legacy) THEN
    rule := 'student_aadhaar_no_plaintext'; col := 'aadhaar_legacy';
  ELSIF (TG_OP = 'INSERT' OR NEW.name IS DISTINCT FROM OLD.name)
      AND (char_length(NEW.name) <= 40 AND NEW.name ~ names) IS FALSE THEN
    rule := 'student_name_certificate'; col := 'name';
  ELSIF (TG_OP = 'INSERT' OR NEW.father_name IS DISTINCT FROM OLD.father_name)
      AND (char_length(NEW.father_name) <= 36 AND NEW.father_name ~ names) IS FALSE THEN
    rule := 'student_father_name_certificate'; col := 'father_name';
  ELSIF (TG_OP = 'INSERT' OR NEW.mother_name IS DISTINCT FROM OLD.mother_name)
      AND (char_length(NEW.mother_name) <= 36 AND NEW.mother_name ~ names) IS FALSE THEN
    rule := 'student_mother_name_certificate'; col := 'mother_name';
  ELSIF (TG_OP = 'INSERT' OR NEW.admission_number IS DISTINCT FROM OLD.admission_number)
      AND (char_length(NEW.admission_number) <= 20 AND NEW.admission_number ~ '^[A-Za-z0-9/ .-]+$') IS FALSE THEN
    rule := 'student_admission_number_certificate'; col := 'admission_number';
  END IF;
  IF rule IS NOT NULL THEN
    RAISE EXCEPTION 'new row for relation "student" violates check constraint "%"', rule
      USING ERRCODE = 'check_violation', CONSTRAINT = rule, TABLE = 'student', COLUMN = col, SCHEMA = 'public';
  END IF;
  RETURN NEW;
END $$;
COMMENT ON FUNCTION student_rules() IS 'The student rules that are newer than some rows: names a certificate can carry, no plaintext Aadhaar; checked on what a write sets';
CREATE TRIGGER student_rules BEFORE INSERT OR UPDATE ON student
  FOR EACH ROW EXECUTE FUNCTION student_rules();

-- Certificates by student, revoked ones included: whether a student who left
-- may have another (issueLeavingCertificate) reads them.
CREATE INDEX leaving_certificate_student_all ON leaving_certificate (student_id);
