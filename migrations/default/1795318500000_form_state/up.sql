-- A form's state, as ODK Central has it: OPEN forms are offered to
-- collectors (formList) and take submissions; CLOSING forms take
-- submissions but are no longer offered; CLOSED forms are not offered and
-- refuse submissions (FORM_CLOSED: the XML is kept, rejected, and put back
-- for processing when the form opens again). Changed only by the
-- setFormState action, which puts those submissions back in the same
-- transaction.
ALTER TABLE form ADD COLUMN state text NOT NULL DEFAULT 'OPEN' CHECK (state IN ('OPEN', 'CLOSING', 'CLOSED'));
COMMENT ON COLUMN form.state IS 'OPEN: listed, takes submissions; CLOSING: not listed, takes submissions; CLOSED: not listed, refuses them (FORM_CLOSED)';

-- The submissions a reopening puts back.
CREATE INDEX form_submission_form_closed ON form_submission (form_id)
  WHERE status = 'rejected' AND error_code = 'FORM_CLOSED';

-- A response inserted through Hasura (the nested insert) of a CLOSED form
-- is refused and nothing is stored: the app keeps what it collected. A
-- retried insert of what was stored before the closing is told it was
-- received, as a retry is at any time. Named to fire before
-- response_nested_insert (BEFORE triggers fire in name order).
CREATE FUNCTION response_form_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM form WHERE id = NEW.form_id AND state = 'CLOSED') THEN
    IF NEW.instance_id IS NOT NULL
       AND EXISTS (SELECT 1 FROM form_submission WHERE instance_id = NEW.instance_id AND status <> 'duplicate') THEN
      RAISE EXCEPTION 'instance_id: "%" was already received', NEW.instance_id USING ERRCODE = 'unique_violation';
    END IF;
    RAISE EXCEPTION 'form_id: form "%" is closed: it takes no more submissions', NEW.form_id
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER response_form_open BEFORE INSERT ON response
  FOR EACH ROW WHEN (NEW.submission_id IS NULL OR current_setting('hasura.user', true) <> '')
  EXECUTE FUNCTION response_form_open();
