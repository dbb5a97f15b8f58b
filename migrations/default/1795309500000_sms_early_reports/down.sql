DROP TABLE IF EXISTS sms_report_early;
