-- Master data for class-level (TSP) assessments: the learning objectives
-- (an LO flagged is_unit is a unit) and questions (with their cut-off
-- marks) of each grade and subject, bundles of each, and which bundle an
-- assessment uses for a class and subject. A TSP count of an LO, UNIT or
-- QUESTION assessment names one of them (assessment_tsp.unit holds its
-- code) once the state has defined any for that grade and subject; a NONE
-- assessment's count has no unit.

CREATE TABLE learning_objective (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  grade       smallint NOT NULL REFERENCES grade (id),
  subject     text NOT NULL REFERENCES subject (id),
  code        text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
  description text NOT NULL CHECK (char_length(btrim(description)) BETWEEN 1 AND 1000),
  is_unit     boolean NOT NULL DEFAULT false,
  position    int NOT NULL DEFAULT 0,
  active      boolean NOT NULL DEFAULT true,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (grade, subject, code)
);
COMMENT ON TABLE learning_objective IS 'Learning objectives (LO) per grade and subject; one flagged is_unit is also a unit';
COMMENT ON COLUMN learning_objective.code IS 'What a TSP count names in assessment_tsp.unit; cannot change once written';
COMMENT ON COLUMN learning_objective.active IS 'Withdrawn when false: no new counts name it, counts written before stay';
CREATE TRIGGER learning_objective_updated_at BEFORE UPDATE ON learning_objective FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE assessment_question (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  grade         smallint NOT NULL REFERENCES grade (id),
  subject       text NOT NULL REFERENCES subject (id),
  code          text NOT NULL CHECK (code ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$'),
  text          text NOT NULL CHECK (char_length(btrim(text)) BETWEEN 1 AND 2000),
  max_marks     numeric NOT NULL CHECK (max_marks > 0),
  cut_off_marks numeric NOT NULL CHECK (cut_off_marks >= 0),
  position      int NOT NULL DEFAULT 0,
  active        boolean NOT NULL DEFAULT true,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT assessment_question_cut_off_le_max CHECK (cut_off_marks <= max_marks),
  UNIQUE (grade, subject, code)
);
COMMENT ON TABLE assessment_question IS 'Questions per grade and subject for QUESTION assessments; a student clears one scoring at least cut_off_marks';
CREATE TRIGGER assessment_question_updated_at BEFORE UPDATE ON assessment_question FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The code of a learning objective or question is what counts name: it
-- never changes, nor do its grade and subject (withdraw it and create
-- another instead).
CREATE FUNCTION learning_unit_key_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.grade, NEW.subject, NEW.code) IS DISTINCT FROM (OLD.grade, OLD.subject, OLD.code) THEN
    RAISE EXCEPTION 'the grade, subject and code of % % cannot change: create another and withdraw this one (active = false)',
      replace(TG_TABLE_NAME, '_', ' '), OLD.code USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER learning_objective_key BEFORE UPDATE ON learning_objective FOR EACH ROW EXECUTE FUNCTION learning_unit_key_check();
CREATE TRIGGER assessment_question_key BEFORE UPDATE ON assessment_question FOR EACH ROW EXECUTE FUNCTION learning_unit_key_check();

CREATE TABLE unit_bundle (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 300),
  unit_type  text NOT NULL CHECK (unit_type IN ('LO', 'UNIT', 'QUESTION')),
  grade      smallint NOT NULL REFERENCES grade (id),
  subject    text NOT NULL REFERENCES subject (id),
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE unit_bundle IS 'A chosen set of learning objectives, units or questions of one grade and subject';

CREATE TABLE unit_bundle_item (
  bundle_id             uuid NOT NULL REFERENCES unit_bundle (id) ON DELETE CASCADE,
  learning_objective_id uuid REFERENCES learning_objective (id),
  question_id           uuid REFERENCES assessment_question (id),
  position              int NOT NULL DEFAULT 0,
  CONSTRAINT unit_bundle_item_one CHECK (num_nonnulls(learning_objective_id, question_id) = 1),
  UNIQUE (bundle_id, learning_objective_id),
  UNIQUE (bundle_id, question_id)
);
CREATE INDEX unit_bundle_item_learning_objective ON unit_bundle_item (learning_objective_id);
CREATE INDEX unit_bundle_item_question ON unit_bundle_item (question_id);

-- An item is of its bundle's kind, grade and subject.
CREATE FUNCTION unit_bundle_item_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  b unit_bundle;
  lo learning_objective;
  q assessment_question;
