-- Free JSON metadata on forms, questions, choices and answers (responses
-- have had theirs since the forms migration): whatever an app or a
-- programme keeps beside them — a form's owner or sector, a question's
-- indicator code, a choice's score, a reviewer's note on an answer. An
-- object of at most 16 KiB, in jsonb's text form; shala never reads it.
ALTER TABLE form ADD COLUMN meta jsonb NOT NULL DEFAULT '{}'
  CONSTRAINT form_meta CHECK (jsonb_typeof(meta) = 'object' AND octet_length(meta::text) <= 16384);
ALTER TABLE form_question ADD COLUMN meta jsonb NOT NULL DEFAULT '{}'
  CONSTRAINT form_question_meta CHECK (jsonb_typeof(meta) = 'object' AND octet_length(meta::text) <= 16384);
ALTER TABLE form_choice ADD COLUMN meta jsonb NOT NULL DEFAULT '{}'
  CONSTRAINT form_choice_meta CHECK (jsonb_typeof(meta) = 'object' AND octet_length(meta::text) <= 16384);
ALTER TABLE answer ADD COLUMN meta jsonb NOT NULL DEFAULT '{}'
  CONSTRAINT answer_meta CHECK (jsonb_typeof(meta) = 'object' AND octet_length(meta::text) <= 16384);
COMMENT ON COLUMN form.meta IS 'Free JSON metadata (an object, at most 16 KiB); shala never reads it';
COMMENT ON COLUMN form_question.meta IS 'Free JSON metadata (an object, at most 16 KiB); shala never reads it';
COMMENT ON COLUMN form_choice.meta IS 'Free JSON metadata (an object, at most 16 KiB); shala never reads it';
COMMENT ON COLUMN answer.meta IS 'Free JSON metadata (an object, at most 16 KiB); shala never reads it';
