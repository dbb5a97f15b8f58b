-- As 1795316000000_assessment_progress left them.
CREATE OR REPLACE FUNCTION assessment_progress_add(d_assessment uuid, d_school uuid, d_grade smallint, d_section text, d_subject text,
  d_students int, d_present int, d_absent int, d_scored int, d_passed int, d_tsp_units int, d_tsp_present int, d_tsp_cleared int)
RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  UPDATE assessment_progress p SET students = p.students + d_students, present = p.present + d_present, absent = p.absent + d_absent,
    scored = p.scored + d_scored, passed = p.passed + d_passed, tsp_units = p.tsp_units + d_tsp_units,
    tsp_present = p.tsp_present + d_tsp_present, tsp_cleared = p.tsp_cleared + d_tsp_cleared
  WHERE p.school_id = d_school AND p.assessment_id = d_assessment AND p.grade = d_grade AND p.section = d_section AND p.subject = d_subject;
  IF NOT FOUND THEN
    INSERT INTO assessment_progress AS p (assessment_id, school_id, grade, section, subject, students, present, absent, scored, passed,
      tsp_units, tsp_present, tsp_cleared, final)
    VALUES (d_assessment, d_school, d_grade, d_section, d_subject, d_students, d_present, d_absent, d_scored, d_passed,
      d_tsp_units, d_tsp_present, d_tsp_cleared,
      EXISTS (SELECT 1 FROM assessment_class c WHERE c.assessment_id = d_assessment AND c.school_id = d_school
              AND c.grade = d_grade AND c.section = d_section AND c.final))
    ON CONFLICT (school_id, assessment_id, grade, section, subject) DO UPDATE SET
      students = p.students + EXCLUDED.students, present = p.present + EXCLUDED.present, absent = p.absent + EXCLUDED.absent,
      scored = p.scored + EXCLUDED.scored, passed = p.passed + EXCLUDED.passed, tsp_units = p.tsp_units + EXCLUDED.tsp_units,
      tsp_present = p.tsp_present + EXCLUDED.tsp_present, tsp_cleared = p.tsp_cleared + EXCLUDED.tsp_cleared;
  END IF;
  INSERT INTO school_class AS c (school_id, grade, section) VALUES (d_school, d_grade, d_section)
  ON CONFLICT (school_id, grade, section) DO UPDATE SET version = c.version + 1;
END;
$$;

