-- A rule that fails while running on a response's values (int() of a text
-- answer, a modulo by a zero answer, a loop over its budget) is recorded on
-- the response instead of being skipped silently.
ALTER TABLE response ADD COLUMN rule_errors jsonb
  CHECK (rule_errors IS NULL OR jsonb_typeof(rule_errors) = 'array');
COMMENT ON COLUMN response.rule_errors IS 'Rules that failed to evaluate: [{rule_id, rule, error}]; NULL when every rule ran';
