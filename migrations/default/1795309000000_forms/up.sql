-- ODK forms: definitions (versioned), questions and choices of
-- data-collection forms, business rules, collectors (OpenRosa app users),
-- submissions (raw XML first, always), responses with typed answers, rule
-- flags and submission attachments.

CREATE TABLE form (
  id         text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.-]{1,100}$'),
  title      text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 300),
  purpose    text NOT NULL CHECK (purpose IN ('ASSESSMENT_BUILDER', 'DATA_COLLECTION')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER form_updated_at BEFORE UPDATE ON form FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A version is immutable once registered: submissions of every version keep
-- being read against their own definition.
CREATE TABLE form_version (
  form_id       text NOT NULL REFERENCES form (id),
  version       text NOT NULL CHECK (char_length(version) BETWEEN 1 AND 100),
  title         text NOT NULL,
  xform         text NOT NULL CHECK (octet_length(xform) <= 5242880),
  languages     text[] NOT NULL DEFAULT '{}',
  registered_by text,
  registered_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (form_id, version)
);

CREATE TABLE form_question (
  id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  form_id   text NOT NULL,
  version   text NOT NULL,
  path      text NOT NULL,
  name      text NOT NULL,
  type      text NOT NULL CHECK (type IN ('string', 'int', 'decimal', 'date', 'dateTime', 'time', 'select1', 'select',
              'geopoint', 'boolean', 'binary', 'barcode', 'geotrace', 'geoshape')),
  repeat    text,
  required  boolean NOT NULL DEFAULT false,
  labels    jsonb NOT NULL DEFAULT '{}',
  position  int NOT NULL,
  FOREIGN KEY (form_id, version) REFERENCES form_version (form_id, version),
  UNIQUE (form_id, version, path),
  UNIQUE (form_id, version, name)
);
COMMENT ON COLUMN form_question.name IS 'Variable name in rules and search: the last path segment, or the path joined by __ when that clashes';
COMMENT ON COLUMN form_question.labels IS 'Label per itext language, e.g. {"English": "Village", "Hindi (hi)": "गाँव"}';

CREATE TABLE form_choice (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  question_id uuid NOT NULL REFERENCES form_question (id) ON DELETE CASCADE,
  value       text NOT NULL,
  labels      jsonb NOT NULL DEFAULT '{}',
  position    int NOT NULL,
  UNIQUE (question_id, value)
);

CREATE TABLE form_rule (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  form_id    text NOT NULL REFERENCES form (id),
  name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9_ -]{1,100}$'),
  expression text NOT NULL CHECK (char_length(expression) BETWEEN 1 AND 2000),
  message    text NOT NULL CHECK (char_length(message) BETWEEN 1 AND 500),
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (form_id, name)
);
CREATE TRIGGER form_rule_updated_at BEFORE UPDATE ON form_rule FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Collectors submit from ODK Collect or Enketo with a token in the URL (as
-- ODK Central's app users do). Only the token's SHA-256 is stored.
CREATE TABLE collector (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name         text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
  phone        text NOT NULL CHECK (phone ~ '^\+91[6-9][0-9]{9}$'),
  token_hash   bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
  token_hint   text NOT NULL,
  revoked_at   timestamptz,
  created_by   text,
  created_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN collector.token_hint IS 'First characters of the token, to tell tokens apart; the token itself is shown once';

CREATE TABLE form_submission (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  xml           text NOT NULL CHECK (octet_length(xml) BETWEEN 1 AND 10485760),
  xml_sha256    bytea,
  instance_id   text CHECK (char_length(instance_id) <= 200),
  deprecated_id text CHECK (char_length(deprecated_id) <= 200),
  form_id       text,
  form_version  text,
  status        text NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'accepted', 'rejected', 'duplicate', 'superseded')),
  errors        jsonb,
  source        text NOT NULL DEFAULT 'hasura' CHECK (source IN ('action', 'openrosa', 'hasura')),
  collector_id  uuid REFERENCES collector (id),
  submitted_by  text,
  duplicate_of  uuid REFERENCES form_submission (id),
  received_at   timestamptz NOT NULL DEFAULT now(),
  processed_at  timestamptz
);
COMMENT ON TABLE form_submission IS 'Every submission, stored raw before it is parsed (never lost); status says what became of it';
COMMENT ON COLUMN form_submission.errors IS '[{"path", "reason"}] for rejected submissions';
-- One live submission per instanceID: the same XML again is answered from
-- the first; different XML with the same instanceID is refused.
CREATE UNIQUE INDEX form_submission_instance ON form_submission (instance_id)
  WHERE instance_id IS NOT NULL AND status NOT IN ('duplicate');
