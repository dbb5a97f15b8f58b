-- Back to holding only finalising to the open-assessment rules.
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
