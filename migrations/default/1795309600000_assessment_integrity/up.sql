-- Closes ways around the assessment write rules:
-- * a result remembers the class it was written for (class_grade,
--   class_section), so moving the student to another section cannot reopen
--   a final class; its key columns cannot change;
-- * result and TSP writes and finalising a class are ordered per class with
--   an advisory lock (writes shared, finalising exclusive): no mark commits
--   after its class became final;
-- * finalising is held to the same rules as writing (enabled, open to the
--   school's district and session, before the deadline, a class the
--   assessment covers);
-- * marks and grades fit the evaluation (no marks in a GRADE assessment, no
--   grade in a MARKS one) and a component is one of the assessment's.

ALTER TABLE assessment_result ADD COLUMN class_grade smallint REFERENCES grade (id),
  ADD COLUMN class_section text REFERENCES section (id);
UPDATE assessment_result r SET class_grade = s.grade, class_section = coalesce(s.section, 'A')
  FROM student s WHERE s.id = r.student_id;
ALTER TABLE assessment_result ALTER COLUMN class_grade SET NOT NULL, ALTER COLUMN class_section SET NOT NULL;
COMMENT ON COLUMN assessment_result.class_grade IS 'Grade of the class the result was written for (the student''s at the time); set by the database';
COMMENT ON COLUMN assessment_result.class_section IS 'Section of that class (no section is A); set by the database';

