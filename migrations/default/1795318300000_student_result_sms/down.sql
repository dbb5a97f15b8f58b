-- Going back loses the STUDENT_RESULT requests and their messages (the
-- type is gone). A template an operator gave {result} is switched off, not
-- edited: its text is what its DLT id was registered with.
UPDATE sms_template SET enabled = false WHERE body LIKE '%{result}%' AND type <> 'STUDENT_RESULT';
DELETE FROM sms_message WHERE request_id IN (SELECT id FROM sms_request WHERE type = 'STUDENT_RESULT');
UPDATE assessment_announcement SET sms_request_id = NULL WHERE sms_request_id IN (SELECT id FROM sms_request WHERE type = 'STUDENT_RESULT');
DELETE FROM sms_request WHERE type = 'STUDENT_RESULT';
DELETE FROM sms_template WHERE type = 'STUDENT_RESULT';
-- Those assessments announce their results as before the per-child results.
UPDATE assessment SET sms_template = 'EXAM_RESULT_ANNOUNCEMENT' WHERE sms_template = 'STUDENT_RESULT';
COMMENT ON COLUMN sms_template.body IS 'Text with {named} placeholders; student_name, class and school_name are filled by shala, the rest from the request''s variables';
ALTER TABLE sms_request DROP CONSTRAINT sms_request_result_has_assessment, DROP COLUMN assessment_id,
  DROP CONSTRAINT sms_request_type_check,
  ADD CONSTRAINT sms_request_type_check CHECK (type IN ('HOLIDAY', 'MEETING', 'EXAM_ANNOUNCEMENT', 'EXAM_RESULT_ANNOUNCEMENT',
    'ANNOUNCEMENT', 'HOMEWORK', 'SLR', 'RECEIPT', 'RULE_FLAG'));
ALTER TABLE sms_template DROP CONSTRAINT sms_template_type_check,
  ADD CONSTRAINT sms_template_type_check CHECK (type IN ('HOLIDAY', 'MEETING', 'EXAM_ANNOUNCEMENT', 'EXAM_RESULT_ANNOUNCEMENT',
    'ANNOUNCEMENT', 'HOMEWORK', 'SLR', 'RECEIPT', 'RULE_FLAG'));
