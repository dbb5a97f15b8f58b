-- The school's assessment home page at state scale: progress counters kept
-- in the same transaction as every write, and change versions that let a
-- school ask "has anything I list changed?" with one indexed read.
--
-- * assessment_progress: per (assessment, school, class, subject) the
--   students with a result, present, absent, with marks/grade entered and
--   passed, the class-level TSP counts, and whether the class is final.
--   Statement-level triggers with transition tables apply the difference
--   each write statement makes; nothing is recounted from results on read.
-- * assessment_school_progress: the per (assessment, school) totals, a view
--   summing a school's few counter rows.
-- * school_class: each class's active, enabled students (the denominator of
--   completion) and the class's change version. Every write that changes
--   what a school's listing shows bumps the version of the class it is
--   about, so a school's listing version is the sum of its classes'
--   versions: versions only grow, so the sum changes whenever any of them
--   does, whatever order transactions commit in. Writes of different
--   classes never touch the same row: no row per school that all its
--   teachers queue on.
-- * assessment_scope: a version per (district, session), bumped by every
--   change to the assessments open there (created, edited, enabled,
--   deadlines, classes and subjects, components).

CREATE TABLE school_class (
  school_id uuid NOT NULL REFERENCES school (id),
  grade     smallint NOT NULL REFERENCES grade (id),
  section   text NOT NULL REFERENCES section (id),
  students  int NOT NULL DEFAULT 0 CHECK (students >= 0),
  version   bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
  PRIMARY KEY (school_id, grade, section)
) WITH (fillfactor = 80);
COMMENT ON TABLE school_class IS 'A school''s class: its active, enabled students and the change version of what the school''s assessment listing shows about it; maintained by triggers';
COMMENT ON COLUMN school_class.students IS 'Active, enabled students in the class (no section counts as A)';
COMMENT ON COLUMN school_class.version IS 'Grows with every change to the class''s enrolment, progress or finalisation';

CREATE TABLE assessment_scope (
  district text NOT NULL,
  session  text NOT NULL CHECK (session IN ('W', 'S')),
  version  bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
  PRIMARY KEY (district, session)
);
COMMENT ON TABLE assessment_scope IS 'Change version of the assessments open to a district and session; maintained by triggers';

CREATE TABLE assessment_progress (
  assessment_id uuid NOT NULL REFERENCES assessment (id) ON DELETE CASCADE,
  school_id     uuid NOT NULL,
  grade         smallint NOT NULL,
  section       text NOT NULL,
  subject       text NOT NULL,
  students      int NOT NULL DEFAULT 0,
  present       int NOT NULL DEFAULT 0,
  absent        int NOT NULL DEFAULT 0,
  scored        int NOT NULL DEFAULT 0,
  passed        int NOT NULL DEFAULT 0,
  tsp_units     int NOT NULL DEFAULT 0,
  tsp_present   int NOT NULL DEFAULT 0,
  tsp_cleared   int NOT NULL DEFAULT 0,
  final         boolean NOT NULL DEFAULT false,
  PRIMARY KEY (school_id, assessment_id, grade, section, subject),
  -- What holds for true counts; a maintenance bug fails the write loudly
  -- instead of drifting silently.
  CONSTRAINT assessment_progress_consistent CHECK (
    students >= 0 AND present >= 0 AND absent >= 0 AND present + absent = students
    AND scored BETWEEN 0 AND present AND passed BETWEEN 0 AND scored
    AND tsp_units >= 0 AND tsp_present >= 0 AND tsp_cleared BETWEEN 0 AND tsp_present)
) WITH (fillfactor = 80);
CREATE INDEX assessment_progress_assessment ON assessment_progress (assessment_id);
-- A school's final classes, read by its listing in one range.
CREATE INDEX assessment_class_school_final ON assessment_class (school_id, assessment_id) WHERE final;
COMMENT ON TABLE assessment_progress IS 'Per (assessment, school, class, subject) progress, maintained in the same transaction as every result, TSP and finalisation write';
COMMENT ON COLUMN assessment_progress.students IS 'Students with a result in the subject (present or absent)';
COMMENT ON COLUMN assessment_progress.present IS 'Students present in at least one component';
COMMENT ON COLUMN assessment_progress.absent IS 'Students with results, absent in all of them';
COMMENT ON COLUMN assessment_progress.scored IS 'Students with marks or a grade entered';
COMMENT ON COLUMN assessment_progress.passed IS 'Students whose total marks (MARKS) or average grade points (GRADE) reach the assessment''s pass percentage';
COMMENT ON COLUMN assessment_progress.tsp_units IS 'Class-level TSP rows (learning outcomes, units or questions counted)';

