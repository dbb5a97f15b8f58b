-- A response and its answers inserted through Hasura in one nested insert
-- (insert_response_one(object: {form_id, answers: {data: [...]}})), as an
-- app without ODK would send them. Hasura's transaction carries the
-- caller's session (hasura.user); the forms pipeline's own writes never do,
-- and always name their submission, so nothing here touches them.
--
-- Such a response gets a form_submission row of its own (source 'graphql',
-- no XML: the rows are the document): it holds the instanceID against
-- every later submission (an ODK submission reusing it is a conflict, an
-- ODK edit naming it replaces the response), the submitter, and when the
-- response's rules and receipt were dealt with (processed_at, set by the
-- forms.check_response job that form_submission_created starts).
ALTER TABLE form_submission DROP CONSTRAINT form_submission_source_check,
  ADD CONSTRAINT form_submission_source_check CHECK (source IN ('action', 'openrosa', 'hasura', 'graphql')),
  ALTER COLUMN xml DROP NOT NULL,
  ADD CONSTRAINT form_submission_xml_present CHECK ((xml IS NULL) = (source = 'graphql'));

-- The responses whose rules and receipt are still to be dealt with: what
-- the sweep reads when Hasura's event never came.
CREATE INDEX form_submission_graphql_unchecked ON form_submission (received_at)
  WHERE source = 'graphql' AND processed_at IS NULL;

-- A school or district reads the responses it submitted by this.
CREATE INDEX form_submission_submitted_by ON form_submission (submitted_by) WHERE submitted_by IS NOT NULL;

-- How many repeats enclose a question (0 outside repeats): a nested
-- insert's repeat_index has one position per repeat. Registration writes
-- it from the parsed definition. For questions registered before, it is
-- 0 outside repeats and NULL inside (the trigger then checks the count
-- within bounds: a definition's repeats cannot be read here as the parser
-- reads them — relative nodesets, prefixes, jr:template).
ALTER TABLE form_question ADD COLUMN repeat_depth smallint CHECK (repeat_depth BETWEEN 0 AND 32);
COMMENT ON COLUMN form_question.repeat_depth IS 'How many repeats enclose the question (0 outside repeats; NULL: registered before it was counted)';
UPDATE form_question SET repeat_depth = 0 WHERE repeat IS NULL;

-- The caller of a Hasura mutation (x-hasura-* session variables), or NULL
-- outside one.
CREATE FUNCTION hasura_session() RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT nullif(current_setting('hasura.user', true), '')::jsonb
$$;

-- Refused values raise invalid_parameter_value (22023): Hasura passes it
-- to the app as a data-exception with the message as written
-- (check_violation would reach it as a "permission-error").
CREATE FUNCTION response_nested_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  session jsonb := hasura_session();
  f form;
  sub uuid;
BEGIN
  IF session IS NULL THEN
    RAISE EXCEPTION 'submission_id: a response is written by the forms pipeline or inserted through Hasura'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NEW.submission_id IS NOT NULL THEN
    RAISE EXCEPTION 'submission: a response inserted through Hasura gets its submission row from shala; leave it out'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT * INTO f FROM form WHERE id = NEW.form_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'form_id: form "%" is not registered', NEW.form_id USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF f.purpose <> 'DATA_COLLECTION' THEN
    RAISE EXCEPTION 'form_id: "%" is an assessment builder: its submissions go through submitForm', NEW.form_id
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NEW.form_version IS NULL THEN
    -- The version ODK Collect's form list offers: the latest registered.
    SELECT version INTO NEW.form_version FROM form_version WHERE form_id = NEW.form_id
      ORDER BY registered_at DESC, version DESC LIMIT 1;
  ELSIF NOT EXISTS (SELECT 1 FROM form_version WHERE form_id = NEW.form_id AND version = NEW.form_version) THEN
    RAISE EXCEPTION 'form_version: form "%" has no version "%"', NEW.form_id, NEW.form_version USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NEW.instance_id IS NULL THEN
    NEW.instance_id := 'uuid:' || gen_random_uuid();
  ELSIF char_length(NEW.instance_id) NOT BETWEEN 1 AND 200 OR NEW.instance_id <> btrim(NEW.instance_id) THEN
    RAISE EXCEPTION 'instance_id: 1 to 200 characters, without surrounding spaces' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF jsonb_typeof(NEW.meta) IS DISTINCT FROM 'object' OR octet_length(NEW.meta::text) > 16384 THEN
    RAISE EXCEPTION 'meta: a JSON object of at most 16 KiB' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  BEGIN
    INSERT INTO form_submission (xml, instance_id, form_id, form_version, status, source, submitted_by, submitted_role)
      VALUES (NULL, NEW.instance_id, NEW.form_id, NEW.form_version, 'accepted', 'graphql',
              session ->> 'x-hasura-user-id', left(session ->> 'x-hasura-role', 100))
      RETURNING id INTO sub;
  EXCEPTION WHEN unique_violation THEN
    -- An app retrying an insert whose answer it never got lands here (or
    -- races its first try here): the response is stored.
    RAISE EXCEPTION 'instance_id: "%" was already received', NEW.instance_id USING ERRCODE = 'unique_violation';
  END;
  NEW.submission_id := sub;
  NEW.collector_id := NULL;
  NEW.flagged := false;
  NEW.rule_errors := NULL;
  NEW.created_at := now();
  RETURN NEW;
