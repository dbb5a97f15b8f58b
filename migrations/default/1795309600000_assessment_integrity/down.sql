-- Back to the assessments migration's rules, then without the added columns
-- and helpers.
CREATE OR REPLACE FUNCTION assessment_write_check() RETURNS trigger
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

CREATE OR REPLACE FUNCTION assessment_class_check() RETURNS trigger
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
ALTER TABLE assessment_result DROP COLUMN IF EXISTS class_grade, DROP COLUMN IF EXISTS class_section;
DROP FUNCTION IF EXISTS assessment_open_check(assessment, uuid, smallint, text);
DROP FUNCTION IF EXISTS assessment_class_lock_key(uuid, uuid, smallint, text);
