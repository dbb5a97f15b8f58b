-- When the bbb_alerts check last saw a firing alert naming the server: a
-- server the alerts disabled comes back only once its alerts have stayed
-- clear for a while, so a flapping alert does not toggle it every minute.
ALTER TABLE bbb_server ADD COLUMN alert_seen_at timestamptz;
COMMENT ON COLUMN bbb_server.alert_seen_at IS 'Last time the bbb_alerts check saw a firing alert naming this server';