END $$;

-- Every response inserted under a Hasura session, also one naming a
-- submission (Hasura's nested object insert through response.submission
-- fills it in), which it refuses.
CREATE TRIGGER response_nested_insert BEFORE INSERT ON response
  FOR EACH ROW WHEN (NEW.submission_id IS NULL OR current_setting('hasura.user', true) <> '')
  EXECUTE FUNCTION response_nested_insert();

-- Types one answer as the pipeline does (internal/xform's coerce: the same
-- syntax for each type; TestNestedInsertTypesAsThePipeline holds them
-- together) or raises naming the question: member_age[2]: "abc" is not a
-- whole number.
CREATE FUNCTION answer_nested_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  r response;
  q form_question;
  v text := NEW.value_text;
  shown text;
  field text;
  parts text[];
  part text;
  m text[];
  d date;
  x float8;
  counted text[];
  decimal_syntax constant text := '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$';
  -- hh:mm:ss within the day and a zone offset under 24 hours, as Go's
  -- time.Parse checks them.
  clock constant text := '([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]';
  zone constant text := '(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])';
BEGIN
  SELECT * INTO r FROM response WHERE id = NEW.response_id;
  -- Answers arrive with their response, in the same transaction (Hasura's
  -- nested insert): a response's answers are never added to afterwards.
  -- (A response updated in this transaction passes too; no role may
  -- update responses, which the metadata test holds.)
  IF NOT FOUND OR r.xmin::text::bigint <> txid_current() % 4294967296 THEN
    RAISE EXCEPTION 'answers: inserted with their response, in the same mutation (insert_response_one with answers)'
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- At most 10,000 answers a response (a submission holds at most
  -- 200,000 elements; a survey has tens to hundreds): Hasura inserts a
  -- response's answers one after another, counted here in the
  -- transaction (response id, count).
  counted := string_to_array(current_setting('shala.nested_answers', true), ' ');
  IF counted[1] IS DISTINCT FROM NEW.response_id::text THEN
    counted := ARRAY[NEW.response_id::text, '0'];
  END IF;
  IF counted[2]::int >= 10000 THEN
    RAISE EXCEPTION 'answers: at most 10000 a response' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM set_config('shala.nested_answers', NEW.response_id::text || ' ' || (counted[2]::int + 1), true);
  SELECT * INTO q FROM form_question WHERE id = NEW.question_id;
  IF NOT FOUND OR q.form_id <> r.form_id OR q.version <> r.form_version THEN
    RAISE EXCEPTION 'question_id: % is not a question of form "%" version "%"', NEW.question_id, r.form_id, r.form_version
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF split_part(q.path, '/', 3) = 'meta' THEN
    RAISE EXCEPTION '%: the meta block is the submission''s header, not an answer (instance_id is the response''s)', q.name
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NEW.n IS NULL OR NEW.n < 0 THEN
    RAISE EXCEPTION '%: n is 0, or the place of a multiple choice''s further choices (1, 2, …)', q.name USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF jsonb_typeof(NEW.meta) IS DISTINCT FROM 'object' OR octet_length(NEW.meta::text) > 16384 THEN
    RAISE EXCEPTION '%: meta is a JSON object of at most 16 KiB', q.name USING ERRCODE = 'invalid_parameter_value';
  END IF;
  field := q.name || coalesce('[' || nullif(array_to_string(NEW.repeat_index, ']['), '') || ']', '');
  -- Outside repeats: {}. Inside: one position per enclosing repeat
  -- (repeat_depth), each from 1 to 200,000 (a submission's element cap),
  -- in a plain array. Where the depth is not known (a definition that did
  -- not parse when the column came), within bounds: at least the repeats
  -- holding questions of their own on its way, at most the groups on its
  -- path.
  IF (q.repeat IS NULL) <> (cardinality(NEW.repeat_index) = 0)
     OR (cardinality(NEW.repeat_index) > 0 AND (array_ndims(NEW.repeat_index) <> 1 OR array_lower(NEW.repeat_index, 1) <> 1))
     OR EXISTS (SELECT 1 FROM unnest(NEW.repeat_index) i WHERE i IS NULL OR i NOT BETWEEN 1 AND 200000)
     OR cardinality(NEW.repeat_index) <> coalesce(q.repeat_depth, cardinality(NEW.repeat_index))
     OR q.repeat_depth IS NULL AND (cardinality(NEW.repeat_index) > cardinality(string_to_array(q.path, '/')) - 3
       OR cardinality(NEW.repeat_index) < (SELECT count(DISTINCT o.repeat) FROM form_question o
          WHERE o.form_id = q.form_id AND o.version = q.version AND (q.repeat = o.repeat OR starts_with(q.repeat, o.repeat || '/')))) THEN
    RAISE EXCEPTION '%: repeat_index is its position in each enclosing repeat, outermost first, from 1 (% for a question outside repeats)',
      q.name, '{}' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF NEW.n <> 0 AND q.type <> 'select' THEN
    RAISE EXCEPTION '%: n is 0 but for the choices of a multiple choice (0, 1, …)', field USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF v IS NULL OR v = '' THEN
    RAISE EXCEPTION '%: value_text is empty (leave an unanswered question out)', field USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF char_length(v) > 10000 THEN
    RAISE EXCEPTION '%: % characters, more than the 10000 an answer may have', field, char_length(v) USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF EXISTS (SELECT 1 FROM answer WHERE response_id = NEW.response_id AND question_id = NEW.question_id
      AND repeat_index = NEW.repeat_index AND n = NEW.n) THEN
    RAISE EXCEPTION '%: answered twice (n % twice; a multiple choice''s choices are n = 0, 1, …)', field, NEW.n
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  shown := '"' || CASE WHEN char_length(v) > 60 THEN left(v, 60) || '…' ELSE v END || '"';
  NEW.value_number := NULL; NEW.value_time := NULL; NEW.value_bool := NULL; NEW.choice_id := NULL;
  CASE q.type
  WHEN 'int' THEN
    IF v !~ '^[+-]?[0-9]+$' THEN
      RAISE EXCEPTION '%: % is not a whole number', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
      NEW.value_number := v::bigint;
    EXCEPTION WHEN numeric_value_out_of_range THEN
      RAISE EXCEPTION '%: % is not a whole number', field, shown USING ERRCODE = 'invalid_parameter_value';
    END;
  WHEN 'decimal' THEN
    IF v !~ decimal_syntax THEN
      RAISE EXCEPTION '%: % is not a number', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
      x := v::float8; -- beyond float8's range (far beyond: 1e400)
    EXCEPTION WHEN numeric_value_out_of_range THEN
      RAISE EXCEPTION '%: % is not a number', field, shown USING ERRCODE = 'invalid_parameter_value';
    END;
    NEW.value_number := v::numeric;
  WHEN 'date' THEN
    m := regexp_match(v, '^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})$');
    BEGIN
      d := make_date(m[1]::int, m[2]::int, m[3]::int);
    EXCEPTION WHEN OTHERS THEN
      d := NULL;
    END;
    IF d IS NULL THEN
      RAISE EXCEPTION '%: % is not a date (YYYY-MM-DD)', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.value_time := d::timestamp AT TIME ZONE 'UTC';
  WHEN 'dateTime' THEN
    IF v !~ ('^[0-9]{4}-[0-9]{2}-[0-9]{2}T' || clock || '(\.[0-9]+)?' || zone || '$') THEN
      RAISE EXCEPTION '%: % is not a date and time (ISO 8601 with zone)', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
      NEW.value_time := v::timestamptz;
    EXCEPTION WHEN OTHERS THEN
      RAISE EXCEPTION '%: % is not a date and time (ISO 8601 with zone)', field, shown USING ERRCODE = 'invalid_parameter_value';
    END;
  WHEN 'time' THEN
    -- Go's layouts: 15:04:05.999-07:00, 15:04:05.999Z07:00, 15:04:05.999,
    -- 15:04:05, 15:04 (the hour may have one digit).
    IF v !~ ('^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]+)?' || zone || '?)?$') THEN
      RAISE EXCEPTION '%: % is not a time of day (HH:MM:SS)', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
  WHEN 'boolean' THEN
    IF v NOT IN ('true', '1', 'false', '0') THEN
      RAISE EXCEPTION '%: % is not true or false', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    NEW.value_bool := v IN ('true', '1');
  WHEN 'select1', 'select' THEN
    IF q.type = 'select' AND v ~ '\s' THEN
      RAISE EXCEPTION '%: one selected choice per answer (n = 0, 1, … for the next ones)', field USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF q.type = 'select' AND EXISTS (SELECT 1 FROM answer WHERE response_id = NEW.response_id AND question_id = NEW.question_id
        AND repeat_index = NEW.repeat_index AND value_text = v) THEN
      RAISE EXCEPTION '%: % is selected twice', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT id INTO NEW.choice_id FROM form_choice WHERE question_id = q.id AND value = v;
    -- Choices from an external itemset are not known here: any value, as
    -- the pipeline takes it.
    IF NOT FOUND AND EXISTS (SELECT 1 FROM form_choice WHERE question_id = q.id) THEN
      RAISE EXCEPTION '%: % is not one of the choices', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
  WHEN 'geopoint' THEN
    parts := regexp_split_to_array(regexp_replace(v, '^\s+|\s+$', '', 'g'), '\s+');
    IF cardinality(parts) NOT BETWEEN 2 AND 4 OR EXISTS (SELECT 1 FROM unnest(parts) p WHERE p !~ decimal_syntax) THEN
      RAISE EXCEPTION '%: % is not a geopoint (latitude longitude [altitude [accuracy]])', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
    BEGIN
      FOREACH part IN ARRAY parts LOOP
        x := part::float8; -- each within float8's range
      END LOOP;
    EXCEPTION WHEN numeric_value_out_of_range THEN
      RAISE EXCEPTION '%: % is not a geopoint (latitude longitude [altitude [accuracy]])', field, shown USING ERRCODE = 'invalid_parameter_value';
    END;
    IF abs(parts[1]::float8) > 90 OR abs(parts[2]::float8) > 180 THEN
      RAISE EXCEPTION '%: %: latitude must be within ±90 and longitude within ±180', field, shown USING ERRCODE = 'invalid_parameter_value';
    END IF;
  WHEN 'binary' THEN
    RAISE EXCEPTION '%: a file is sent with its submission (OpenRosa or submitForm), not in a nested insert', field
      USING ERRCODE = 'invalid_parameter_value';
  ELSE
    -- string, barcode, geotrace, geoshape: the text as given.
  END CASE;
  RETURN NEW;
END $$;

-- Only inside a Hasura mutation: the pipeline's bulk inserts never pay for
-- the trigger (the condition is checked before any call).
CREATE TRIGGER answer_nested_insert BEFORE INSERT ON answer
  FOR EACH ROW WHEN (current_setting('hasura.user', true) <> '') EXECUTE FUNCTION answer_nested_insert();
