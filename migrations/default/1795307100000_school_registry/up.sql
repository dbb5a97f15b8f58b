-- The school registry every capability shares: reference data (academic
-- years, grades, sections, streams, subjects), schools, staff and students.

CREATE TABLE academic_year (
  id         text PRIMARY KEY CHECK (id ~ '^[0-9]{4}-[0-9]{2}$'),
  starts_on  date NOT NULL,
  ends_on    date NOT NULL,
  is_current boolean NOT NULL DEFAULT false,
  CHECK (ends_on > starts_on)
);
COMMENT ON TABLE academic_year IS 'Academic years such as 2026-27; at most one is current';
CREATE UNIQUE INDEX academic_year_one_current ON academic_year (is_current) WHERE is_current;

CREATE TABLE grade (
  id      smallint PRIMARY KEY CHECK (id BETWEEN 1 AND 12),
  name    text NOT NULL,
  name_hi text NOT NULL
);
INSERT INTO grade (id, name, name_hi)
SELECT g, 'Class ' || g, 'कक्षा ' || g FROM generate_series(1, 12) AS g;

CREATE TABLE section (
  id text PRIMARY KEY CHECK (id ~ '^[A-Z]$')
);
INSERT INTO section (id) VALUES ('A'), ('B'), ('C'), ('D'), ('E'), ('F'), ('G'), ('H');

CREATE TABLE stream (
  id      text PRIMARY KEY CHECK (id ~ '^[A-Z_]{2,30}$'),
  name    text NOT NULL,
  name_hi text NOT NULL
);
INSERT INTO stream (id, name, name_hi) VALUES
  ('SCIENCE_MEDICAL', 'Science (Medical)', 'विज्ञान (चिकित्सा)'),
  ('SCIENCE_NON_MEDICAL', 'Science (Non-Medical)', 'विज्ञान (गैर-चिकित्सा)'),
  ('COMMERCE', 'Commerce', 'वाणिज्य'),
  ('ARTS', 'Arts', 'कला'),
  ('VOCATIONAL', 'Vocational', 'व्यावसायिक');

CREATE TABLE subject (
  id      text PRIMARY KEY CHECK (id ~ '^[A-Z_]{2,40}$'),
  name    text NOT NULL,
  name_hi text NOT NULL,
  active  boolean NOT NULL DEFAULT true
);
INSERT INTO subject (id, name, name_hi) VALUES
  ('HINDI', 'Hindi', 'हिंदी'),
  ('ENGLISH', 'English', 'अंग्रेज़ी'),
  ('MATHEMATICS', 'Mathematics', 'गणित'),
  ('EVS', 'Environmental Studies', 'पर्यावरण अध्ययन'),
  ('SCIENCE', 'Science', 'विज्ञान'),
  ('SOCIAL_SCIENCE', 'Social Science', 'सामाजिक विज्ञान'),
  ('SANSKRIT', 'Sanskrit', 'संस्कृत'),
  ('PHYSICS', 'Physics', 'भौतिकी'),
  ('CHEMISTRY', 'Chemistry', 'रसायन विज्ञान'),
  ('BIOLOGY', 'Biology', 'जीव विज्ञान'),
  ('ACCOUNTANCY', 'Accountancy', 'लेखाशास्त्र'),
  ('ECONOMICS', 'Economics', 'अर्थशास्त्र'),
  ('HISTORY', 'History', 'इतिहास'),
  ('POLITICAL_SCIENCE', 'Political Science', 'राजनीति विज्ञान'),
  ('COMPUTER_SCIENCE', 'Computer Science', 'कंप्यूटर विज्ञान');

CREATE TABLE school (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  udise      text NOT NULL UNIQUE CHECK (udise ~ '^[0-9]{11}$'),
  name       text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
  district   text NOT NULL CHECK (char_length(btrim(district)) BETWEEN 1 AND 100),
  block      text NOT NULL CHECK (char_length(btrim(block)) BETWEEN 1 AND 100),
  session    text NOT NULL CHECK (session IN ('W', 'S')),
  active     boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN school.udise IS '11-digit UDISE+ code';
COMMENT ON COLUMN school.session IS 'W: winter-closing school, S: summer-closing school (deadlines differ)';
CREATE INDEX school_district_block ON school (district, block);
CREATE TRIGGER school_updated_at BEFORE UPDATE ON school
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- staff maps an authenticated user (x-hasura-user-id) to a role and, for the
-- school role, to the school whose rows they may see.
CREATE TABLE staff (
  user_id    text PRIMARY KEY CHECK (char_length(user_id) BETWEEN 1 AND 200),
  name       text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
  phone      text CHECK (phone ~ '^\+?[0-9][0-9 -]{5,18}[0-9]$'),
  role       text NOT NULL CHECK (role IN ('admin', 'state_admin', 'district_admin', 'school', 'examiner', 'moderator')),
  school_id  uuid REFERENCES school (id),
  district   text,
  active     boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CHECK (role <> 'school' OR school_id IS NOT NULL),
  CHECK (role <> 'district_admin' OR district IS NOT NULL)
);
CREATE INDEX staff_school ON staff (school_id);
CREATE TRIGGER staff_updated_at BEFORE UPDATE ON staff
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE student (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  school_id        uuid NOT NULL REFERENCES school (id),
  name             text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
  father_name      text CHECK (char_length(father_name) <= 200),
  mother_name      text CHECK (char_length(mother_name) <= 200),
  guardian_phone   text CHECK (guardian_phone ~ '^\+?[0-9][0-9 -]{5,18}[0-9]$'),
  gender           text NOT NULL CHECK (gender IN ('MALE', 'FEMALE', 'OTHER')),
  category         text CHECK (category IN ('GENERAL', 'SC', 'ST', 'OBC', 'EWS')),
  date_of_birth    date CHECK (date_of_birth > '1950-01-01'),
  admission_number text CHECK (char_length(admission_number) BETWEEN 1 AND 50),
  admission_date   date,
  grade            smallint NOT NULL REFERENCES grade (id),
  section          text REFERENCES section (id),
  stream           text REFERENCES stream (id),
  academic_year    text REFERENCES academic_year (id),
  aadhaar          text CHECK (aadhaar ~ '^[2-9][0-9]{11}$'),
  is_cwsn          boolean NOT NULL DEFAULT false,
  cwsn_type        text CHECK (char_length(cwsn_type) <= 100),
  status           text NOT NULL DEFAULT 'ACTIVE'
                   CHECK (status IN ('ACTIVE', 'LEFT', 'TRANSFERRED', 'PASSED_OUT', 'DROPPED_OUT')),
  enabled          boolean NOT NULL DEFAULT true,
  left_on          date,
  left_reason      text CHECK (char_length(left_reason) <= 200),
  left_description text CHECK (char_length(left_description) <= 2000),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  UNIQUE (school_id, admission_number),
  CHECK (stream IS NULL OR grade >= 11),
  CHECK (status = 'ACTIVE' OR left_on IS NOT NULL OR status = 'PASSED_OUT')
);
COMMENT ON COLUMN student.aadhaar IS 'Sensitive: 12-digit Aadhaar number; selectable by the admin role only';
COMMENT ON COLUMN student.is_cwsn IS 'Child with special needs';
CREATE UNIQUE INDEX student_aadhaar ON student (aadhaar) WHERE aadhaar IS NOT NULL;
CREATE INDEX student_school_class ON student (school_id, grade, section) WHERE status = 'ACTIVE';
CREATE TRIGGER student_updated_at BEFORE UPDATE ON student
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();