-- The per-class lock key shared by writes and finalising.
CREATE FUNCTION assessment_class_lock_key(assessment uuid, school uuid, grade smallint, section text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
  SELECT hashtextextended('assessment_class:' || assessment || ':' || school || ':' || grade || ':' || section, 0)
$$;

-- Open for writing: enabled, open to the school's district and session,
-- before the deadline, and the class's grade takes subject (NULL: any).
CREATE FUNCTION assessment_open_check(a assessment, school uuid, cls_grade smallint, subj text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  due timestamptz;
BEGIN
  IF NOT a.enabled THEN
    RAISE EXCEPTION 'assessment "%" is not enabled', a.name USING ERRCODE = 'check_violation';
  END IF;
  SELECT d.due_at INTO due FROM assessment_deadline d JOIN school s ON s.district = d.district AND s.session = d.session
    WHERE d.assessment_id = a.id AND s.id = school;
  IF due IS NULL THEN
    RAISE EXCEPTION 'assessment "%" is not open to this school''s district and session', a.name USING ERRCODE = 'check_violation';
  END IF;
  IF now() > due THEN
    RAISE EXCEPTION 'the deadline for "%" passed at %', a.name, due USING ERRCODE = 'check_violation';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM assessment_subject WHERE assessment_id = a.id AND grade = cls_grade AND (subj IS NULL OR subject = subj)) THEN
    IF subj IS NULL THEN
      RAISE EXCEPTION 'class % is not part of "%"', cls_grade, a.name USING ERRCODE = 'check_violation';
    END IF;
    RAISE EXCEPTION 'subject % is not part of "%" for class %', subj, a.name, cls_grade USING ERRCODE = 'check_violation';
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION assessment_write_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  a           assessment;
  cls_grade   smallint;
  cls_section text;
  max_allowed numeric;
BEGIN
  IF TG_OP = 'UPDATE' AND (NEW.assessment_id, NEW.school_id) IS DISTINCT FROM (OLD.assessment_id, OLD.school_id) THEN
    RAISE EXCEPTION 'an assessment write cannot move to another assessment or school' USING ERRCODE = 'check_violation';
  END IF;
  SELECT * INTO a FROM assessment WHERE id = NEW.assessment_id;
  IF TG_TABLE_NAME = 'assessment_result' THEN
    IF TG_OP = 'UPDATE' THEN
      IF (NEW.student_id, NEW.subject, NEW.component_id) IS DISTINCT FROM (OLD.student_id, OLD.subject, OLD.component_id) THEN
        RAISE EXCEPTION 'a result cannot move to another student, subject or component' USING ERRCODE = 'check_violation';
      END IF;
      cls_grade := OLD.class_grade;
      cls_section := OLD.class_section;
    ELSE
      SELECT st.grade, coalesce(st.section, 'A') INTO cls_grade, cls_section FROM student st WHERE st.id = NEW.student_id;
    END IF;
    NEW.class_grade := cls_grade;
    NEW.class_section := cls_section;
  ELSE
    IF TG_OP = 'UPDATE' AND (NEW.grade, NEW.section, NEW.subject, NEW.unit) IS DISTINCT FROM (OLD.grade, OLD.section, OLD.subject, OLD.unit) THEN
      RAISE EXCEPTION 'a TSP count cannot move to another class, subject or unit' USING ERRCODE = 'check_violation';
    END IF;
    cls_grade := NEW.grade;
    cls_section := NEW.section;
  END IF;
  PERFORM assessment_open_check(a, NEW.school_id, cls_grade, NEW.subject);
  -- Wait for a finalisation of this class in progress, then see it.
  PERFORM pg_advisory_xact_lock_shared(assessment_class_lock_key(NEW.assessment_id, NEW.school_id, cls_grade, cls_section));
  IF EXISTS (SELECT 1 FROM assessment_class c WHERE c.assessment_id = NEW.assessment_id AND c.school_id = NEW.school_id
             AND c.grade = cls_grade AND c.section = cls_section AND c.final) THEN
    RAISE EXCEPTION 'class %-% is final for "%"', cls_grade, cls_section, a.name USING ERRCODE = 'check_violation';
  END IF;
  IF TG_TABLE_NAME = 'assessment_result' THEN
    IF NEW.component_id IS NOT NULL THEN
      SELECT max_marks INTO max_allowed FROM assessment_component WHERE id = NEW.component_id AND assessment_id = NEW.assessment_id;
      IF max_allowed IS NULL THEN
        RAISE EXCEPTION 'component is not part of "%"', a.name USING ERRCODE = 'check_violation';
      END IF;
    ELSE
      max_allowed := a.total_marks;
    END IF;
    IF a.evaluation = 'MARKS' AND NEW.grade IS NOT NULL THEN
      RAISE EXCEPTION '"%" is evaluated in marks, not grades', a.name USING ERRCODE = 'check_violation';
    END IF;
    IF a.evaluation = 'GRADE' AND NEW.marks IS NOT NULL THEN
      RAISE EXCEPTION '"%" is evaluated in grades, not marks', a.name USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.present AND a.evaluation = 'MARKS' AND NEW.marks IS NULL THEN
      RAISE EXCEPTION '"%" is evaluated in marks: marks required for a present student', a.name USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.present AND a.evaluation = 'GRADE' AND NEW.grade IS NULL THEN
      RAISE EXCEPTION '"%" is evaluated in grades: grade required for a present student', a.name USING ERRCODE = 'check_violation';
    END IF;
    IF max_allowed IS NOT NULL AND NEW.marks > max_allowed THEN
      RAISE EXCEPTION 'marks % exceed the maximum % of "%"', NEW.marks, max_allowed, a.name USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

-- Finalising is a write: the same rules, and it waits for writes of the
-- class in progress. A final class cannot be un-finalised or moved.
CREATE OR REPLACE FUNCTION assessment_class_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  a assessment;
BEGIN
  IF TG_OP = 'UPDATE' AND (NEW.assessment_id, NEW.school_id, NEW.grade, NEW.section) IS DISTINCT FROM
                          (OLD.assessment_id, OLD.school_id, OLD.grade, OLD.section) THEN
    RAISE EXCEPTION 'a class submission cannot move to another class' USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.final AND NOT NEW.final THEN
    RAISE EXCEPTION 'class %-% is final', OLD.grade, OLD.section USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.final AND (TG_OP = 'INSERT' OR NOT OLD.final) THEN
    SELECT * INTO a FROM assessment WHERE id = NEW.assessment_id;
    PERFORM assessment_open_check(a, NEW.school_id, NEW.grade, NULL);
    PERFORM pg_advisory_xact_lock(assessment_class_lock_key(NEW.assessment_id, NEW.school_id, NEW.grade, NEW.section));
    NEW.finalized_at := coalesce(NEW.finalized_at, now());
  END IF;
  RETURN NEW;
END;
$$;
