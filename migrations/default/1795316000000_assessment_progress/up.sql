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
-- assessment's pass rule edited) and by the check that compares them.
-- assessment NULL: every assessment.
CREATE FUNCTION assessment_progress_count(for_assessment uuid)
RETURNS TABLE (assessment_id uuid, school_id uuid, grade smallint, section text, subject text,
               students int, present int, absent int, scored int, passed int,
               tsp_units int, tsp_present int, tsp_cleared int, final boolean)
LANGUAGE sql STABLE AS $$
  WITH per_student AS (
    SELECT r.assessment_id, r.school_id, r.class_grade AS grade, r.class_section AS section, r.subject, r.student_id,
           bool_or(r.present) AS present, bool_or(r.marks IS NOT NULL OR r.grade IS NOT NULL) AS scored,
           sum(r.marks) AS marks, avg(g.value) AS points
    FROM assessment_result r LEFT JOIN grade_mapping g ON g.letter = r.grade
    WHERE for_assessment IS NULL OR r.assessment_id = for_assessment
    GROUP BY 1, 2, 3, 4, 5, 6
  ), results AS (
    SELECT s.assessment_id, s.school_id, s.grade, s.section, s.subject,
           count(*)::int AS students, count(*) FILTER (WHERE s.present)::int AS present,
           count(*) FILTER (WHERE NOT s.present)::int AS absent, count(*) FILTER (WHERE s.scored)::int AS scored,
           count(*) FILTER (WHERE s.present AND s.scored
             AND assessment_passes(p.evaluation, p.pass_percent, p.max_marks, p.top_points, s.marks, s.points))::int AS passed
    FROM per_student s JOIN assessment_pass_rule p ON p.assessment_id = s.assessment_id
    GROUP BY 1, 2, 3, 4, 5
  ), tsp AS (
    SELECT t.assessment_id, t.school_id, t.grade, t.section, t.subject, count(*)::int AS units,
           sum(t.students_present)::int AS present, sum(t.students_cleared)::int AS cleared
    FROM assessment_tsp t
    WHERE for_assessment IS NULL OR t.assessment_id = for_assessment
    GROUP BY 1, 2, 3, 4, 5
  )
  SELECT k.assessment_id, k.school_id, k.grade, k.section, k.subject,
         coalesce(r.students, 0), coalesce(r.present, 0), coalesce(r.absent, 0), coalesce(r.scored, 0), coalesce(r.passed, 0),
         coalesce(t.units, 0), coalesce(t.present, 0), coalesce(t.cleared, 0),
         EXISTS (SELECT 1 FROM assessment_class c WHERE c.assessment_id = k.assessment_id AND c.school_id = k.school_id
                 AND c.grade = k.grade AND c.section = k.section AND c.final)
  FROM (SELECT assessment_id, school_id, grade, section, subject FROM results
        UNION SELECT assessment_id, school_id, grade, section, subject FROM tsp) k
  LEFT JOIN results r ON (r.assessment_id, r.school_id, r.grade, r.section, r.subject) = (k.assessment_id, k.school_id, k.grade, k.section, k.subject)
  LEFT JOIN tsp t ON (t.assessment_id, t.school_id, t.grade, t.section, t.subject) = (k.assessment_id, k.school_id, k.grade, k.section, k.subject)
$$;