-- The pass rule of each assessment: MARKS — the student's total marks reach
-- pass_percent of the assessment's total (or its components' maxima when it
-- has no total); GRADE — the average points of the student's grades reach
-- pass_percent of the top grade's points. No pass percentage: every student
-- with marks or a grade passes.
CREATE VIEW assessment_pass_rule AS
SELECT a.id AS assessment_id, a.evaluation, coalesce(a.pass_percent, 0) AS pass_percent,
       coalesce(a.total_marks, (SELECT sum(c.max_marks) FROM assessment_component c WHERE c.assessment_id = a.id)) AS max_marks,
       (SELECT max(g.value) FROM grade_mapping g) AS top_points
FROM assessment a;

CREATE FUNCTION assessment_passes(evaluation text, pass_percent numeric, max_marks numeric, top_points numeric,
                                  marks numeric, points numeric) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE evaluation
    WHEN 'MARKS' THEN marks IS NOT NULL AND marks * 100 >= pass_percent * coalesce(max_marks, 0)
    WHEN 'GRADE' THEN points IS NOT NULL AND points * 100 >= pass_percent * coalesce(top_points, 0)
    ELSE false END
$$;

-- The counts from scratch: the definition the triggers maintain
-- incrementally. Used to build the counters (migration, seed, an
-- assessment's pass rule edited) and by the check that compares them. A
-- filter on assessment_id or school_id reaches the base tables' indexes.
CREATE VIEW assessment_progress_recount AS
WITH per_student AS (
  SELECT r.assessment_id, r.school_id, r.class_grade AS grade, r.class_section AS section, r.subject, r.student_id,
         bool_or(r.present) AS present, bool_or(r.marks IS NOT NULL OR r.grade IS NOT NULL) AS scored,
         sum(r.marks) AS marks, avg(g.value) AS points
  FROM assessment_result r LEFT JOIN grade_mapping g ON g.letter = r.grade
  GROUP BY 1, 2, 3, 4, 5, 6
), counts AS (
  SELECT s.assessment_id, s.school_id, s.grade, s.section, s.subject,
         count(*)::int AS students, count(*) FILTER (WHERE s.present)::int AS present,
         count(*) FILTER (WHERE NOT s.present)::int AS absent, count(*) FILTER (WHERE s.scored)::int AS scored,
         count(*) FILTER (WHERE s.present AND s.scored
           AND assessment_passes(p.evaluation, p.pass_percent, p.max_marks, p.top_points, s.marks, s.points))::int AS passed,
         0 AS tsp_units, 0 AS tsp_present, 0 AS tsp_cleared
  FROM per_student s JOIN assessment_pass_rule p ON p.assessment_id = s.assessment_id
  GROUP BY 1, 2, 3, 4, 5
  UNION ALL
  SELECT t.assessment_id, t.school_id, t.grade, t.section, t.subject, 0, 0, 0, 0, 0,
         count(*)::int, sum(t.students_present)::int, sum(t.students_cleared)::int
  FROM assessment_tsp t
  GROUP BY 1, 2, 3, 4, 5
)
SELECT k.assessment_id, k.school_id, k.grade, k.section, k.subject,
       sum(k.students)::int AS students, sum(k.present)::int AS present, sum(k.absent)::int AS absent,
       sum(k.scored)::int AS scored, sum(k.passed)::int AS passed,
       sum(k.tsp_units)::int AS tsp_units, sum(k.tsp_present)::int AS tsp_present, sum(k.tsp_cleared)::int AS tsp_cleared,
       EXISTS (SELECT 1 FROM assessment_class c WHERE c.assessment_id = k.assessment_id AND c.school_id = k.school_id
               AND c.grade = k.grade AND c.section = k.section AND c.final) AS final
FROM counts k
GROUP BY k.assessment_id, k.school_id, k.grade, k.section, k.subject;

-- Locks. Counter writers (results, TSP, finalisation) share an
-- assessment's lock; rebuilding its counters takes it alone, so no write
-- lands between the rebuild's read and its counters.
CREATE FUNCTION assessment_progress_lock_key(assessment uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('assessment_progress:' || assessment::text, 0) $$;

CREATE FUNCTION assessment_progress_share(assessments uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  -- One statement, the locks taken in key order.
  PERFORM count(pg_advisory_xact_lock_shared(l.k))
  FROM (SELECT DISTINCT assessment_progress_lock_key(a) AS k FROM unnest(assessments) a ORDER BY 1) l;
END;
$$;

-- Rebuilds the counters of one assessment (NULL: all) from scratch.
CREATE FUNCTION assessment_progress_rebuild(for_assessment uuid) RETURNS void
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

-- Bumps the versions of (district, session) scopes.
CREATE FUNCTION assessment_scope_bump(districts text[], sessions text[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO assessment_scope AS s (district, session)
  SELECT DISTINCT d, x FROM unnest(districts, sessions) AS u (d, x) ORDER BY 1, 2
  ON CONFLICT (district, session) DO UPDATE SET version = s.version + 1
$$;

-- Bumps the scopes every deadline of the given assessments is in.
CREATE FUNCTION assessment_scope_bump_for(assessments uuid[]) RETURNS void
LANGUAGE sql AS $$
  SELECT assessment_scope_bump(array_agg(d.district), array_agg(d.session))
  FROM assessment_deadline d WHERE d.assessment_id = ANY (assessments)
  HAVING count(*) > 0
$$;

-- Adds a difference to one counter row (creating it) and gives its class a
-- new version. Existing rows are updated first: an upsert would check its
-- proposed row, a negative difference, against the table's CHECK.
CREATE FUNCTION assessment_progress_add(d_assessment uuid, d_school uuid, d_grade smallint, d_section text, d_subject text,
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

-- Results: what a statement changed, as the difference of each touched
-- student's state per (assessment, class, subject) before and after it.
-- A student's state in a subject spans their component rows, so the
-- statements touching one student's subject are taken one at a time (an
-- advisory lock per (assessment, student, subject)); at READ COMMITTED the
-- query after the lock sees every row committed before it.
CREATE FUNCTION assessment_result_progress_apply(olds assessment_result[], news assessment_result[]) RETURNS void
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

CREATE FUNCTION assessment_result_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM assessment_result_progress_apply('{}', ARRAY(SELECT n::assessment_result FROM new_rows n));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM assessment_result_progress_apply(ARRAY(SELECT o::assessment_result FROM old_rows o), ARRAY(SELECT n::assessment_result FROM new_rows n));
  ELSE
    PERFORM assessment_result_progress_apply(ARRAY(SELECT o::assessment_result FROM old_rows o), '{}');
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER assessment_result_progress_insert AFTER INSERT ON assessment_result
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_result_progress();
CREATE TRIGGER assessment_result_progress_update AFTER UPDATE ON assessment_result
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_result_progress();
CREATE TRIGGER assessment_result_progress_delete AFTER DELETE ON assessment_result
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_result_progress();

-- TSP counts: sums, so the difference is the new rows less the old.
CREATE FUNCTION assessment_tsp_progress_apply(olds assessment_tsp[], news assessment_tsp[]) RETURNS void
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

CREATE FUNCTION assessment_tsp_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM assessment_tsp_progress_apply('{}', ARRAY(SELECT n::assessment_tsp FROM new_rows n));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM assessment_tsp_progress_apply(ARRAY(SELECT o::assessment_tsp FROM old_rows o), ARRAY(SELECT n::assessment_tsp FROM new_rows n));
  ELSE
    PERFORM assessment_tsp_progress_apply(ARRAY(SELECT o::assessment_tsp FROM old_rows o), '{}');
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER assessment_tsp_progress_insert AFTER INSERT ON assessment_tsp
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_tsp_progress();
CREATE TRIGGER assessment_tsp_progress_update AFTER UPDATE ON assessment_tsp
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_tsp_progress();
CREATE TRIGGER assessment_tsp_progress_delete AFTER DELETE ON assessment_tsp
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_tsp_progress();

-- Finalisation: the class's counter rows carry its final flag.
CREATE FUNCTION assessment_class_progress_apply(olds assessment_class[], news assessment_class[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM assessment_progress_share(ARRAY(SELECT x.assessment_id FROM unnest(olds || news) x));
  WITH o AS (SELECT * FROM unnest(olds)), n AS (SELECT * FROM unnest(news)),
  flags AS (
    -- The class's final flag after the statement (false when its row went).
    SELECT coalesce(n.assessment_id, o.assessment_id) AS assessment_id, coalesce(n.school_id, o.school_id) AS school_id,
           coalesce(n.grade, o.grade) AS grade, coalesce(n.section, o.section) AS section, coalesce(n.final, false) AS final
    FROM o FULL JOIN n ON (o.assessment_id, o.school_id, o.grade, o.section) = (n.assessment_id, n.school_id, n.grade, n.section)
    WHERE coalesce(o.final, false) IS DISTINCT FROM coalesce(n.final, false)
  ), marked AS (
    UPDATE assessment_progress p SET final = f.final FROM flags f
    WHERE (p.school_id, p.assessment_id, p.grade, p.section) = (f.school_id, f.assessment_id, f.grade, f.section)
  )
  INSERT INTO school_class AS c (school_id, grade, section)
  SELECT DISTINCT f.school_id, f.grade, f.section FROM flags f ORDER BY 1, 2, 3
  ON CONFLICT (school_id, grade, section) DO UPDATE SET version = c.version + 1;
END;
$$;

CREATE FUNCTION assessment_class_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM assessment_class_progress_apply('{}', ARRAY(SELECT n::assessment_class FROM new_rows n));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM assessment_class_progress_apply(ARRAY(SELECT o::assessment_class FROM old_rows o), ARRAY(SELECT n::assessment_class FROM new_rows n));
  ELSE
    PERFORM assessment_class_progress_apply(ARRAY(SELECT o::assessment_class FROM old_rows o), '{}');
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER assessment_class_progress_insert AFTER INSERT ON assessment_class
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_class_progress();
CREATE TRIGGER assessment_class_progress_update AFTER UPDATE ON assessment_class
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_class_progress();
CREATE TRIGGER assessment_class_progress_delete AFTER DELETE ON assessment_class
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_class_progress();

-- Enrolment: active, enabled students per class; a student moved to
-- another class, leaving, disabled or registered changes two counts, one
-- or none. The statement's rows are counted per class first (a bulk
-- promotion is a few hundred classes, not a million rows).
CREATE FUNCTION student_class_apply(schools uuid[], grades smallint[], sections text[], deltas int[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  WITH delta AS (
    SELECT d.school_id, d.grade, d.section, sum(d.delta)::int AS students
    FROM unnest(schools, grades, sections, deltas) AS d (school_id, grade, section, delta)
    GROUP BY 1, 2, 3 HAVING sum(d.delta) <> 0
  ), upd AS (
    UPDATE school_class c SET students = c.students + d.students, version = c.version + 1
    FROM delta d WHERE (c.school_id, c.grade, c.section) = (d.school_id, d.grade, d.section)
    RETURNING c.school_id, c.grade, c.section
  )
  INSERT INTO school_class AS c (school_id, grade, section, students)
  SELECT d.school_id, d.grade, d.section, d.students FROM delta d
  WHERE NOT EXISTS (SELECT 1 FROM upd u WHERE (u.school_id, u.grade, u.section) = (d.school_id, d.grade, d.section))
  ORDER BY 1, 2, 3
  ON CONFLICT (school_id, grade, section) DO UPDATE SET students = c.students + EXCLUDED.students, version = c.version + 1;
END;
$$;

CREATE FUNCTION student_class_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  d record;
BEGIN
  IF TG_OP = 'INSERT' THEN
    SELECT array_agg(x.school_id) AS s, array_agg(x.grade) AS g, array_agg(x.section) AS c, array_agg(x.n) AS n INTO d
    FROM (SELECT school_id, grade, coalesce(section, 'A') AS section, count(*)::int AS n FROM new_rows
          WHERE status = 'ACTIVE' AND enabled GROUP BY 1, 2, 3) x;
  ELSIF TG_OP = 'UPDATE' THEN
    SELECT array_agg(x.school_id) AS s, array_agg(x.grade) AS g, array_agg(x.section) AS c, array_agg(x.n) AS n INTO d
    FROM (SELECT school_id, grade, section, sum(n)::int AS n FROM (
            SELECT school_id, grade, coalesce(section, 'A') AS section, -1 AS n FROM old_rows WHERE status = 'ACTIVE' AND enabled
            UNION ALL
            SELECT school_id, grade, coalesce(section, 'A'), 1 FROM new_rows WHERE status = 'ACTIVE' AND enabled) u
          GROUP BY 1, 2, 3 HAVING sum(n) <> 0) x;
  ELSE
    SELECT array_agg(x.school_id) AS s, array_agg(x.grade) AS g, array_agg(x.section) AS c, array_agg(x.n) AS n INTO d
    FROM (SELECT school_id, grade, coalesce(section, 'A') AS section, -count(*)::int AS n FROM old_rows
          WHERE status = 'ACTIVE' AND enabled GROUP BY 1, 2, 3) x;
  END IF;
  IF d.s IS NOT NULL THEN
    PERFORM student_class_apply(d.s, d.g, d.c, d.n);
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER student_class_insert AFTER INSERT ON student
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION student_class_progress();
CREATE TRIGGER student_class_update AFTER UPDATE ON student
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION student_class_progress();
CREATE TRIGGER student_class_delete AFTER DELETE ON student
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION student_class_progress();

-- Assessments: any change bumps the scopes they are open in; a change to
-- the pass rule (evaluation, pass percentage, total) rebuilds the
-- assessment's counters, since "passed" depends on it.
CREATE FUNCTION assessment_listing_change() RETURNS trigger
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
CREATE TRIGGER assessment_listing_update AFTER UPDATE ON assessment
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_listing_change();

CREATE FUNCTION assessment_deadline_listing_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM assessment_scope_bump(ARRAY(SELECT o.district FROM old_rows o), ARRAY(SELECT o.session FROM old_rows o));
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM assessment_scope_bump(ARRAY(SELECT n.district FROM new_rows n), ARRAY(SELECT n.session FROM new_rows n));
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER assessment_deadline_listing_insert AFTER INSERT ON assessment_deadline
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_deadline_listing_change();
CREATE TRIGGER assessment_deadline_listing_update AFTER UPDATE ON assessment_deadline
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_deadline_listing_change();
CREATE TRIGGER assessment_deadline_listing_delete AFTER DELETE ON assessment_deadline
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_deadline_listing_change();

-- Subjects and components: the scopes of the assessment they belong to;
-- components also make the pass rule when the assessment has no total.
CREATE FUNCTION assessment_part_listing_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  ids uuid[];
  a uuid;
BEGIN
  IF TG_OP = 'INSERT' THEN
    ids := ARRAY(SELECT DISTINCT n.assessment_id FROM new_rows n);
  ELSIF TG_OP = 'UPDATE' THEN
    ids := ARRAY(SELECT n.assessment_id FROM new_rows n UNION SELECT o.assessment_id FROM old_rows o);
  ELSE
    ids := ARRAY(SELECT DISTINCT o.assessment_id FROM old_rows o);
  END IF;
  PERFORM assessment_scope_bump_for(ids);
  IF TG_TABLE_NAME = 'assessment_component' THEN
    FOR a IN SELECT x.id FROM assessment x WHERE x.id = ANY (ids) AND x.total_marks IS NULL ORDER BY 1 LOOP
      PERFORM assessment_progress_rebuild(a);
    END LOOP;
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER assessment_subject_listing_insert AFTER INSERT ON assessment_subject
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_part_listing_change();
CREATE TRIGGER assessment_subject_listing_update AFTER UPDATE ON assessment_subject
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_part_listing_change();
CREATE TRIGGER assessment_subject_listing_delete AFTER DELETE ON assessment_subject
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_part_listing_change();
CREATE TRIGGER assessment_component_listing_insert AFTER INSERT ON assessment_component
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_part_listing_change();
CREATE TRIGGER assessment_component_listing_update AFTER UPDATE ON assessment_component
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_part_listing_change();
CREATE TRIGGER assessment_component_listing_delete AFTER DELETE ON assessment_component
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION assessment_part_listing_change();

-- The per (assessment, school) totals: a school's few counter rows summed
-- (never its results).
CREATE VIEW assessment_school_progress AS
SELECT p.assessment_id, p.school_id,
       count(DISTINCT (p.grade, p.section))::int AS classes,
       (SELECT count(*) FROM assessment_class c WHERE c.assessment_id = p.assessment_id AND c.school_id = p.school_id AND c.final)::int AS final_classes,
       sum(p.students)::int AS students, sum(p.present)::int AS present, sum(p.absent)::int AS absent,
       sum(p.scored)::int AS scored, sum(p.passed)::int AS passed,
       sum(p.tsp_units)::int AS tsp_units, sum(p.tsp_present)::int AS tsp_present, sum(p.tsp_cleared)::int AS tsp_cleared
FROM assessment_progress p
GROUP BY p.assessment_id, p.school_id;
COMMENT ON VIEW assessment_school_progress IS 'Per (assessment, school) totals of assessment_progress; students etc. count student-subjects';

-- What is there already.
INSERT INTO school_class (school_id, grade, section, students)
SELECT school_id, grade, coalesce(section, 'A'), count(*) FROM student WHERE status = 'ACTIVE' AND enabled GROUP BY 1, 2, 3;
SELECT assessment_progress_rebuild(NULL);
INSERT INTO school_class (school_id, grade, section)
SELECT DISTINCT school_id, grade, section FROM assessment_progress ON CONFLICT DO NOTHING;
INSERT INTO assessment_scope (district, session) SELECT DISTINCT district, session FROM assessment_deadline;
