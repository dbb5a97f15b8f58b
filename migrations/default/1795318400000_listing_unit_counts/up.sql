-- "k of n" in the school's listing: how many units (learning objectives,
-- units or questions: assessment_unit) each class and subject of an
-- assessment counts. The number is the same for every school, so it is kept
-- once, in assessment_unit_count, refreshed by the statements that change
-- what assessment_unit shows (master data, bundles, an assessment's
-- subjects or unit type), and a change of it bumps assessment_unit_version,
-- which every school's ETag includes.

CREATE TABLE assessment_unit_count (
  assessment_id uuid NOT NULL,
  grade         smallint NOT NULL,
  subject       text NOT NULL,
  units         int NOT NULL CHECK (units > 0),
  PRIMARY KEY (assessment_id, grade, subject)
);
COMMENT ON TABLE assessment_unit_count IS 'Units (rows of assessment_unit) per assessment, class and subject, kept by assessment_unit_count_refresh(); none: the state has defined none, so any unit name is taken';

CREATE TABLE assessment_unit_version (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  version bigint NOT NULL DEFAULT 0
);
INSERT INTO assessment_unit_version DEFAULT VALUES;
COMMENT ON TABLE assessment_unit_version IS 'One row: bumped in the transaction of every change to assessment_unit_count (part of every listing''s ETag)';

CREATE VIEW assessment_unit_totals AS
SELECT assessment_id, grade, subject, count(*)::int AS units
FROM assessment_unit GROUP BY assessment_id, grade, subject;

-- Brings assessment_unit_count to what assessment_unit says now and
-- returns how many rows changed (the version is bumped when any did).
-- Writers take the version row first, one at a time: at READ COMMITTED the
-- statements after the lock see everything committed before it was
-- granted, so two writers never both miss the other's change; at
-- REPEATABLE READ or SERIALIZABLE the second fails with a serialization
-- error and is retried like any other.
CREATE FUNCTION assessment_unit_count_refresh() RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  gone int;
  came int;
BEGIN
  PERFORM 1 FROM assessment_unit_version FOR UPDATE;
  DELETE FROM assessment_unit_count c WHERE NOT EXISTS (
    SELECT 1 FROM assessment_unit_totals f
    WHERE (f.assessment_id, f.grade, f.subject, f.units) = (c.assessment_id, c.grade, c.subject, c.units));
  GET DIAGNOSTICS gone = ROW_COUNT;
  INSERT INTO assessment_unit_count (assessment_id, grade, subject, units)
  SELECT f.assessment_id, f.grade, f.subject, f.units FROM assessment_unit_totals f
  WHERE NOT EXISTS (SELECT 1 FROM assessment_unit_count c
    WHERE (c.assessment_id, c.grade, c.subject) = (f.assessment_id, f.grade, f.subject));
  GET DIAGNOSTICS came = ROW_COUNT;
  IF gone + came > 0 THEN
    UPDATE assessment_unit_version SET version = version + 1;
  END IF;
  RETURN gone + came;
END;
$$;

CREATE FUNCTION assessment_unit_count_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM assessment_unit_count_refresh();
  RETURN NULL;
END;
$$;

-- Every input of assessment_unit, once per statement (a changed
-- description or position changes no count; those statements do not fire).
CREATE TRIGGER learning_objective_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF grade, subject, is_unit, active
  ON learning_objective FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_count_changed();
CREATE TRIGGER assessment_question_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF grade, subject, active
  ON assessment_question FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_count_changed();
CREATE TRIGGER unit_bundle_item_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF bundle_id, learning_objective_id, question_id
  ON unit_bundle_item FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_count_changed();
CREATE TRIGGER assessment_bundle_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE
  ON assessment_bundle FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_count_changed();
CREATE TRIGGER assessment_subject_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE
  ON assessment_subject FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_count_changed();
CREATE TRIGGER assessment_unit_count AFTER DELETE OR TRUNCATE OR UPDATE OF unit_type
  ON assessment FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_count_changed();

SELECT assessment_unit_count_refresh();
