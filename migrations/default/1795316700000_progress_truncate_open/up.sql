-- TRUNCATE of the deadlines or of the assessments' subjects changes what
-- the listings of every (district, session) they were open to show (the
-- assessments, classes and subjects listed) and fires no row trigger, so
-- 1795316000000_assessment_progress bumped no version for it: an app
-- holding the old listing was told nothing changed. The rows no longer
-- say which scopes they were in: every scope's version moves.
-- (Components feed no listing field but the pass rule, and cannot be
-- truncated without the results that reference them, whose own TRUNCATE
-- trigger empties their counters.)
CREATE FUNCTION assessment_scope_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE assessment_scope SET version = version + 1;
  RETURN NULL;
END;
$$;
CREATE TRIGGER assessment_deadline_listing_truncate AFTER TRUNCATE ON assessment_deadline
  FOR EACH STATEMENT EXECUTE FUNCTION assessment_scope_truncated();
CREATE TRIGGER assessment_subject_listing_truncate AFTER TRUNCATE ON assessment_subject
  FOR EACH STATEMENT EXECUTE FUNCTION assessment_scope_truncated();
