ALTER TABLE sms_request DROP COLUMN expansion_cut_short;
