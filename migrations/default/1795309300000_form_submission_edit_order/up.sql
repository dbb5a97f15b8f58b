-- Versions of a submission that arrive out of order or at once (an edit
-- before its original, two edits of one version, an original and its edit
-- processed concurrently) are processed one at a time per instanceID: every
-- processing holds a transaction-level advisory lock on its instanceID, and
-- an edit also on the deprecatedID it replaces.

-- At most one live edit of any version: a second edit of the same version is
-- a stale branch (refused as STALE_EDIT by the pipeline; this is the
-- backstop). Also the index for "was this instanceID already replaced?".
CREATE UNIQUE INDEX form_submission_live_edit ON form_submission (deprecated_id)
  WHERE status = 'accepted' AND deprecated_id IS NOT NULL;

-- The fast path's claim on a new instanceID, taken in its one-round-trip
-- batch: the lock, and a refusal when an accepted edit already replaced this
-- instanceID (it is then an older version, which the general path records as
-- superseded).
CREATE FUNCTION form_submission_claim(instance text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended('form_submission:' || instance, 0));
  IF EXISTS (SELECT 1 FROM form_submission WHERE deprecated_id = instance AND status = 'accepted') THEN
    RAISE EXCEPTION 'instanceID % was already replaced by an edit', instance USING ERRCODE = 'unique_violation',
      CONSTRAINT = 'form_submission_live_edit';
  END IF;
  RETURN true;
END
$$;
