-- "k of n" in the school's listing: how many units (learning objectives,
-- units or questions: assessment_unit) each class and subject of an
-- assessment counts. The number is the same for every school, so it is kept
-- once, in assessment_unit_count, counted again when a transaction that
-- changed what assessment_unit shows (master data, bundles, an assessment's
-- subjects or unit type) commits; a change of any number gives
-- assessment_unit_version a new token, which every school's ETag includes.

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
  version bigint NOT NULL DEFAULT 0,
  token   uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO assessment_unit_version DEFAULT VALUES;
COMMENT ON TABLE assessment_unit_version IS 'One row: a new token (and version + 1) in the transaction of every change to assessment_unit_count; the token is part of every listing''s ETag and keys shala''s cache of the numbers (random, so a restored or failed-over database never gives old numbers a token seen before)';

CREATE VIEW assessment_unit_totals AS
SELECT assessment_id, grade, subject, count(*)::int AS units
FROM assessment_unit GROUP BY assessment_id, grade, subject;

-- Brings assessment_unit_count to what assessment_unit says now and
-- returns how many rows changed (the token changes when any did). Writers
-- go one at a time, each first updating the version row: at READ
-- COMMITTED the statements after it see everything committed before it got
-- the row, so two writers never both miss the other's change; at
-- REPEATABLE READ or SERIALIZABLE, where they would not see it, the
-- update fails with a serialization error and the transaction is retried.
CREATE FUNCTION assessment_unit_count_refresh() RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
  gone int;
  came int;
BEGIN
  UPDATE assessment_unit_version SET version = version WHERE id;
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
    UPDATE assessment_unit_version SET version = version + 1, token = gen_random_uuid() WHERE id;
  END IF;
  RETURN gone + came;
END;
$$;

-- The count runs once per transaction, when it commits: a statement that
-- changes an input queues the transaction here (once), and the deferred
-- trigger on the queue counts and takes the row out. Counting at commit
-- means the version row is the last lock a transaction takes — a builder
-- save holding its scopes' rows never waits for it while holding them and
-- another holder waits for those (a deadlock) — and a save that deletes
-- and writes back the same subjects changes no number and no ETag. A
-- statement after SET CONSTRAINTS … IMMEDIATE queues the transaction again.
CREATE TABLE assessment_unit_recount (
  txid bigint PRIMARY KEY DEFAULT txid_current()
);
COMMENT ON TABLE assessment_unit_recount IS 'Transactions that changed an input of assessment_unit, waiting to commit (empty outside them)';

CREATE FUNCTION assessment_unit_inputs_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO assessment_unit_recount DEFAULT VALUES ON CONFLICT DO NOTHING;
  RETURN NULL;
END;
$$;

CREATE FUNCTION assessment_unit_recount_at_commit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM assessment_unit_recount WHERE txid = NEW.txid;
  PERFORM assessment_unit_count_refresh();
  RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER assessment_unit_recount AFTER INSERT ON assessment_unit_recount
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION assessment_unit_recount_at_commit();

-- Every input of assessment_unit, once per statement (a changed
-- description, text or position changes no count; those statements do not
-- fire).
CREATE TRIGGER learning_objective_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF grade, subject, is_unit, active
  ON learning_objective FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_inputs_changed();
CREATE TRIGGER assessment_question_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF grade, subject, active
  ON assessment_question FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_inputs_changed();
CREATE TRIGGER unit_bundle_item_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF bundle_id, learning_objective_id, question_id
  ON unit_bundle_item FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_inputs_changed();
CREATE TRIGGER assessment_bundle_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE
  ON assessment_bundle FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_inputs_changed();
CREATE TRIGGER assessment_subject_unit_count AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE
  ON assessment_subject FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_inputs_changed();
CREATE TRIGGER assessment_unit_count AFTER DELETE OR TRUNCATE OR UPDATE OF unit_type
  ON assessment FOR EACH STATEMENT EXECUTE FUNCTION assessment_unit_inputs_changed();

SELECT assessment_unit_count_refresh();