-- Locks. Counter writers (results, TSP, finalisation) share an
-- assessment's lock; rebuilding its counters takes it alone, so no write
-- lands between the rebuild's read and its counters.
CREATE FUNCTION assessment_progress_lock_key(assessment uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT hashtextextended('assessment_progress:' || assessment, 0) $$;

CREATE FUNCTION assessment_progress_share(assessments uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  lock_key bigint;
BEGIN
  FOR lock_key IN SELECT DISTINCT assessment_progress_lock_key(a) FROM unnest(assessments) a ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock_shared(lock_key);
  END LOOP;
END;
$$;

-- Rebuilds the counters of one assessment (NULL: all) from scratch.
CREATE FUNCTION assessment_progress_rebuild(for_assessment uuid) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF for_assessment IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(assessment_progress_lock_key(for_assessment));
  END IF;
  DELETE FROM assessment_progress p WHERE for_assessment IS NULL OR p.assessment_id = for_assessment;
  INSERT INTO assessment_progress (assessment_id, school_id, grade, section, subject, students, present, absent, scored, passed,
                                   tsp_units, tsp_present, tsp_cleared, final)
  SELECT * FROM assessment_progress_count(for_assessment);
END;
$$;

-- Bumps the versions of classes (school, grade, section), creating rows for
-- classes that have none yet (results of a class whose students have all
-- moved on).
CREATE FUNCTION school_class_bump(schools uuid[], grades smallint[], sections text[]) RETURNS void
LANGUAGE sql AS $$
  INSERT INTO school_class AS c (school_id, grade, section)
  SELECT DISTINCT s, g, x FROM unnest(schools, grades, sections) AS u (s, g, x) ORDER BY 1, 2, 3
  ON CONFLICT (school_id, grade, section) DO UPDATE SET version = c.version + 1
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

-- Results: what a statement changed, as the difference of each touched
-- student's state per (assessment, class, subject) before and after it.
-- A student's state in a subject spans their component rows, so the
-- statements touching one student's subject are taken one at a time (an
-- advisory lock per (assessment, student, subject)); at READ COMMITTED the
-- query after the lock sees every row committed before it.
CREATE FUNCTION assessment_result_progress_apply(olds assessment_result[], news assessment_result[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  lock_key bigint;
  changed record;
BEGIN
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'assessment results are written at READ COMMITTED (their progress counters read the rows committed before them), not %',
      current_setting('transaction_isolation') USING ERRCODE = 'feature_not_supported';
  END IF;
  PERFORM assessment_progress_share(ARRAY(SELECT x.assessment_id FROM unnest(olds || news) x));
  FOR lock_key IN SELECT DISTINCT hashtextextended('assessment_student:' || x.assessment_id || ':' || x.student_id || ':' || x.subject, 0)
           FROM unnest(olds || news) x ORDER BY 1 LOOP
    PERFORM pg_advisory_xact_lock(lock_key);
  END LOOP;

  WITH chg AS (
    SELECT false AS is_new, o.* FROM unnest(olds) o
    UNION ALL
    SELECT true, n.* FROM unnest(news) n
  ), keys AS (
    SELECT DISTINCT assessment_id, school_id, student_id, subject, class_grade, class_section FROM chg
  ), cur AS (
    SELECT r.id, r.assessment_id, r.school_id, r.student_id, r.subject, r.class_grade, r.class_section, r.present, r.marks, r.grade
    FROM keys k JOIN assessment_result r ON r.assessment_id = k.assessment_id AND r.student_id = k.student_id AND r.subject = k.subject
      AND r.class_grade = k.class_grade AND r.class_section = k.class_section
  ), states AS (
    -- after: the rows now; before: the rows now less what the statement
    -- wrote, plus what it replaced or deleted.
    SELECT 1 AS sign, c.* FROM cur c
    UNION ALL
    SELECT -1, c.* FROM cur c WHERE NOT EXISTS (SELECT 1 FROM chg WHERE chg.is_new AND chg.id = c.id)
    UNION ALL
    SELECT -1, o.id, o.assessment_id, o.school_id, o.student_id, o.subject, o.class_grade, o.class_section, o.present, o.marks, o.grade
    FROM chg o WHERE NOT o.is_new
  ), per_student AS (
    SELECT s.sign, s.assessment_id, s.school_id, s.student_id, s.subject, s.class_grade, s.class_section,
           bool_or(s.present) AS present, bool_or(s.marks IS NOT NULL OR s.grade IS NOT NULL) AS scored,
           sum(s.marks) AS marks, avg(g.value) AS points
    FROM states s LEFT JOIN grade_mapping g ON g.letter = s.grade
    GROUP BY 1, 2, 3, 4, 5, 6, 7
  ), delta AS (
    SELECT s.assessment_id, s.school_id, s.class_grade AS grade, s.class_section AS section, s.subject,
           sum(s.sign)::int AS students,
           coalesce(sum(s.sign) FILTER (WHERE s.present), 0)::int AS present,
           coalesce(sum(s.sign) FILTER (WHERE NOT s.present), 0)::int AS absent,
           coalesce(sum(s.sign) FILTER (WHERE s.scored), 0)::int AS scored,
           coalesce(sum(s.sign) FILTER (WHERE s.present AND s.scored
             AND assessment_passes(p.evaluation, p.pass_percent, p.max_marks, p.top_points, s.marks, s.points)), 0)::int AS passed
    FROM per_student s JOIN assessment_pass_rule p ON p.assessment_id = s.assessment_id
    GROUP BY 1, 2, 3, 4, 5
  ), nonzero AS (
    SELECT * FROM delta d WHERE (d.students, d.present, d.absent, d.scored, d.passed) <> (0, 0, 0, 0, 0)
  ), upd AS (
    -- Existing counters first: an upsert would check its proposed row
    -- (a negative difference) against the table's CHECK.
    UPDATE assessment_progress p SET students = p.students + d.students, present = p.present + d.present,
      absent = p.absent + d.absent, scored = p.scored + d.scored, passed = p.passed + d.passed
    FROM nonzero d
    WHERE (p.school_id, p.assessment_id, p.grade, p.section, p.subject) = (d.school_id, d.assessment_id, d.grade, d.section, d.subject)
    RETURNING p.school_id, p.assessment_id, p.grade, p.section, p.subject
  ), ins AS (
    INSERT INTO assessment_progress AS p (assessment_id, school_id, grade, section, subject, students, present, absent, scored, passed, final)
    SELECT d.assessment_id, d.school_id, d.grade, d.section, d.subject, d.students, d.present, d.absent, d.scored, d.passed,
           EXISTS (SELECT 1 FROM assessment_class c WHERE c.assessment_id = d.assessment_id AND c.school_id = d.school_id
                   AND c.grade = d.grade AND c.section = d.section AND c.final)
    FROM nonzero d
    WHERE NOT EXISTS (SELECT 1 FROM upd u WHERE (u.school_id, u.assessment_id, u.grade, u.section, u.subject) = (d.school_id, d.assessment_id, d.grade, d.section, d.subject))
    ORDER BY d.school_id, d.assessment_id, d.grade, d.section, d.subject
    ON CONFLICT (school_id, assessment_id, grade, section, subject) DO UPDATE SET
      students = p.students + EXCLUDED.students, present = p.present + EXCLUDED.present, absent = p.absent + EXCLUDED.absent,
      scored = p.scored + EXCLUDED.scored, passed = p.passed + EXCLUDED.passed
    RETURNING p.school_id, p.assessment_id, p.grade, p.section, p.subject
  ), applied AS (
    SELECT * FROM upd UNION ALL SELECT * FROM ins
  )
  SELECT array_agg(school_id) AS schools, array_agg(grade) AS grades, array_agg(section) AS sections INTO changed FROM applied;
  IF changed.schools IS NOT NULL THEN
    PERFORM school_class_bump(changed.schools, changed.grades, changed.sections);
  END IF;
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
LANGUAGE plpgsql AS $$
DECLARE
  changed record;
BEGIN
  PERFORM assessment_progress_share(ARRAY(SELECT x.assessment_id FROM unnest(olds || news) x));
  WITH chg AS (
    SELECT -1 AS sign, o.* FROM unnest(olds) o
    UNION ALL
    SELECT 1, n.* FROM unnest(news) n
  ), delta AS (
    SELECT c.assessment_id, c.school_id, c.grade, c.section, c.subject, sum(c.sign)::int AS units,
           sum(c.sign * c.students_present)::int AS present, sum(c.sign * c.students_cleared)::int AS cleared
    FROM chg c GROUP BY 1, 2, 3, 4, 5
  ), nonzero AS (
    SELECT * FROM delta d WHERE (d.units, d.present, d.cleared) <> (0, 0, 0)
  ), upd AS (
    UPDATE assessment_progress p SET tsp_units = p.tsp_units + d.units, tsp_present = p.tsp_present + d.present,
      tsp_cleared = p.tsp_cleared + d.cleared
    FROM nonzero d
    WHERE (p.school_id, p.assessment_id, p.grade, p.section, p.subject) = (d.school_id, d.assessment_id, d.grade, d.section, d.subject)
    RETURNING p.school_id, p.assessment_id, p.grade, p.section, p.subject
  ), ins AS (
    INSERT INTO assessment_progress AS p (assessment_id, school_id, grade, section, subject, tsp_units, tsp_present, tsp_cleared, final)
    SELECT d.assessment_id, d.school_id, d.grade, d.section, d.subject, d.units, d.present, d.cleared,
           EXISTS (SELECT 1 FROM assessment_class c WHERE c.assessment_id = d.assessment_id AND c.school_id = d.school_id
                   AND c.grade = d.grade AND c.section = d.section AND c.final)
    FROM nonzero d
    WHERE NOT EXISTS (SELECT 1 FROM upd u WHERE (u.school_id, u.assessment_id, u.grade, u.section, u.subject) = (d.school_id, d.assessment_id, d.grade, d.section, d.subject))
    ORDER BY d.school_id, d.assessment_id, d.grade, d.section, d.subject
    ON CONFLICT (school_id, assessment_id, grade, section, subject) DO UPDATE SET
      tsp_units = p.tsp_units + EXCLUDED.tsp_units, tsp_present = p.tsp_present + EXCLUDED.tsp_present,
      tsp_cleared = p.tsp_cleared + EXCLUDED.tsp_cleared
    RETURNING p.school_id, p.assessment_id, p.grade, p.section, p.subject
  ), applied AS (
    SELECT * FROM upd UNION ALL SELECT * FROM ins
  )
  SELECT array_agg(school_id) AS schools, array_agg(grade) AS grades, array_agg(section) AS sections INTO changed FROM applied;
  IF changed.schools IS NOT NULL THEN
    PERFORM school_class_bump(changed.schools, changed.grades, changed.sections);
  END IF;
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
DECLARE
  changed record;
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
  SELECT array_agg(school_id) AS schools, array_agg(grade) AS grades, array_agg(section) AS sections INTO changed FROM flags;
  IF changed.schools IS NOT NULL THEN
    PERFORM school_class_bump(changed.schools, changed.grades, changed.sections);
  END IF;
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
-- or none.
CREATE FUNCTION student_class_apply(olds student[], news student[]) RETURNS void
LANGUAGE sql AS $$
  WITH delta AS (
    SELECT x.school_id, x.grade, x.section, sum(x.d)::int AS students
    FROM (SELECT o.school_id, o.grade, coalesce(o.section, 'A') AS section, -1 AS d FROM unnest(olds) o
          WHERE o.status = 'ACTIVE' AND o.enabled
          UNION ALL
          SELECT n.school_id, n.grade, coalesce(n.section, 'A'), 1 FROM unnest(news) n
          WHERE n.status = 'ACTIVE' AND n.enabled) x
    GROUP BY 1, 2, 3 HAVING sum(x.d) <> 0
  ), upd AS (
    UPDATE school_class c SET students = c.students + d.students, version = c.version + 1
    FROM delta d WHERE (c.school_id, c.grade, c.section) = (d.school_id, d.grade, d.section)
    RETURNING c.school_id, c.grade, c.section
  )
  INSERT INTO school_class AS c (school_id, grade, section, students)
  SELECT d.school_id, d.grade, d.section, d.students FROM delta d
  WHERE NOT EXISTS (SELECT 1 FROM upd u WHERE (u.school_id, u.grade, u.section) = (d.school_id, d.grade, d.section))
  ORDER BY 1, 2, 3
  ON CONFLICT (school_id, grade, section) DO UPDATE SET students = c.students + EXCLUDED.students, version = c.version + 1
$$;

CREATE FUNCTION student_class_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM student_class_apply('{}', ARRAY(SELECT n::student FROM new_rows n));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM student_class_apply(ARRAY(SELECT o::student FROM old_rows o), ARRAY(SELECT n::student FROM new_rows n));
  ELSE
    PERFORM student_class_apply(ARRAY(SELECT o::student FROM old_rows o), '{}');
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
