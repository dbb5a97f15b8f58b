-- Assessment-builder layouts and the master data their ids refer to.
--
-- The state team builds assessments in the programme's own (Samarth) Enketo
-- form, whose answers are ids of master data: assessment categories and
-- types, subjects (per class), component types, SMS templates, districts
-- (slugs). Each reference table gets a stable code (its primary key, what
-- shala's own builder layout sends) and an external id (what the
-- programme's form sends); both are looked up, and an unknown one refuses
-- the builder naming the field. Admins edit these tables through Hasura.

CREATE TABLE district (
  name        text PRIMARY KEY CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
  code        text NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9_]{0,59}$'),
  name_hi     text NOT NULL,
  external_id text UNIQUE CHECK (char_length(external_id) BETWEEN 1 AND 60)
);
COMMENT ON TABLE district IS 'Districts: name as schools and deadlines record it, code (slug) as builder forms send it';
INSERT INTO district (name, code, name_hi) VALUES
  ('Bilaspur', 'bilaspur', 'बिलासपुर'), ('Chamba', 'chamba', 'चंबा'), ('Hamirpur', 'hamirpur', 'हमीरपुर'),
  ('Kangra', 'kangra', 'कांगड़ा'), ('Kinnaur', 'kinnaur', 'किन्नौर'), ('Kullu', 'kullu', 'कुल्लू'),
  ('Lahaul and Spiti', 'lahaul_and_spiti', 'लाहौल और स्पीति'), ('Mandi', 'mandi', 'मंडी'), ('Shimla', 'shimla', 'शिमला'),
  ('Sirmaur', 'sirmaur', 'सिरमौर'), ('Solan', 'solan', 'सोलन'), ('Una', 'una', 'ऊना');

CREATE TABLE assessment_category (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Z][A-Z0-9_]{0,39}$'),
  name        text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
  name_hi     text NOT NULL,
  external_id text UNIQUE CHECK (char_length(external_id) BETWEEN 1 AND 60)
);
-- External ids seeded only where the programme's published material shows
-- them (FA is category 1); admins enter the rest.
INSERT INTO assessment_category (id, name, name_hi, external_id) VALUES
  ('FA', 'Formative Assessment', 'रचनात्मक मूल्यांकन', '1'),
  ('SA', 'Summative Assessment', 'योगात्मक मूल्यांकन', NULL),
  ('TERM', 'Term Exam', 'सत्र परीक्षा', NULL),
  ('PRE_BOARD', 'Pre-Board Exam', 'प्री-बोर्ड परीक्षा', NULL),
  ('SCHOOL_BASED', 'School Baseline and Endline Assessment', 'विद्यालय आधार-रेखा एवं अंत-रेखा मूल्यांकन', NULL);

CREATE TABLE assessment_type (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Z][A-Z0-9_]{0,39}$'),
  category    text REFERENCES assessment_category (id),
  name        text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
  name_hi     text NOT NULL,
  external_id text UNIQUE CHECK (char_length(external_id) BETWEEN 1 AND 60)
);
INSERT INTO assessment_type (id, category, name, name_hi, external_id) VALUES
  ('FA1', 'FA', 'Formative Assessment 1', 'रचनात्मक मूल्यांकन 1', '16'),
  ('FA2', 'FA', 'Formative Assessment 2', 'रचनात्मक मूल्यांकन 2', NULL),
  ('FA3', 'FA', 'Formative Assessment 3', 'रचनात्मक मूल्यांकन 3', NULL),
  ('FA4', 'FA', 'Formative Assessment 4', 'रचनात्मक मूल्यांकन 4', NULL),
  ('SA1', 'SA', 'Summative Assessment 1', 'योगात्मक मूल्यांकन 1', NULL),
  ('SA2', 'SA', 'Summative Assessment 2', 'योगात्मक मूल्यांकन 2', NULL),
  ('TERM1', 'TERM', 'Term-1 Exam', 'सत्र-1 परीक्षा', NULL),
  ('TERM2', 'TERM', 'Term-2 Exam', 'सत्र-2 परीक्षा', NULL),
  ('PRE_BOARD', 'PRE_BOARD', 'Pre-Board Exam', 'प्री-बोर्ड परीक्षा', NULL),
  ('BASELINE', 'SCHOOL_BASED', 'School Baseline Assessment', 'विद्यालय आधार-रेखा मूल्यांकन', NULL),
  ('ENDLINE', 'SCHOOL_BASED', 'School Endline Assessment', 'विद्यालय अंत-रेखा मूल्यांकन', NULL);
