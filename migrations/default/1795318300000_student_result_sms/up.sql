-- The child's own result in the result SMS. A request may name the
-- assessment it announces (assessment.Announce always does); a template
-- with the {result} placeholder then gets, per message, each child's result
-- in that assessment, read by shala from assessment_result when the
-- expansion renders the message. STUDENT_RESULT is a template made for it.

ALTER TABLE sms_template DROP CONSTRAINT sms_template_type_check,
  ADD CONSTRAINT sms_template_type_check CHECK (type IN ('HOLIDAY', 'MEETING', 'EXAM_ANNOUNCEMENT', 'EXAM_RESULT_ANNOUNCEMENT',
    'ANNOUNCEMENT', 'HOMEWORK', 'SLR', 'RECEIPT', 'RULE_FLAG', 'STUDENT_RESULT'));

ALTER TABLE sms_request DROP CONSTRAINT sms_request_type_check,
  ADD CONSTRAINT sms_request_type_check CHECK (type IN ('HOLIDAY', 'MEETING', 'EXAM_ANNOUNCEMENT', 'EXAM_RESULT_ANNOUNCEMENT',
    'ANNOUNCEMENT', 'HOMEWORK', 'SLR', 'RECEIPT', 'RULE_FLAG', 'STUDENT_RESULT')),
  ADD COLUMN assessment_id uuid REFERENCES assessment (id),
  -- A result needs its assessment and the school's students (not a list
  -- of phones): results are read per student, within the school.
  ADD CONSTRAINT sms_request_result_has_assessment CHECK (
    type <> 'STUDENT_RESULT' OR (assessment_id IS NOT NULL AND school_id IS NOT NULL AND phones IS NULL));
COMMENT ON COLUMN sms_request.assessment_id IS 'The assessment whose results the {result} placeholder gives, child by child (set by shala when it announces a class''s results)';

-- A development DLT id, as for the other seeded templates: operators put
-- the id the template is registered under.
INSERT INTO sms_template (type, language, body, dlt_template_id) VALUES
  ('STUDENT_RESULT', 'hi', 'प्रिय अभिभावक, {assessment} में {student_name} ({class}) का परिणाम: {result}। - समग्र शिक्षा हि.प्र.', '1007164390254879020');
COMMENT ON COLUMN sms_template.body IS 'Text with {named} placeholders; student_name, class, school_name and result are filled by shala, the rest from the request''s variables';
