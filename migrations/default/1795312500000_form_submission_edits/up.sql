-- Every edit by the version it names, whatever became of it: "was this
-- refused version already stood in for by an accepted edit (live or
-- replaced since)?" is asked of every edit of a refused version, and the
-- unique index of live edits covers only accepted ones.
CREATE INDEX form_submission_edit_of ON form_submission (deprecated_id) WHERE deprecated_id IS NOT NULL;
