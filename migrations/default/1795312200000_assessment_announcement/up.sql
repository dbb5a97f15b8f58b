-- One result broadcast per class. When a class becomes final its results
-- are announced to the parents once, whoever asks: the
-- assessment_class_finalized event, a console "Invoke" of it (op MANUAL), a
-- redelivery under a new event id, or the sweep that finds final classes
-- whose event never came (Hasura down, finalised by plain SQL). The row is
-- the claim: inserted first (a concurrent announcer waits on its key, then
-- finds it taken), then the sms_request it points at, in one transaction.
CREATE TABLE assessment_announcement (
  assessment_id  uuid NOT NULL,
  school_id      uuid NOT NULL,
  grade          smallint NOT NULL,
  section        text NOT NULL,
  sms_request_id uuid UNIQUE REFERENCES sms_request (id),
  skipped        text CHECK (char_length(skipped) <= 200),
  announced_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (assessment_id, school_id, grade, section),
  FOREIGN KEY (assessment_id, school_id, grade, section) REFERENCES assessment_class ON DELETE CASCADE,
  CHECK (sms_request_id IS NULL OR skipped IS NULL)
);
COMMENT ON TABLE assessment_announcement IS 'The result broadcast of a final class: its sms_request, or why none was sent';
COMMENT ON COLUMN assessment_announcement.skipped IS 'Why no SMS was queued (the assessment has no SMS template, finalised before announcements were recorded)';

-- Classes finalised before announcements were recorded were announced (or
-- not) by the old trigger: they are not announced again.
INSERT INTO assessment_announcement (assessment_id, school_id, grade, section, skipped, announced_at)
SELECT assessment_id, school_id, grade, section, 'finalised before announcements were recorded', finalized_at
FROM assessment_class WHERE final;

-- The sweep's scan: recently finalised classes.
CREATE INDEX assessment_class_finalized ON assessment_class (finalized_at) WHERE final;
