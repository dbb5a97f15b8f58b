-- A student's link may be in a lesson on a few devices at once (2 by
-- default). Each device gets a slot, and the slot is in its BBB userID
-- (st-<student id>-<slot>), so getMeetingInfo tells which handed-out links
-- have arrived: a device in the meeting and a link still on its way count as
-- two sessions, and a slot whose device was seen in the meeting and left is
-- free again at once.
ALTER TABLE lesson_join
  ADD COLUMN slot smallint NOT NULL DEFAULT 1 CHECK (slot BETWEEN 1 AND 100),
  ADD COLUMN arrived_at timestamptz;
COMMENT ON COLUMN lesson_join.slot IS 'Which of the token''s sessions this link is: its BBB userID is st-<student id>-<slot>';
COMMENT ON COLUMN lesson_join.arrived_at IS 'When a later join saw this slot in the meeting (getMeetingInfo); null: maybe still on its way';
