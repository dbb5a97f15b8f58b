-- The progress counters and listing versions on the write paths the first
-- migration (1795316000000_assessment_progress) missed:
--
-- * TRUNCATE fires no row or transition-table triggers: truncating
--   results, TSP counts, class submissions or students now empties the
--   counters they fed and bumps the versions of the listings concerned.
-- * grade_mapping feeds "passed" of GRADE assessments (average points
--   against the top grade's): an edit recounts them and bumps their scopes.
-- * A recount (pass-rule edits) reads the rows committed before it, so
--   like result writes it runs at READ COMMITTED only.
-- * An assessment edit bumps its scopes' versions only when it changes
--   what a listing shows (not the SMS template, not a no-op update).

-- TRUNCATE: what fed the counters is gone.
CREATE FUNCTION assessment_progress_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_TABLE_NAME = 'assessment_result' THEN
    WITH emptied AS (
      UPDATE assessment_progress p SET students = 0, present = 0, absent = 0, scored = 0, passed = 0
      WHERE (p.students, p.present, p.absent, p.scored, p.passed) <> (0, 0, 0, 0, 0)
      RETURNING p.school_id, p.grade, p.section
    )
    UPDATE school_class c SET version = c.version + 1 FROM (SELECT DISTINCT * FROM emptied) e
    WHERE (c.school_id, c.grade, c.section) = (e.school_id, e.grade, e.section);
  ELSIF TG_TABLE_NAME = 'assessment_tsp' THEN
    WITH emptied AS (
      UPDATE assessment_progress p SET tsp_units = 0, tsp_present = 0, tsp_cleared = 0
      WHERE (p.tsp_units, p.tsp_present, p.tsp_cleared) <> (0, 0, 0)
      RETURNING p.school_id, p.grade, p.section
    )
    UPDATE school_class c SET version = c.version + 1 FROM (SELECT DISTINCT * FROM emptied) e
    WHERE (c.school_id, c.grade, c.section) = (e.school_id, e.grade, e.section);
  ELSIF TG_TABLE_NAME = 'assessment_class' THEN
    -- Which classes were final is gone with the rows (a final class need
    -- not have counters): every listing may have changed.
    UPDATE assessment_progress SET final = false WHERE final;
    UPDATE assessment_scope SET version = version + 1;
  ELSIF TG_TABLE_NAME = 'student' THEN
    UPDATE school_class c SET students = 0, version = c.version + 1 WHERE c.students <> 0;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER assessment_result_progress_truncate AFTER TRUNCATE ON assessment_result
  FOR EACH STATEMENT EXECUTE FUNCTION assessment_progress_truncated();
CREATE TRIGGER assessment_tsp_progress_truncate AFTER TRUNCATE ON assessment_tsp
  FOR EACH STATEMENT EXECUTE FUNCTION assessment_progress_truncated();
CREATE TRIGGER assessment_class_progress_truncate AFTER TRUNCATE ON assessment_class
  FOR EACH STATEMENT EXECUTE FUNCTION assessment_progress_truncated();
CREATE TRIGGER student_class_truncate AFTER TRUNCATE ON student
  FOR EACH STATEMENT EXECUTE FUNCTION assessment_progress_truncated();

-- Grade points: "passed" of every GRADE assessment depends on them.
CREATE FUNCTION grade_mapping_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  graded uuid[] := ARRAY(SELECT a.id FROM assessment a WHERE a.evaluation = 'GRADE' ORDER BY 1);
  a uuid;
BEGIN
  PERFORM assessment_scope_bump_for(graded);
  FOREACH a IN ARRAY graded LOOP
    PERFORM assessment_progress_rebuild(a);
  END LOOP;
  RETURN NULL;
END;
$$;
CREATE TRIGGER grade_mapping_progress AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON grade_mapping
  FOR EACH STATEMENT EXECUTE FUNCTION grade_mapping_progress();

-- A recount reads the rows committed before it took the assessment's
-- lock: at REPEATABLE READ it would read its older snapshot instead.
CREATE OR REPLACE FUNCTION assessment_progress_rebuild(for_assessment uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'assessment progress is recounted at READ COMMITTED (the recount reads the rows committed before it), not %',
      current_setting('transaction_isolation') USING ERRCODE = 'feature_not_supported';
  END IF;
  IF for_assessment IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(assessment_progress_lock_key(for_assessment));
  END IF;
  IF for_assessment IS NULL THEN
    DELETE FROM assessment_progress;
    INSERT INTO assessment_progress (assessment_id, school_id, grade, section, subject, students, present, absent, scored, passed,
                                     tsp_units, tsp_present, tsp_cleared, final)
    SELECT * FROM assessment_progress_recount;
  ELSE
    DELETE FROM assessment_progress p WHERE p.assessment_id = for_assessment;
    INSERT INTO assessment_progress (assessment_id, school_id, grade, section, subject, students, present, absent, scored, passed,
                                     tsp_units, tsp_present, tsp_cleared, final)
    SELECT * FROM assessment_progress_recount r WHERE r.assessment_id = for_assessment;
  END IF;
END;
$$;

-- Assessments: the scopes' versions move with what a listing shows of
-- them (progress.Assessment, and enabled: whether it is listed at all).
CREATE OR REPLACE FUNCTION assessment_listing_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  a uuid;
BEGIN
  PERFORM assessment_scope_bump_for(ARRAY(
    SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (n.name, n.type, n.academic_year, n.unit_type, n.evaluation, n.outcome, n.total_marks, n.pass_percent, n.enabled)
      IS DISTINCT FROM (o.name, o.type, o.academic_year, o.unit_type, o.evaluation, o.outcome, o.total_marks, o.pass_percent, o.enabled)));
  FOR a IN SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
           WHERE (n.evaluation, n.pass_percent, n.total_marks) IS DISTINCT FROM (o.evaluation, o.pass_percent, o.total_marks)
           ORDER BY 1 LOOP
    PERFORM assessment_progress_rebuild(a);
  END LOOP;
  RETURN NULL;
END;
$$;