BEGIN
  SELECT * INTO b FROM unit_bundle WHERE id = NEW.bundle_id;
  IF b.id IS NULL OR num_nonnulls(NEW.learning_objective_id, NEW.question_id) <> 1 THEN
    RETURN NEW; -- the foreign key or unit_bundle_item_one refuses it
  END IF;
  IF NEW.learning_objective_id IS NOT NULL THEN
    SELECT * INTO lo FROM learning_objective WHERE id = NEW.learning_objective_id;
    IF lo.id IS NULL THEN
      RETURN NEW;
    END IF;
    IF b.unit_type = 'QUESTION' THEN
      RAISE EXCEPTION 'bundle "%" holds questions, not learning objective %', b.name, lo.code USING ERRCODE = 'check_violation';
    END IF;
    IF b.unit_type = 'UNIT' AND NOT lo.is_unit THEN
      RAISE EXCEPTION 'bundle "%" holds units: learning objective % is not a unit (is_unit)', b.name, lo.code USING ERRCODE = 'check_violation';
    END IF;
    IF (lo.grade, lo.subject) IS DISTINCT FROM (b.grade, b.subject) THEN
      RAISE EXCEPTION 'bundle "%" is for class % %: learning objective % is for class % %', b.name, b.grade, b.subject, lo.code, lo.grade, lo.subject
        USING ERRCODE = 'check_violation';
    END IF;
  ELSE
    SELECT * INTO q FROM assessment_question WHERE id = NEW.question_id;
    IF q.id IS NULL THEN
      RETURN NEW;
    END IF;
    IF b.unit_type <> 'QUESTION' THEN
      RAISE EXCEPTION 'bundle "%" holds % items, not question %', b.name, b.unit_type, q.code USING ERRCODE = 'check_violation';
    END IF;
    IF (q.grade, q.subject) IS DISTINCT FROM (b.grade, b.subject) THEN
      RAISE EXCEPTION 'bundle "%" is for class % %: question % is for class % %', b.name, b.grade, b.subject, q.code, q.grade, q.subject
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER unit_bundle_item_check BEFORE INSERT OR UPDATE ON unit_bundle_item
  FOR EACH ROW EXECUTE FUNCTION unit_bundle_item_check();

-- A learning objective or question can be deleted (a mistake) only while
-- no count names it and no bundle holds it; otherwise it is withdrawn
-- (active = false).
CREATE FUNCTION learning_unit_delete_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  what   text := CASE TG_TABLE_NAME WHEN 'learning_objective' THEN 'learning objective' ELSE 'question' END;
  bundle text;
BEGIN
  SELECT b.name INTO bundle FROM unit_bundle_item i JOIN unit_bundle b ON b.id = i.bundle_id
    WHERE i.learning_objective_id = OLD.id OR i.question_id = OLD.id LIMIT 1;
  IF bundle IS NOT NULL THEN
    RAISE EXCEPTION '% % is in bundle "%": take it out of the bundle, or withdraw it (active = false)', what, OLD.code, bundle
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM assessment_tsp t JOIN assessment a ON a.id = t.assessment_id
             WHERE t.grade = OLD.grade AND t.subject = OLD.subject AND t.unit = OLD.code
               AND (a.unit_type = 'QUESTION') = (TG_TABLE_NAME = 'assessment_question')) THEN
    RAISE EXCEPTION 'schools have counted % % of class % %: withdraw it (active = false) instead', what, OLD.code, OLD.grade, OLD.subject
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN OLD;
END;
$$;
CREATE TRIGGER learning_objective_delete BEFORE DELETE ON learning_objective FOR EACH ROW EXECUTE FUNCTION learning_unit_delete_check();
CREATE TRIGGER assessment_question_delete BEFORE DELETE ON assessment_question FOR EACH ROW EXECUTE FUNCTION learning_unit_delete_check();

-- A bundle's kind, grade and subject cannot change under its items.
CREATE FUNCTION unit_bundle_key_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF (NEW.unit_type, NEW.grade, NEW.subject) IS DISTINCT FROM (OLD.unit_type, OLD.grade, OLD.subject) THEN
    RAISE EXCEPTION 'the unit type, grade and subject of bundle "%" cannot change: create another bundle', OLD.name USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER unit_bundle_key BEFORE UPDATE ON unit_bundle FOR EACH ROW EXECUTE FUNCTION unit_bundle_key_check();

-- A bundle an assessment uses cannot be deleted; the refusal names it.
CREATE FUNCTION unit_bundle_delete_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  used text;
BEGIN
  SELECT format('"%s" (class %s %s)', a.name, m.grade, m.subject) INTO used FROM assessment_bundle m JOIN assessment a ON a.id = m.assessment_id
    WHERE m.bundle_id = OLD.id ORDER BY a.name LIMIT 1;
  IF used IS NOT NULL THEN
    RAISE EXCEPTION 'bundle "%" is used by %: map another bundle there first', OLD.name, used USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN OLD;
END;
$$;
CREATE TRIGGER unit_bundle_delete BEFORE DELETE ON unit_bundle FOR EACH ROW EXECUTE FUNCTION unit_bundle_delete_check();

