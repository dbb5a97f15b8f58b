-- SMS to parents and respondents: templates (with their DLT ids), requests
-- apps insert through Hasura, and one message per (request, phone).

CREATE TABLE sms_template (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  type            text NOT NULL CHECK (type IN ('HOLIDAY', 'MEETING', 'EXAM_ANNOUNCEMENT', 'EXAM_RESULT_ANNOUNCEMENT',
                    'ANNOUNCEMENT', 'HOMEWORK', 'SLR', 'RECEIPT', 'RULE_FLAG')),
  language        text NOT NULL DEFAULT 'hi' CHECK (language ~ '^[a-z]{2}$'),
  body            text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 1000),
  dlt_template_id text NOT NULL CHECK (dlt_template_id ~ '^([0-9]{12}|[0-9]{19})$'),
  enabled         boolean NOT NULL DEFAULT true,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN sms_template.body IS 'Text with {named} placeholders; student_name, class and school_name are filled by shala, the rest from the request''s variables';
CREATE UNIQUE INDEX sms_template_one_enabled ON sms_template (type, language) WHERE enabled;
CREATE TRIGGER sms_template_updated_at BEFORE UPDATE ON sms_template
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

INSERT INTO sms_template (type, language, body, dlt_template_id) VALUES
  ('HOLIDAY', 'hi', 'प्रिय अभिभावक, {school_name} में {start_date} से {end_date} तक अवकाश रहेगा। विद्यालय {reopen_date} को पुनः खुलेगा। - समग्र शिक्षा हि.प्र.', '1007164390254879011'),
  ('MEETING', 'hi', 'प्रिय अभिभावक, {school_name} में {meeting_date} को अभिभावक-शिक्षक बैठक होगी। {student_name} ({class}) की प्रगति पर चर्चा हेतु अवश्य पधारें। - समग्र शिक्षा हि.प्र.', '1007164390254879012'),
  ('EXAM_ANNOUNCEMENT', 'hi', 'प्रिय अभिभावक, {student_name} ({class}) की {assessment} परीक्षा {start_date} से {end_date} तक होगी। कृपया तैयारी में सहयोग करें। - समग्र शिक्षा हि.प्र.', '1007164390254879013'),
  ('EXAM_RESULT_ANNOUNCEMENT', 'hi', 'प्रिय अभिभावक, {student_name} ({class}) की {assessment} परीक्षा का परिणाम {results_date} को घोषित होगा। - समग्र शिक्षा हि.प्र.', '1007164390254879014'),
  ('ANNOUNCEMENT', 'hi', 'प्रिय अभिभावक, {school_name} में {event_date} को {event} का आयोजन होगा। - समग्र शिक्षा हि.प्र.', '1007164390254879015'),
  ('HOMEWORK', 'hi', 'प्रिय अभिभावक, {student_name} ({class}) को आज {subject} का गृहकार्य दिया गया है। कृपया पूरा करवाने में सहायता करें। - समग्र शिक्षा हि.प्र.', '1007164390254879016'),
  ('SLR', 'hi', 'प्रिय अभिभावक, {student_name} ({class}) की अधिगम प्रगति रिपोर्ट देखें: {link} - समग्र शिक्षा हि.प्र.', '1007164390254879017'),
  ('RECEIPT', 'hi', 'नमस्ते {name}, आपका उत्तर "{form_title}" दर्ज हो गया है: {summary}। संदर्भ संख्या {reference}। - समग्र शिक्षा हि.प्र.', '1007164390254879018'),
  ('RULE_FLAG', 'hi', 'प्रविष्टि {reference} ("{form_title}") में सुधार आवश्यक है: {message}। कृपया जाँच कर दोबारा भेजें। - समग्र शिक्षा हि.प्र.', '1007164390254879019');

CREATE TABLE sms_request (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  school_id        uuid REFERENCES school (id),
  type             text NOT NULL CHECK (type IN ('HOLIDAY', 'MEETING', 'EXAM_ANNOUNCEMENT', 'EXAM_RESULT_ANNOUNCEMENT',
                     'ANNOUNCEMENT', 'HOMEWORK', 'SLR', 'RECEIPT', 'RULE_FLAG')),
  language         text NOT NULL DEFAULT 'hi' CHECK (language ~ '^[a-z]{2}$'),
  grades           int[] CHECK (grades <@ ARRAY[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
  sections         text[] CHECK (array_to_string(sections, ',') ~ '^([A-Z](,[A-Z])*)?$'),
  student_ids      uuid[] CHECK (cardinality(student_ids) <= 10000),
  -- Explicit recipients, for shala's own producers (form receipts, rule
  -- flags): not writable through Hasura.
  phones           text[] CHECK (cardinality(phones) <= 10000),
  variables        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(variables) = 'object' AND pg_column_size(variables) <= 8192),
  status           text NOT NULL DEFAULT 'QUEUED' CHECK (status IN ('QUEUED', 'PROCESSING', 'DONE', 'FAILED')),
  remarks          text,
  recipients_total int NOT NULL DEFAULT 0,
  sent             int NOT NULL DEFAULT 0,
  delivered        int NOT NULL DEFAULT 0,
  failed           int NOT NULL DEFAULT 0,
  skipped          int NOT NULL DEFAULT 0,
  requested_by     text,
  source           text NOT NULL DEFAULT 'app' CHECK (source IN ('app', 'forms', 'assessment', 'system')),
  expand_cursor    text,
  expanded_at      timestamptz,
  finished_at      timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (school_id IS NOT NULL OR phones IS NOT NULL)
);
COMMENT ON TABLE sms_request IS 'A broadcast: no grades, sections or student_ids means every active student of the school';
COMMENT ON COLUMN sms_request.skipped IS 'Students without a usable phone: none, invalid, not Indian, not a mobile (reasons in remarks and in undeliverable messages)';
COMMENT ON COLUMN sms_request.expand_cursor IS 'Keyset position of the fan-out, so a restarted expansion resumes';
CREATE INDEX sms_request_school ON sms_request (school_id, created_at DESC);
CREATE INDEX sms_request_queued ON sms_request (created_at) WHERE status = 'QUEUED';
CREATE TRIGGER sms_request_updated_at BEFORE UPDATE ON sms_request
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE sms_message (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  request_id          uuid NOT NULL REFERENCES sms_request (id) ON DELETE CASCADE,
  student_id          uuid REFERENCES student (id),
  phone               text NOT NULL CHECK (char_length(phone) BETWEEN 1 AND 40),
  body                text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 2000),
  status              text NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'undeliverable')),
  provider            text,
  provider_message_id text,
  attempts            int NOT NULL DEFAULT 0 CHECK (attempts BETWEEN 0 AND 25),
  last_error          text CHECK (char_length(last_error) <= 1000),
  sent_at             timestamptz,
  delivered_at        timestamptz,
  report_checked_at   timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  UNIQUE (request_id, phone)
);
COMMENT ON COLUMN sms_message.phone IS 'E.164 (+91…) when deliverable; as written in the register when undeliverable. Masked whenever logged';
CREATE UNIQUE INDEX sms_message_provider_id ON sms_message (provider, provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX sms_message_awaiting_report ON sms_message (provider, report_checked_at NULLS FIRST) WHERE status = 'sent';
-- No updated_at trigger: shala's statements set it (one plpgsql call less
-- per update at 100k-message fan-outs); apps cannot write this table.

-- The fan-out reads a school's targeted students ordered by phone, so that
-- siblings sharing a phone arrive together and get one message.
CREATE INDEX student_school_phone ON student (school_id, (coalesce(guardian_phone, '')), id) WHERE status = 'ACTIVE' AND enabled;
