DROP TRIGGER IF EXISTS assessment_subject_listing_truncate ON assessment_subject;
DROP TRIGGER IF EXISTS assessment_deadline_listing_truncate ON assessment_deadline;
DROP FUNCTION IF EXISTS assessment_scope_truncated();
