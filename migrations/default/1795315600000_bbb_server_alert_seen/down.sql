ALTER TABLE bbb_server DROP COLUMN IF EXISTS alert_seen_at;
