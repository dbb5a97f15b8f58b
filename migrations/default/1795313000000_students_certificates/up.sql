-- Students and School Leaving Certificates: Aadhaar protected at rest with
-- one ACTIVE enrolment per Aadhaar, names a certificate can carry, the
-- student event trail, transfer documents and the certificates themselves.

-- Aadhaar. shala is the only writer (actions registerStudent,
-- admitTransferredStudent; the seed): it checks the Verhoeff digit and
-- stores a keyed hash (HMAC-SHA-256 under a key from Vault, for uniqueness),
-- the ciphertext (AES-256-GCM under another) and the last four digits. The
-- database never holds the number itself: the old plaintext column is kept
-- only until shala has converted the rows written before (at start-up), and
-- no new value may be written to it.
ALTER TABLE student RENAME COLUMN aadhaar TO aadhaar_legacy;
DROP INDEX student_aadhaar;
ALTER TABLE student
  ADD COLUMN aadhaar_hash bytea CHECK (octet_length(aadhaar_hash) = 32),
  ADD COLUMN aadhaar_ciphertext bytea CHECK (octet_length(aadhaar_ciphertext) BETWEEN 29 AND 128),
  ADD COLUMN aadhaar_last4 text CHECK (aadhaar_last4 ~ '^[0-9]{4}$'),
  ADD CONSTRAINT student_aadhaar_whole CHECK (
    (aadhaar_hash IS NULL) = (aadhaar_ciphertext IS NULL) AND (aadhaar_hash IS NULL) = (aadhaar_last4 IS NULL)),
  ADD CONSTRAINT student_aadhaar_no_plaintext CHECK (aadhaar_legacy IS NULL) NOT VALID;
COMMENT ON COLUMN student.aadhaar_legacy IS 'Plaintext Aadhaar written before 1795313000000; shala encrypts and clears these at start-up; nothing new may be written';
COMMENT ON COLUMN student.aadhaar_hash IS 'HMAC-SHA-256 of the Aadhaar number under shala''s key: uniqueness without the number';
COMMENT ON COLUMN student.aadhaar_ciphertext IS 'AES-256-GCM (nonce || ciphertext) of the Aadhaar number under shala''s key; only the admin role can have it decrypted';
COMMENT ON COLUMN student.aadhaar_last4 IS 'Last four digits of the Aadhaar number: what schools and district staff see';
-- A child is enrolled (ACTIVE) in one school at a time; one who left can be
-- admitted again, here or elsewhere.
CREATE UNIQUE INDEX student_aadhaar_active ON student (aadhaar_hash) WHERE status = 'ACTIVE' AND aadhaar_hash IS NOT NULL;

-- Names a certificate can carry (its QR code stays at version ≤ 16; see
-- internal/certificate): at most 40 (36 for parents) characters of the
-- alphabet the QR packs one byte each — Devanagari, ASCII letters and
-- digits, spaces, . ' - and the joiners Hindi spelling uses. (registerStudent
-- is stricter: letters only.) NOT VALID: rows written before keep their
-- names until corrected; new writes are held to the rule.
ALTER TABLE student
  ADD CONSTRAINT student_name_certificate CHECK (
    char_length(name) <= 40 AND name ~ '^[A-Za-z0-9\u0900-\u097F .''\u200C\u200D-]+$') NOT VALID,
  ADD CONSTRAINT student_father_name_certificate CHECK (
    char_length(father_name) <= 36 AND father_name ~ '^[A-Za-z0-9\u0900-\u097F .''\u200C\u200D-]*$') NOT VALID,
  ADD CONSTRAINT student_mother_name_certificate CHECK (
    char_length(mother_name) <= 36 AND mother_name ~ '^[A-Za-z0-9\u0900-\u097F .''\u200C\u200D-]*$') NOT VALID,
  ADD CONSTRAINT student_admission_number_certificate CHECK (
    char_length(admission_number) <= 20 AND admission_number ~ '^[A-Za-z0-9/ .-]+$') NOT VALID;

-- How a student came to the school.
ALTER TABLE student
  ADD COLUMN transfer_source text NOT NULL DEFAULT 'NEW' CHECK (transfer_source IN ('NEW', 'IN_STATE', 'OTHER_STATE')),
  ADD COLUMN admitted_from_certificate uuid;

