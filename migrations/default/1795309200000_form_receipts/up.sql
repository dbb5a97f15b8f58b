-- Receipt SMS to respondents: per data-collection form, which fields hold the
-- respondent's phone and name and which answers make up the summary. A
-- response to a form with an enabled receipt queues one RECEIPT SMS built
-- from its own answers.
CREATE TABLE form_receipt (
  form_id        text PRIMARY KEY REFERENCES form (id),
  phone_field    text NOT NULL CHECK (char_length(phone_field) BETWEEN 1 AND 200),
  name_field     text CHECK (char_length(name_field) BETWEEN 1 AND 200),
  summary_fields text[] NOT NULL DEFAULT '{}' CHECK (cardinality(summary_fields) <= 10),
  language       text NOT NULL DEFAULT 'Hindi (hi)',
  enabled        boolean NOT NULL DEFAULT true,
  updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN form_receipt.phone_field IS 'Question name (form_question.name) of the respondent''s mobile number';
COMMENT ON COLUMN form_receipt.language IS 'itext language whose labels name the summary''s answers';
CREATE TRIGGER form_receipt_updated_at BEFORE UPDATE ON form_receipt FOR EACH ROW EXECUTE FUNCTION set_updated_at();
