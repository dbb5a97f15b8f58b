-- Assessments (eSamwad): created from assessment-builder submissions, with
-- deadlines per district and session, class → subject selections and
-- components; student-level results and class-level TSP counts that schools
-- write only before the deadline, while the class is not final, within the
-- maximum marks.

CREATE TABLE grade_mapping (
  letter text PRIMARY KEY CHECK (letter ~ '^[A-E][1-2]?\+?$'),
  value  numeric NOT NULL CHECK (value >= 0)
);
INSERT INTO grade_mapping (letter, value) VALUES ('A', 10), ('B', 8), ('C', 6), ('D', 4), ('E', 2);

CREATE TABLE assessment (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  submission_id       uuid NOT NULL UNIQUE REFERENCES form_submission (id),
  builder_instance_id text NOT NULL UNIQUE,
  name                text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 300),
  type                text NOT NULL CHECK (type IN ('FA1', 'FA2', 'FA3', 'FA4', 'SA1', 'SA2', 'TERM1', 'TERM2', 'BASELINE', 'ENDLINE')),
  academic_year       text NOT NULL REFERENCES academic_year (id),
  unit_type           text NOT NULL CHECK (unit_type IN ('LO', 'UNIT', 'QUESTION', 'NONE')),
  evaluation          text NOT NULL CHECK (evaluation IN ('GRADE', 'MARKS', 'PERCENTAGE', 'NONE')),
  outcome             text NOT NULL CHECK (outcome IN ('TSP', 'BOOLEAN', 'MARKS')),
  total_marks         numeric CHECK (total_marks > 0),
  pass_percent        numeric CHECK (pass_percent BETWEEN 0 AND 100),
  sms_template        text,
  enabled             boolean NOT NULL DEFAULT true,
  created_by          text,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  -- Of the 32 kinds (unit type × evaluation × outcome), the supported ones.
  CONSTRAINT assessment_supported_kind CHECK (evaluation IN ('GRADE', 'MARKS') AND outcome = 'TSP')
);
COMMENT ON COLUMN assessment.builder_instance_id IS 'instanceID of the builder submission in force (edits replace it)';
CREATE TRIGGER assessment_updated_at BEFORE UPDATE ON assessment FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE assessment_deadline (
  assessment_id uuid NOT NULL REFERENCES assessment (id) ON DELETE CASCADE,
  district      text NOT NULL,
  session       text NOT NULL CHECK (session IN ('W', 'S')),
  due_at        timestamptz NOT NULL,
  PRIMARY KEY (assessment_id, district, session)
);
CREATE INDEX assessment_deadline_district ON assessment_deadline (district, session);

CREATE TABLE assessment_subject (
  assessment_id uuid NOT NULL REFERENCES assessment (id) ON DELETE CASCADE,
  grade         smallint NOT NULL REFERENCES grade (id),
  subject       text NOT NULL REFERENCES subject (id),
  PRIMARY KEY (assessment_id, grade, subject)
);

CREATE TABLE assessment_component (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  assessment_id  uuid NOT NULL REFERENCES assessment (id) ON DELETE CASCADE,
  component_type text NOT NULL CHECK (component_type IN ('THEORY', 'PRACTICAL', 'ORAL', 'PROJECT')),
  max_marks      numeric NOT NULL CHECK (max_marks > 0),
  pass_percent   numeric CHECK (pass_percent BETWEEN 0 AND 100),
  position       int NOT NULL,
  UNIQUE (assessment_id, component_type)
);

-- A class's submission for an assessment; final locks it.
CREATE TABLE assessment_class (
  assessment_id uuid NOT NULL REFERENCES assessment (id) ON DELETE CASCADE,
  school_id     uuid NOT NULL REFERENCES school (id),
  grade         smallint NOT NULL REFERENCES grade (id),
  section       text NOT NULL REFERENCES section (id),
  final         boolean NOT NULL DEFAULT false,
  finalized_at  timestamptz,
  finalized_by  text,
  PRIMARY KEY (assessment_id, school_id, grade, section),
  CHECK (NOT final OR finalized_at IS NOT NULL)
);

ALTER TABLE student ADD CONSTRAINT student_id_school UNIQUE (id, school_id);

CREATE TABLE assessment_result (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  assessment_id uuid NOT NULL REFERENCES assessment (id),
  school_id     uuid NOT NULL REFERENCES school (id),
  student_id    uuid NOT NULL,
  subject       text NOT NULL REFERENCES subject (id),
  component_id  uuid REFERENCES assessment_component (id),
  present       boolean NOT NULL DEFAULT true,
  marks         numeric CHECK (marks >= 0),
  grade         text REFERENCES grade_mapping (letter),
  submitted_by  text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (student_id, school_id) REFERENCES student (id, school_id),
  CONSTRAINT assessment_result_absent_no_score CHECK (present OR (marks IS NULL AND grade IS NULL)),
  UNIQUE NULLS NOT DISTINCT (assessment_id, student_id, subject, component_id)
);
CREATE INDEX assessment_result_school ON assessment_result (school_id, assessment_id);

