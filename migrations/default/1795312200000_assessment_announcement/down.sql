DROP INDEX IF EXISTS assessment_class_finalized;
DROP TABLE IF EXISTS assessment_announcement;