-- A unit that stops being one cannot stay in a UNIT bundle.
CREATE FUNCTION learning_objective_unit_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  bundle text;
BEGIN
  IF OLD.is_unit AND NOT NEW.is_unit THEN
    SELECT b.name INTO bundle FROM unit_bundle_item i JOIN unit_bundle b ON b.id = i.bundle_id
      WHERE i.learning_objective_id = NEW.id AND b.unit_type = 'UNIT' LIMIT 1;
    IF bundle IS NOT NULL THEN
      RAISE EXCEPTION 'learning objective % is in the unit bundle "%": take it out of the bundle first', NEW.code, bundle USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER learning_objective_unit BEFORE UPDATE OF is_unit ON learning_objective
  FOR EACH ROW EXECUTE FUNCTION learning_objective_unit_check();

-- The bundle an assessment uses for a class and subject; without one it
-- uses every active learning objective, unit or question of the class and
-- subject. A mapping for a class and subject the assessment no longer has
-- (an edit of the builder removed it) is kept and does nothing. Master
-- data and mappings can change at any time: counts written before stay as
-- they are, new counts name what is current.
CREATE TABLE assessment_bundle (
  assessment_id uuid NOT NULL REFERENCES assessment (id) ON DELETE CASCADE,
  grade         smallint NOT NULL REFERENCES grade (id),
  subject       text NOT NULL REFERENCES subject (id),
  bundle_id     uuid NOT NULL REFERENCES unit_bundle (id),
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (assessment_id, grade, subject)
);
CREATE INDEX assessment_bundle_bundle ON assessment_bundle (bundle_id);

CREATE FUNCTION assessment_bundle_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  a assessment;
  b unit_bundle;
BEGIN
  SELECT * INTO a FROM assessment WHERE id = NEW.assessment_id;
  SELECT * INTO b FROM unit_bundle WHERE id = NEW.bundle_id;
  IF a.id IS NULL OR b.id IS NULL THEN
    RETURN NEW; -- the foreign keys refuse it
  END IF;
  IF a.unit_type <> b.unit_type THEN
    RAISE EXCEPTION 'assessment "%" counts by unit type %: bundle "%" holds % items', a.name, a.unit_type, b.name, b.unit_type
      USING ERRCODE = 'check_violation';
  END IF;
  IF (b.grade, b.subject) IS DISTINCT FROM (NEW.grade, NEW.subject) THEN
    RAISE EXCEPTION 'bundle "%" is for class % %, not % %', b.name, b.grade, b.subject, NEW.grade, NEW.subject USING ERRCODE = 'check_violation';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM assessment_subject s WHERE s.assessment_id = NEW.assessment_id AND s.grade = NEW.grade AND s.subject = NEW.subject) THEN
    RAISE EXCEPTION 'subject % is not part of "%" for class %', NEW.subject, a.name, NEW.grade USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER assessment_bundle_check BEFORE INSERT OR UPDATE ON assessment_bundle
  FOR EACH ROW EXECUTE FUNCTION assessment_bundle_check();

-- An assessment's unit type cannot change once schools have written
-- counts (for every writer; the builder refuses such an edit by name
-- first), and a change drops the bundle mappings of the old type.
CREATE FUNCTION assessment_unit_type_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.unit_type IS DISTINCT FROM OLD.unit_type THEN
    IF EXISTS (SELECT 1 FROM assessment_tsp WHERE assessment_id = NEW.id) THEN
      RAISE EXCEPTION 'class counts of "%" are written by unit type %: the unit type cannot change to %', OLD.name, OLD.unit_type, NEW.unit_type
        USING ERRCODE = 'check_violation';
    END IF;
    DELETE FROM assessment_bundle m USING unit_bundle b
      WHERE m.assessment_id = NEW.id AND b.id = m.bundle_id AND b.unit_type <> NEW.unit_type;
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER assessment_unit_type BEFORE UPDATE OF unit_type ON assessment
  FOR EACH ROW EXECUTE FUNCTION assessment_unit_type_change();

-- What a school counts for each class and subject of an assessment: the
-- bundle's items, or every active learning objective (LO), unit (UNIT) or
-- question (QUESTION) of the class and subject. Withdrawn items are left
-- out in both.
CREATE VIEW assessment_unit AS
SELECT s.assessment_id, s.grade, s.subject, a.unit_type, lo.code AS unit, lo.description,
  NULL::numeric AS max_marks, NULL::numeric AS cut_off_marks, coalesce(i.position, lo.position) AS position,
  lo.id AS learning_objective_id, NULL::uuid AS question_id, m.bundle_id
