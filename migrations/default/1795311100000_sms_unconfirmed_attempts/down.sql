ALTER TABLE sms_message DROP CONSTRAINT IF EXISTS sms_message_unconfirmed_attempts_check;
ALTER TABLE sms_message DROP COLUMN IF EXISTS unconfirmed_attempts;
