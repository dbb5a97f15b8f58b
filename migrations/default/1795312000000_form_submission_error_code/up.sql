-- A rejected submission stores why as a code (the fault codes of the
-- README's Errors contract: UNKNOWN_FORM, INVALID_VALUE, INVALID_SUBMISSION,
-- DUPLICATE_INSTANCE, STALE_EDIT, FORBIDDEN, …) next to its errors. What
-- happens to it later is decided on the code: registering a form puts back
-- the submissions rejected with UNKNOWN_FORM for that version — before this,
-- on the wording of the first error's message.
ALTER TABLE form_submission ADD COLUMN error_code text CHECK (error_code ~ '^[A-Z][A-Z_]{0,49}$');
COMMENT ON COLUMN form_submission.error_code IS 'Why a rejected submission was rejected (README Errors contract); NULL unless rejected';

-- Rows rejected before codes were stored: the codes processing decides on
-- or that are unambiguous from the reason; REJECTED for the rest.
UPDATE form_submission SET error_code = CASE
    WHEN errors -> 0 ->> 'reason' LIKE 'form % is not registered' THEN 'UNKNOWN_FORM'
    WHEN errors -> 0 ->> 'path' LIKE '%/meta/instanceID' AND errors -> 0 ->> 'reason' LIKE '% with different content' THEN 'DUPLICATE_INSTANCE'
    WHEN errors -> 0 ->> 'path' LIKE '%/meta/deprecatedID' AND errors -> 0 ->> 'reason' LIKE '% was already replaced by %' THEN 'STALE_EDIT'
    ELSE 'REJECTED' END
  WHERE status = 'rejected';

-- A rejected submission has a code; no other has one.
ALTER TABLE form_submission ADD CONSTRAINT form_submission_rejected_code CHECK ((status = 'rejected') = (error_code IS NOT NULL));