FROM assessment_subject s
JOIN assessment a ON a.id = s.assessment_id AND a.unit_type IN ('LO', 'UNIT')
LEFT JOIN assessment_bundle m ON m.assessment_id = s.assessment_id AND m.grade = s.grade AND m.subject = s.subject
JOIN learning_objective lo ON lo.grade = s.grade AND lo.subject = s.subject AND lo.active AND (a.unit_type = 'LO' OR lo.is_unit)
LEFT JOIN unit_bundle_item i ON i.bundle_id = m.bundle_id AND i.learning_objective_id = lo.id
WHERE m.bundle_id IS NULL OR i.bundle_id IS NOT NULL
UNION ALL
SELECT s.assessment_id, s.grade, s.subject, a.unit_type, q.code, q.text,
  q.max_marks, q.cut_off_marks, coalesce(i.position, q.position),
  NULL::uuid, q.id, m.bundle_id
FROM assessment_subject s
JOIN assessment a ON a.id = s.assessment_id AND a.unit_type = 'QUESTION'
LEFT JOIN assessment_bundle m ON m.assessment_id = s.assessment_id AND m.grade = s.grade AND m.subject = s.subject
JOIN assessment_question q ON q.grade = s.grade AND q.subject = s.subject AND q.active
LEFT JOIN unit_bundle_item i ON i.bundle_id = m.bundle_id AND i.question_id = q.id
WHERE m.bundle_id IS NULL OR i.bundle_id IS NOT NULL;
COMMENT ON VIEW assessment_unit IS 'What a school counts per class and subject of an LO, UNIT or QUESTION assessment (unit = the code a TSP count names)';

-- A TSP count's unit: none for a NONE assessment; for the others one of
-- assessment_unit's, once the state has defined active learning objectives,
-- units or questions for the class and subject (or mapped a bundle) —
-- before that any non-empty name, as before this migration. Checked for
-- rows a statement inserts (AFTER INSERT: an upsert that updates a count
-- is a correction, not a new count, and passes even if its unit has been
-- withdrawn since); a count cannot move to another unit
-- (assessment_write_check), and withdrawing an item later leaves the
-- counts naming it.
CREATE FUNCTION assessment_tsp_unit_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  a       assessment;
  what    text;
  bundle  unit_bundle;
  defined boolean;
  known   text;
BEGIN
  SELECT * INTO a FROM assessment WHERE id = NEW.assessment_id;
  IF a.id IS NULL THEN
    RETURN NULL;
  END IF;
  IF a.unit_type = 'NONE' THEN
    IF NEW.unit <> '' THEN
      RAISE EXCEPTION '"%" counts each class and subject once (unit type NONE): unit must be empty, not "%"', a.name, NEW.unit
        USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
  END IF;
  what := CASE a.unit_type WHEN 'LO' THEN 'learning objective' WHEN 'UNIT' THEN 'unit' ELSE 'question' END;
  IF NEW.unit = '' THEN
    RAISE EXCEPTION '"%" counts by %: unit required for class % %', a.name, what, NEW.grade, NEW.subject USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM assessment_unit u WHERE u.assessment_id = NEW.assessment_id AND u.grade = NEW.grade
             AND u.subject = NEW.subject AND u.unit = NEW.unit) THEN
    RETURN NULL;
  END IF;
  SELECT b.* INTO bundle FROM assessment_bundle m JOIN unit_bundle b ON b.id = m.bundle_id
    WHERE m.assessment_id = NEW.assessment_id AND m.grade = NEW.grade AND m.subject = NEW.subject;
  defined := bundle.id IS NOT NULL
    OR (a.unit_type IN ('LO', 'UNIT') AND EXISTS (SELECT 1 FROM learning_objective lo WHERE lo.grade = NEW.grade AND lo.subject = NEW.subject
                                                 AND lo.active AND (a.unit_type = 'LO' OR lo.is_unit)))
    OR (a.unit_type = 'QUESTION' AND EXISTS (SELECT 1 FROM assessment_question q WHERE q.grade = NEW.grade AND q.subject = NEW.subject AND q.active));
  IF NOT defined THEN
    RETURN NULL;
  END IF;
  SELECT string_agg(u.unit, ', ' ORDER BY u.position, u.unit) INTO known FROM (
    SELECT unit, position FROM assessment_unit WHERE assessment_id = NEW.assessment_id AND grade = NEW.grade AND subject = NEW.subject
    ORDER BY position, unit LIMIT 20) u;
  RAISE EXCEPTION '"%" has no % "%" for class % %: %', a.name, what, NEW.unit, NEW.grade, NEW.subject,
    coalesce('counts name one of ' || known, format('its bundle "%s" holds no active %s', bundle.name, what)) USING ERRCODE = 'check_violation';
END;
$$;
CREATE TRIGGER assessment_tsp_unit AFTER INSERT ON assessment_tsp
  FOR EACH ROW EXECUTE FUNCTION assessment_tsp_unit_check();