ALTER TABLE assessment DROP CONSTRAINT assessment_type_check,
  ADD CONSTRAINT assessment_type_fkey FOREIGN KEY (type) REFERENCES assessment_type (id),
  ADD COLUMN category text REFERENCES assessment_category (id);
UPDATE assessment a SET category = t.category FROM assessment_type t WHERE t.id = a.type;

CREATE TABLE component_type (
  id          text PRIMARY KEY CHECK (id ~ '^[A-Z][A-Z0-9_]{0,39}$'),
  name        text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 200),
  name_hi     text NOT NULL,
  external_id text UNIQUE CHECK (char_length(external_id) BETWEEN 1 AND 60)
);
INSERT INTO component_type (id, name, name_hi, external_id) VALUES
  ('THEORY', 'Theory', 'सैद्धांतिक', '1'),
  ('PRACTICAL', 'Practical', 'प्रायोगिक', NULL),
  ('ORAL', 'Oral', 'मौखिक', NULL),
  ('PROJECT', 'Project', 'परियोजना', NULL),
  ('INTERNAL_ASSESSMENT', 'Internal Assessment', 'आंतरिक मूल्यांकन', '5');
ALTER TABLE assessment_component DROP CONSTRAINT assessment_component_component_type_check,
  ADD CONSTRAINT assessment_component_component_type_fkey FOREIGN KEY (component_type) REFERENCES component_type (id);

-- The programme numbers subjects per class (its Hindi of class 5 is 101):
-- an external id names a subject, and the class it is for when it does.
CREATE TABLE subject_code (
  external_id text PRIMARY KEY CHECK (char_length(external_id) BETWEEN 1 AND 60),
  subject     text NOT NULL REFERENCES subject (id),
  grade       smallint REFERENCES grade (id)
);
COMMENT ON TABLE subject_code IS 'External subject ids of builder forms: the subject, and the class the id is for (NULL: any)';
INSERT INTO subject_code (external_id, subject, grade) VALUES ('101', 'HINDI', 5);

ALTER TABLE sms_template ADD COLUMN external_id text UNIQUE CHECK (char_length(external_id) BETWEEN 1 AND 60);
UPDATE sms_template SET external_id = '21' WHERE type = 'EXAM_RESULT_ANNOUNCEMENT' AND language = 'hi' AND enabled;

-- Builder layouts: a registered builder version records the mapping that
-- reads its submissions — its name (builder_layout: shala or samarth built
-- in, or one an admin saved) and the mapping itself as it was then
-- (builder_mapping; NULL: the built-in one of that name), so versions stay
-- immutable when a saved mapping changes later.
ALTER TABLE form_version ADD COLUMN builder_layout text CHECK (char_length(builder_layout) BETWEEN 1 AND 60),
  ADD COLUMN builder_mapping jsonb CHECK (jsonb_typeof(builder_mapping) = 'object');
CREATE TABLE builder_mapping (
  -- Not a reference: a mapping is saved before its form is registered.
  form_id    text PRIMARY KEY CHECK (form_id ~ '^[A-Za-z0-9_.-]{1,100}$'),
  layout     text NOT NULL CHECK (layout ~ '^[a-z][a-z0-9_-]{0,59}$'),
  mapping    jsonb NOT NULL CHECK (jsonb_typeof(mapping) = 'object' AND pg_column_size(mapping) <= 65536),
  saved_by   text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE builder_mapping IS 'An admin-saved builder mapping (saveBuilderMapping): XForm path → assessment attribute, with the conversion; used by the form''s next registered versions';
CREATE TRIGGER builder_mapping_updated_at BEFORE UPDATE ON builder_mapping FOR EACH ROW EXECUTE FUNCTION set_updated_at();
UPDATE form_version v SET builder_layout = 'shala' FROM form f WHERE f.id = v.form_id AND f.purpose = 'ASSESSMENT_BUILDER';
