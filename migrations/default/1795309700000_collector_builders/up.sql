-- Assessment builders create assessments. Through OpenRosa (Enketo, ODK
-- Collect) only collectors an admin marked for it may submit them.
ALTER TABLE collector ADD COLUMN builds_assessments boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN collector.builds_assessments IS 'May submit assessment-builder forms (admins filling the builder in Enketo)';
