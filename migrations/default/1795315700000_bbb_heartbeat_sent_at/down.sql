ALTER TABLE bbb_server DROP COLUMN IF EXISTS heartbeat_sent_at;
