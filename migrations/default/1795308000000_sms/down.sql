DROP INDEX IF EXISTS student_school_phone;
DROP TABLE IF EXISTS sms_message;
DROP TABLE IF EXISTS sms_request;
DROP TABLE IF EXISTS sms_template;
