-- The node's own timestamp of the last heartbeat shala accepted from it: a
-- heartbeat must be newer, so a captured body replayed within the 5-minute
-- window (or one arriving out of order) neither refreshes a dead server's
-- last_heartbeat_at nor overwrites newer load figures.
ALTER TABLE bbb_server ADD COLUMN heartbeat_sent_at timestamptz;
COMMENT ON COLUMN bbb_server.heartbeat_sent_at IS 'timestamp of the last accepted heartbeat, as the node sent it; a heartbeat must be newer';