-- The trail: one row per thing that happened to a student. shala writes
-- admissions, promotions, leaving and transfers; corrections made through
-- Hasura are recorded by the trigger below, with the changed fields' names
-- (never their values) and the Hasura user who made them.
CREATE TABLE student_event (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  student_id     uuid NOT NULL REFERENCES student (id),
  school_id      uuid NOT NULL REFERENCES school (id),
  kind           text NOT NULL CHECK (kind IN ('ADMITTED', 'PROMOTED', 'RETAINED', 'PASSED_OUT', 'DROPPED_OUT',
                                                'LEFT', 'TRANSFERRED_IN', 'TRANSFERRED_OUT', 'CORRECTED')),
  academic_year  text REFERENCES academic_year (id),
  grade          smallint REFERENCES grade (id),
  section        text,
  details        jsonb NOT NULL DEFAULT '{}',
  actor          text,
  certificate_id uuid,
  occurred_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX student_event_student ON student_event (student_id, occurred_at);
CREATE INDEX student_event_school ON student_event (school_id, occurred_at);

CREATE FUNCTION student_corrected() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  changed text[];
BEGIN
  -- shala's own writes record their own, more precise, events.
  IF coalesce(current_setting('shala.trail', true), '') = 'shala' THEN
    RETURN NEW;
  END IF;
  SELECT array_agg(key ORDER BY key) INTO changed
  FROM jsonb_each(to_jsonb(NEW)) n
  WHERE key NOT IN ('updated_at', 'created_at') AND n.value IS DISTINCT FROM to_jsonb(OLD) -> key;
  IF changed IS NULL THEN
    RETURN NEW;
  END IF;
  INSERT INTO student_event (student_id, school_id, kind, academic_year, grade, section, details, actor)
  VALUES (NEW.id, NEW.school_id, 'CORRECTED', NEW.academic_year, NEW.grade, NEW.section,
          jsonb_build_object('fields', to_jsonb(changed)),
          nullif(current_setting('hasura.user', true), '')::jsonb ->> 'x-hasura-user-id');
  RETURN NEW;
END $$;
CREATE TRIGGER student_corrected AFTER UPDATE ON student
  FOR EACH ROW EXECUTE FUNCTION student_corrected();

-- Documents a student from another state or board brought (transfer
-- certificate, marksheet), stored in blob storage.
CREATE TABLE student_document (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  student_id   uuid REFERENCES student (id),
  school_id    uuid NOT NULL REFERENCES school (id),
  kind         text NOT NULL CHECK (kind IN ('TRANSFER_CERTIFICATE', 'MARKSHEET', 'OTHER')),
  blob_key     text NOT NULL UNIQUE,
  content_type text NOT NULL,
  size_bytes   bigint NOT NULL CHECK (size_bytes > 0),
  sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  uploaded_by  text,
  uploaded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX student_document_student ON student_document (student_id);

-- School Leaving Certificates. The snapshot columns are what the
-- certificate states; payload is the signed QR text. A certificate admits
-- a child once: admitted_student_id is set in the same transaction that
-- creates the new student row, and only while it is NULL and not revoked.
CREATE TABLE leaving_certificate (
  id                  uuid PRIMARY KEY,
  student_id          uuid NOT NULL REFERENCES student (id),
  school_id           uuid NOT NULL REFERENCES school (id),
  issuer_udise        text NOT NULL CHECK (issuer_udise ~ '^[0-9]{11}$'),
  issuer_name         text NOT NULL,
  student_name        text NOT NULL,
  father_name         text,
  mother_name         text,
  date_of_birth       date,
  gender              text NOT NULL CHECK (gender IN ('MALE', 'FEMALE', 'OTHER')),
  category            text CHECK (category IN ('GENERAL', 'SC', 'ST', 'OBC', 'EWS')),
  grade               smallint NOT NULL REFERENCES grade (id),
  section             text,
  stream              text,
  admission_number    text,
  admission_date      date,
  leaving_date        date NOT NULL,
  reason              text NOT NULL CHECK (reason IN ('TRANSFER_IN_STATE', 'TRANSFER_OUT_OF_STATE', 'FAMILY_MIGRATION',
                                                      'COMPLETED_SCHOOLING', 'HEALTH', 'OTHER')),
  description         text CHECK (char_length(description) <= 500),
  issued_at           timestamptz NOT NULL,
  issued_by           text,
  key_id              text NOT NULL,
  payload             text NOT NULL CHECK (payload LIKE 'SLC1:%'),
  pdf_key             text,
  pdf_ready_at        timestamptz,
  revoked_at          timestamptz,
  revoked_reason      text CHECK (char_length(revoked_reason) BETWEEN 1 AND 500),
  revoked_by          text,
  admitted_student_id uuid UNIQUE REFERENCES student (id),
  admitted_school_id  uuid REFERENCES school (id),
  admitted_at         timestamptz,
  CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
  CHECK ((admitted_student_id IS NULL) = (admitted_at IS NULL) AND (admitted_student_id IS NULL) = (admitted_school_id IS NULL)),
  CHECK ((pdf_key IS NULL) = (pdf_ready_at IS NULL))
);
COMMENT ON TABLE leaving_certificate IS 'School Leaving Certificates: the student as they left, signed into payload (the QR text)';
-- One live certificate per leaving: a revoked one can be replaced.
CREATE UNIQUE INDEX leaving_certificate_student ON leaving_certificate (student_id) WHERE revoked_at IS NULL;
CREATE INDEX leaving_certificate_school ON leaving_certificate (school_id, issued_at);
CREATE INDEX leaving_certificate_pdf_pending ON leaving_certificate (issued_at) WHERE pdf_key IS NULL;
ALTER TABLE student ADD CONSTRAINT student_admitted_from_certificate
  FOREIGN KEY (admitted_from_certificate) REFERENCES leaving_certificate (id);
ALTER TABLE student_event ADD CONSTRAINT student_event_certificate
  FOREIGN KEY (certificate_id) REFERENCES leaving_certificate (id);