CREATE INDEX form_submission_received ON form_submission (received_at) WHERE status = 'received';
CREATE INDEX form_submission_form ON form_submission (form_id, received_at);

CREATE TABLE form_attachment (
  submission_id uuid NOT NULL REFERENCES form_submission (id) ON DELETE CASCADE,
  name          text NOT NULL CHECK (name ~ '^[^/\\]{1,255}$'),
  content_type  text NOT NULL,
  size          bigint NOT NULL CHECK (size >= 0),
  blob_key      text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (submission_id, name)
);

CREATE TABLE response (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  form_id       text NOT NULL,
  form_version  text NOT NULL,
  submission_id uuid NOT NULL UNIQUE REFERENCES form_submission (id),
  instance_id   text NOT NULL UNIQUE,
  collector_id  uuid REFERENCES collector (id),
  meta          jsonb NOT NULL DEFAULT '{}',
  flagged       boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (form_id, form_version) REFERENCES form_version (form_id, version)
);
COMMENT ON COLUMN response.meta IS 'Free JSON metadata: instanceName, device, the edit history…';
CREATE INDEX response_form ON response (form_id, created_at);
CREATE TRIGGER response_updated_at BEFORE UPDATE ON response FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- One row per answered field per repeat instance; a multiple choice has a
-- row per selected choice. value_text is always the value as submitted (so
-- any answer can be searched by equality); the typed column holds it as its
-- type.
CREATE TABLE answer (
  response_id  uuid NOT NULL REFERENCES response (id) ON DELETE CASCADE,
  question_id  uuid NOT NULL REFERENCES form_question (id),
  repeat_index int[] NOT NULL DEFAULT '{}',
  n            smallint NOT NULL DEFAULT 0 CHECK (n >= 0),
  value_text   text NOT NULL CHECK (char_length(value_text) <= 10000),
  value_number numeric,
  value_time   timestamptz,
  value_bool   boolean,
  choice_id    uuid REFERENCES form_choice (id),
  -- The key doubles as the per-response index (one index fewer to maintain
  -- for the ~30 answers every submission writes).
  CONSTRAINT answer_pkey PRIMARY KEY (response_id, question_id, repeat_index, n)
);
COMMENT ON COLUMN answer.repeat_index IS 'Position in each enclosing repeat, outermost first (1-based); {} outside repeats';
COMMENT ON COLUMN answer.n IS 'Which selected choice of a multiple choice (0, 1, …); 0 for every other answer';
CREATE INDEX answer_question_value ON answer (question_id, value_text);

CREATE TABLE response_flag (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  response_id uuid NOT NULL REFERENCES response (id) ON DELETE CASCADE,
  rule_id     uuid REFERENCES form_rule (id) ON DELETE SET NULL,
  rule_name   text NOT NULL,
  message     text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (response_id, rule_name)
);

-- Cross-question search: answers to question_name in responses whose answer
-- to where_name equals equals (e.g. every "local word for water" from
-- responses whose "city" is Shimla), across all versions of form_id. The
-- first lookup goes through answer_question_value, the second through the
-- primary key (response_id, question_id, …).
CREATE FUNCTION search_answers(form_id text, question_name text, where_name text, equals text)
RETURNS SETOF answer
LANGUAGE sql STABLE AS $$
  SELECT a.*
  FROM form_question qb
  JOIN answer b ON b.question_id = qb.id AND b.value_text = search_answers.equals
  JOIN form_question qa ON qa.form_id = qb.form_id AND qa.version = qb.version AND qa.name = search_answers.question_name
  JOIN answer a ON a.response_id = b.response_id AND a.question_id = qa.id
  WHERE qb.form_id = search_answers.form_id AND qb.name = search_answers.where_name
$$;