CREATE OR REPLACE FUNCTION assessment_result_progress_apply(olds assessment_result[], news assessment_result[]) RETURNS void
LANGUAGE plpgsql
-- Its plans are cached once per session: re-planning the difference query
-- for every statement cost more than running it.
SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  change record;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'assessment results are written at READ COMMITTED (their progress counters read the rows committed before them), not %',
      current_setting('transaction_isolation') USING ERRCODE = 'feature_not_supported';
  END IF;
  PERFORM assessment_progress_share(ARRAY(SELECT x.assessment_id FROM unnest(olds || news) x));
  PERFORM count(pg_advisory_xact_lock(l.k))
  FROM (SELECT DISTINCT hashtextextended('assessment_student:' || x.assessment_id::text || ':' || x.student_id::text || ':' || x.subject, 0) AS k
        FROM unnest(olds || news) x ORDER BY 1) l;

  FOR change IN
    -- Per touched student, subject and class: the rows' counts and sums
    -- now (one index scan), less what the statement added and plus what
    -- it took away, give the state before; the states' differences are
    -- summed per class and subject.
    WITH net AS (
      SELECT c.assessment_id, c.school_id, c.student_id, c.subject, c.class_grade, c.class_section,
             sum(c.sign)::int AS n, sum(c.sign * c.present::int)::int AS n_present,
             sum(c.sign * (c.marks IS NOT NULL OR c.grade IS NOT NULL)::int)::int AS n_scored,
             sum(c.sign * coalesce(c.marks, 0)) AS marks, sum(c.sign * (c.marks IS NOT NULL)::int)::int AS n_marks,
             sum(c.sign * coalesce(g.value, 0)) AS points, sum(c.sign * (g.value IS NOT NULL)::int)::int AS n_points
      FROM (SELECT -1 AS sign, o.* FROM unnest(olds) o UNION ALL SELECT 1, n.* FROM unnest(news) n) c
      LEFT JOIN grade_mapping g ON g.letter = c.grade
      GROUP BY 1, 2, 3, 4, 5, 6
    ), states AS (
      SELECT k.assessment_id, k.school_id, k.class_grade AS grade, k.class_section AS section, k.subject,
             a.n > 0 AS a_has, a.n_present > 0 AS a_present, a.n_scored > 0 AS a_scored,
             CASE WHEN a.n_marks > 0 THEN a.marks END AS a_marks, CASE WHEN a.n_points > 0 THEN a.points / a.n_points END AS a_points,
             a.n - k.n > 0 AS b_has, a.n_present - k.n_present > 0 AS b_present, a.n_scored - k.n_scored > 0 AS b_scored,
             CASE WHEN a.n_marks - k.n_marks > 0 THEN a.marks - k.marks END AS b_marks,
             CASE WHEN a.n_points - k.n_points > 0 THEN (a.points - k.points) / (a.n_points - k.n_points) END AS b_points
      FROM net k CROSS JOIN LATERAL (
        SELECT count(*)::int AS n, count(*) FILTER (WHERE r.present)::int AS n_present,
               count(*) FILTER (WHERE r.marks IS NOT NULL OR r.grade IS NOT NULL)::int AS n_scored,
               coalesce(sum(r.marks), 0) AS marks, count(r.marks)::int AS n_marks,
               coalesce(sum(g.value), 0) AS points, count(g.value)::int AS n_points
        FROM assessment_result r LEFT JOIN grade_mapping g ON g.letter = r.grade
        WHERE r.assessment_id = k.assessment_id AND r.student_id = k.student_id AND r.subject = k.subject
          AND r.class_grade = k.class_grade AND r.class_section = k.class_section) a
    ), delta AS (
      SELECT s.assessment_id, s.school_id, s.grade, s.section, s.subject,
             sum(s.a_has::int - s.b_has::int)::int AS students,
             sum(s.a_present::int - s.b_present::int)::int AS present,
             sum((s.a_has AND NOT s.a_present)::int - (s.b_has AND NOT s.b_present)::int)::int AS absent,
             sum(s.a_scored::int - s.b_scored::int)::int AS scored,
             sum((s.a_present AND s.a_scored AND assessment_passes(p.evaluation, p.pass_percent, p.max_marks, p.top_points, s.a_marks, s.a_points))::int
               - (s.b_present AND s.b_scored AND assessment_passes(p.evaluation, p.pass_percent, p.max_marks, p.top_points, s.b_marks, s.b_points))::int)::int AS passed
      FROM states s JOIN assessment_pass_rule p ON p.assessment_id = s.assessment_id
      GROUP BY 1, 2, 3, 4, 5
    )
    SELECT * FROM delta d WHERE (d.students, d.present, d.absent, d.scored, d.passed) <> (0, 0, 0, 0, 0)
    ORDER BY d.school_id, d.assessment_id, d.grade, d.section, d.subject
  LOOP
    PERFORM assessment_progress_add(change.assessment_id, change.school_id, change.grade, change.section, change.subject,
      change.students, change.present, change.absent, change.scored, change.passed, 0, 0, 0);
  END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION assessment_tsp_progress_apply(olds assessment_tsp[], news assessment_tsp[]) RETURNS void
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
DECLARE
  change record;
BEGIN
  PERFORM assessment_progress_share(ARRAY(SELECT x.assessment_id FROM unnest(olds || news) x));
  FOR change IN
    SELECT c.assessment_id, c.school_id, c.grade, c.section, c.subject, sum(c.sign)::int AS units,
           sum(c.sign * c.students_present)::int AS present, sum(c.sign * c.students_cleared)::int AS cleared
    FROM (SELECT -1 AS sign, o.* FROM unnest(olds) o UNION ALL SELECT 1, n.* FROM unnest(news) n) c
    GROUP BY 1, 2, 3, 4, 5
    HAVING (sum(c.sign), sum(c.sign * c.students_present), sum(c.sign * c.students_cleared)) <> (0, 0, 0)
    ORDER BY 2, 1, 3, 4, 5
  LOOP
    PERFORM assessment_progress_add(change.assessment_id, change.school_id, change.grade, change.section, change.subject,
      0, 0, 0, 0, 0, change.units, change.present, change.cleared);
  END LOOP;
END;
$$;

DROP FUNCTION IF EXISTS school_class_bump(uuid[], smallint[], text[]);
