DROP TRIGGER IF EXISTS assessment_result_progress_start ON assessment_result;
DROP FUNCTION IF EXISTS assessment_result_statement_start();

-- As 1795316000000_assessment_progress left it.
CREATE OR REPLACE FUNCTION assessment_result_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM assessment_result_progress_apply('{}', ARRAY(SELECT n::assessment_result FROM new_rows n));
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM assessment_result_progress_apply(ARRAY(SELECT o::assessment_result FROM old_rows o), ARRAY(SELECT n::assessment_result FROM new_rows n));
  ELSE
    PERFORM assessment_result_progress_apply(ARRAY(SELECT o::assessment_result FROM old_rows o), '{}');
  END IF;
  RETURN NULL;
END;
$$;
