ALTER TABLE response DROP COLUMN IF EXISTS rule_errors;
