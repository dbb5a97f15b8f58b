DROP TRIGGER IF EXISTS grade_mapping_progress ON grade_mapping;
DROP FUNCTION IF EXISTS grade_mapping_progress();
DROP TRIGGER IF EXISTS assessment_result_progress_truncate ON assessment_result;
DROP TRIGGER IF EXISTS assessment_tsp_progress_truncate ON assessment_tsp;
DROP TRIGGER IF EXISTS assessment_class_progress_truncate ON assessment_class;
DROP TRIGGER IF EXISTS student_class_truncate ON student;
DROP FUNCTION IF EXISTS assessment_progress_truncated();

-- As 1795316000000_assessment_progress left them.
CREATE OR REPLACE FUNCTION assessment_progress_rebuild(for_assessment uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
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

CREATE OR REPLACE FUNCTION assessment_listing_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  a uuid;
BEGIN
  PERFORM assessment_scope_bump_for(ARRAY(SELECT n.id FROM new_rows n));
  FOR a IN SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
           WHERE (n.evaluation, n.pass_percent, n.total_marks) IS DISTINCT FROM (o.evaluation, o.pass_percent, o.total_marks)
           ORDER BY 1 LOOP
    PERFORM assessment_progress_rebuild(a);
  END LOOP;
  RETURN NULL;
END;
$$;
