-- Exam answer files (the exam_depository system): examiners create exams and
-- students; students upload answer files by an upload code; anyone holding a
-- verification code can fetch the file for 600 s; files expire 72 h after
-- upload.

CREATE TABLE exam (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  title       text NOT NULL CHECK (char_length(btrim(title)) BETWEEN 1 AND 200),
  -- The Hasura user id (x-hasura-user-id) of the examiner who owns it.
  examiner_id text NOT NULL CHECK (char_length(examiner_id) BETWEEN 1 AND 200),
  opens_at    timestamptz,
  closes_at   timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now(),
  -- Set when the examiner purged the students' personal data.
  purged_at   timestamptz,
  CHECK (opens_at IS NULL OR closes_at IS NULL OR closes_at > opens_at)
);
CREATE INDEX exam_examiner ON exam (examiner_id);
COMMENT ON TABLE exam IS 'An exam whose students hand in answer files by upload code';

CREATE TABLE exam_student (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  exam_id      uuid NOT NULL REFERENCES exam (id) ON DELETE CASCADE,
  -- Personal data: NULL once the exam is purged.
  nickname     text CHECK (nickname ~ '^[A-Za-z0-9]{1,12}$'),
  first_name   text CHECK (char_length(btrim(first_name)) BETWEEN 1 AND 100),
  last_name    text CHECK (char_length(btrim(last_name)) BETWEEN 1 AND 100),
  email        text CHECK (char_length(email) BETWEEN 3 AND 254 AND email = lower(email)),
  -- The capability that lets the student upload: crypto/rand, 8 of A-Z0-9.
  upload_code  text UNIQUE CHECK (upload_code ~ '^[A-Z0-9]{8}$'),
  -- Uploads ever made; the limit of 5 is this CHECK, so two simultaneous
  -- fifth uploads cannot both win (the row lock orders them).
  uploads_used integer NOT NULL DEFAULT 0 CHECK (uploads_used BETWEEN 0 AND 5),
  uploads_left integer GENERATED ALWAYS AS (5 - uploads_used) STORED,
  created_at   timestamptz NOT NULL DEFAULT now(),
  purged_at    timestamptz,
  CHECK (purged_at IS NOT NULL OR (nickname IS NOT NULL AND first_name IS NOT NULL AND last_name IS NOT NULL
    AND email IS NOT NULL AND upload_code IS NOT NULL))
);
CREATE UNIQUE INDEX exam_student_email ON exam_student (exam_id, email);
COMMENT ON COLUMN exam_student.upload_code IS 'Upload capability; readable only by the exam''s examiner';

CREATE TABLE exam_upload (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  student_id        uuid NOT NULL REFERENCES exam_student (id) ON DELETE CASCADE,
  attempt           integer NOT NULL CHECK (attempt BETWEEN 1 AND 5),
  -- Random (never the student's file name).
  blob_key          text NOT NULL UNIQUE,
  -- As the student named it; NULL once the exam is purged.
  file_name         text CHECK (char_length(file_name) BETWEEN 1 AND 255),
  content_type      text NOT NULL,
  size              bigint NOT NULL CHECK (size BETWEEN 1 AND 3145728),
  sha256            text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  verification_code text NOT NULL UNIQUE CHECK (verification_code ~ '^[a-z0-9]{9}$'),
  uploaded_at       timestamptz NOT NULL,
  expires_at        timestamptz NOT NULL,
  state             text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'replaced', 'expired', 'deleted')),
  -- When the state last changed (replaced, expired, deleted).
  state_changed_at  timestamptz NOT NULL,
  -- When the blob was confirmed gone from storage.
  deleted_at        timestamptz,
  -- The tus upload it came from, so a finish that is retried is accepted once.
  tus_id            text UNIQUE,
  UNIQUE (student_id, attempt),
  CHECK (expires_at = uploaded_at + interval '72 hours'),
  CHECK (state <> 'active' OR deleted_at IS NULL)
);
-- At most one active upload per student: a replacement swaps them in one
-- transaction.
CREATE UNIQUE INDEX exam_upload_one_active ON exam_upload (student_id) WHERE state = 'active';
-- The expiry sweep reads only active rows by expiry, so its cost follows the
-- expired files, not all files.
CREATE INDEX exam_upload_expiry ON exam_upload (expires_at) WHERE state = 'active';
-- Blobs still to delete (replaced, expired or purged, not yet confirmed gone).
CREATE INDEX exam_upload_blob_pending ON exam_upload (state_changed_at) WHERE state <> 'active' AND deleted_at IS NULL;
COMMENT ON TABLE exam_upload IS 'One uploaded answer file; at most one active per student';

-- Failures of the blob store (a write that failed, a delete that is being
-- retried): recorded, retried by River with backoff, resolved when done.
CREATE TABLE storage_failure (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  operation       text NOT NULL CHECK (operation IN ('put', 'delete')),
  key             text NOT NULL,
  error           text NOT NULL,
  attempts        integer NOT NULL DEFAULT 1 CHECK (attempts >= 1),
  first_failed_at timestamptz NOT NULL DEFAULT now(),
  last_failed_at  timestamptz NOT NULL DEFAULT now(),
  resolved_at     timestamptz
);
CREATE UNIQUE INDEX storage_failure_open ON storage_failure (operation, key) WHERE resolved_at IS NULL;
CREATE INDEX storage_failure_key ON storage_failure (key) WHERE resolved_at IS NULL;
COMMENT ON TABLE storage_failure IS 'Blob store failures, retried until resolved';
