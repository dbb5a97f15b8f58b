-- The child's own result in the result SMS (EXAM_RESULT): when a class is
-- finalised for an assessment whose SMS template is EXAM_RESULT, each
-- parent gets their child's marks or grades per subject ({result}, filled
-- by shala per student from assessment_result), instead of only the news
-- that results are declared (EXAM_RESULT_ANNOUNCEMENT).
--
-- The template must be registered with DLT before it is used: it is
-- shipped disabled with a placeholder template id; the state admin sets the
-- registered id and enables it (update permission below).
ALTER TABLE sms_template DROP CONSTRAINT sms_template_type_check,
  ADD CONSTRAINT sms_template_type_check CHECK (type IN ('HOLIDAY', 'MEETING', 'EXAM_ANNOUNCEMENT', 'EXAM_RESULT_ANNOUNCEMENT',
    'EXAM_RESULT', 'ANNOUNCEMENT', 'HOMEWORK', 'SLR', 'RECEIPT', 'RULE_FLAG'));
ALTER TABLE sms_request DROP CONSTRAINT sms_request_type_check,
  ADD CONSTRAINT sms_request_type_check CHECK (type IN ('HOLIDAY', 'MEETING', 'EXAM_ANNOUNCEMENT', 'EXAM_RESULT_ANNOUNCEMENT',
    'EXAM_RESULT', 'ANNOUNCEMENT', 'HOMEWORK', 'SLR', 'RECEIPT', 'RULE_FLAG'));
INSERT INTO sms_template (type, language, body, dlt_template_id, enabled) VALUES
  ('EXAM_RESULT', 'hi', 'प्रिय अभिभावक, {student_name} ({class}) का {assessment} परीक्षा परिणाम: {result}। - समग्र शिक्षा हि.प्र.', '000000000000', false)
ON CONFLICT DO NOTHING;