CREATE TABLE assessment_tsp (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  assessment_id    uuid NOT NULL REFERENCES assessment (id),
  school_id        uuid NOT NULL REFERENCES school (id),
  grade            smallint NOT NULL REFERENCES grade (id),
  section          text NOT NULL REFERENCES section (id),
  subject          text NOT NULL REFERENCES subject (id),
  unit             text NOT NULL DEFAULT '' CHECK (char_length(unit) <= 100),
  students_cleared int NOT NULL CHECK (students_cleared >= 0),
  students_present int NOT NULL CHECK (students_present >= 0),
  submitted_by     text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT assessment_tsp_cleared_le_present CHECK (students_cleared <= students_present),
  UNIQUE (assessment_id, school_id, grade, section, subject, unit)
);
COMMENT ON COLUMN assessment_tsp.unit IS 'The learning outcome, unit or question the count is for; empty when the unit type is NONE';
CREATE INDEX assessment_tsp_school ON assessment_tsp (school_id, assessment_id);

-- The rules every school write must satisfy, enforced in the database so
-- that no path (Hasura, shala, SQL) can bypass them.
CREATE FUNCTION assessment_write_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  a        assessment;
  due      timestamptz;
  cls_grade smallint;
  cls_section text;
  max_allowed numeric;
BEGIN
  SELECT * INTO a FROM assessment WHERE id = NEW.assessment_id;
  IF NOT a.enabled THEN
    RAISE EXCEPTION 'assessment "%" is not enabled', a.name USING ERRCODE = 'check_violation';
  END IF;
  SELECT d.due_at INTO due FROM assessment_deadline d JOIN school s ON s.district = d.district AND s.session = d.session
    WHERE d.assessment_id = NEW.assessment_id AND s.id = NEW.school_id;
  IF due IS NULL THEN
    RAISE EXCEPTION 'assessment "%" is not open to this school''s district and session', a.name USING ERRCODE = 'check_violation';
  END IF;
  IF now() > due THEN
    RAISE EXCEPTION 'the deadline for "%" passed at %', a.name, due USING ERRCODE = 'check_violation';
  END IF;
  IF TG_TABLE_NAME = 'assessment_result' THEN
    SELECT st.grade, coalesce(st.section, 'A') INTO cls_grade, cls_section FROM student st WHERE st.id = NEW.student_id;
  ELSE
    cls_grade := NEW.grade;
    cls_section := NEW.section;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM assessment_subject WHERE assessment_id = NEW.assessment_id AND grade = cls_grade AND subject = NEW.subject) THEN
    RAISE EXCEPTION 'subject % is not part of "%" for class %', NEW.subject, a.name, cls_grade USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM assessment_class c WHERE c.assessment_id = NEW.assessment_id AND c.school_id = NEW.school_id
             AND c.grade = cls_grade AND c.section = cls_section AND c.final) THEN
    RAISE EXCEPTION 'class %-% is final for "%"', cls_grade, cls_section, a.name USING ERRCODE = 'check_violation';
  END IF;
  IF TG_TABLE_NAME = 'assessment_result' AND NEW.present THEN
    IF a.evaluation = 'MARKS' THEN
      IF NEW.marks IS NULL THEN
        RAISE EXCEPTION '"%" is evaluated in marks: marks required for a present student', a.name USING ERRCODE = 'check_violation';
      END IF;
      IF NEW.component_id IS NOT NULL THEN
        SELECT max_marks INTO max_allowed FROM assessment_component WHERE id = NEW.component_id AND assessment_id = NEW.assessment_id;
        IF max_allowed IS NULL THEN
          RAISE EXCEPTION 'component is not part of "%"', a.name USING ERRCODE = 'check_violation';
        END IF;
      ELSE
        max_allowed := a.total_marks;
      END IF;
      IF max_allowed IS NOT NULL AND NEW.marks > max_allowed THEN
        RAISE EXCEPTION 'marks % exceed the maximum % of "%"', NEW.marks, max_allowed, a.name USING ERRCODE = 'check_violation';
      END IF;
    ELSIF a.evaluation = 'GRADE' AND NEW.grade IS NULL THEN
      RAISE EXCEPTION '"%" is evaluated in grades: grade required for a present student', a.name USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TRIGGER assessment_result_check BEFORE INSERT OR UPDATE ON assessment_result
  FOR EACH ROW EXECUTE FUNCTION assessment_write_check();
CREATE TRIGGER assessment_tsp_check BEFORE INSERT OR UPDATE ON assessment_tsp
  FOR EACH ROW EXECUTE FUNCTION assessment_write_check();

-- A class cannot be un-finalised by a school.
CREATE FUNCTION assessment_class_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.final AND NOT NEW.final THEN
    RAISE EXCEPTION 'class %-% is final', OLD.grade, OLD.section USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.final AND NEW.finalized_at IS NULL THEN
    NEW.finalized_at := now();
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER assessment_class_final BEFORE INSERT OR UPDATE ON assessment_class
  FOR EACH ROW EXECUTE FUNCTION assessment_class_check();
