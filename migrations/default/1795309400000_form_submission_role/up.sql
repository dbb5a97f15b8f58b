-- The Hasura role a submission came in with (set by Hasura from the session
-- on insert, by the submitForm action from its session). Assessment-builder
-- submissions create assessments, which only admin and state_admin may do:
-- the pipeline refuses builders whose role is any other. NULL means written
-- outside Hasura's permissions (admin secret, SQL, OpenRosa collectors, whom
-- an admin created).
ALTER TABLE form_submission ADD COLUMN submitted_role text CHECK (char_length(submitted_role) <= 100);
COMMENT ON COLUMN form_submission.submitted_role IS 'Hasura role of the submitter (x-hasura-role); NULL outside Hasura permissions';
