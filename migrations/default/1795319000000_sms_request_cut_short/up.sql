-- A request whose expansion was given up (it kept failing) after it had
-- queued some messages is finished with what was queued: the teacher must
-- read in its remarks that students after those were not messaged.
ALTER TABLE sms_request ADD COLUMN expansion_cut_short boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN sms_request.expansion_cut_short IS 'the expansion was given up before it reached every recipient; what it queued was sent';
