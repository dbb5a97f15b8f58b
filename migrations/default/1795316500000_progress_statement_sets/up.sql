-- The progress counters on statements that change a student's rows in
-- more than one way. An upsert (INSERT … ON CONFLICT DO UPDATE: Hasura's
-- insert with on_conflict) fires the AFTER UPDATE statement trigger and
-- then the AFTER INSERT one; MERGE and writable CTEs one per kind of
-- change; and every one of those triggers sees the table as the whole
-- statement left it. Each derived a student's "before" from the table less
-- its own rows only, so a student whose theory row was updated and
-- practical row inserted by one upsert was counted from a state that never
-- existed: counters off, or the write refused by their CHECK.
--
-- Now a BEFORE statement trigger counts the AFTER statement triggers still
-- to come in the query; each one but the last hands its rows on (in a
-- transaction-local setting, so a savepoint rolled back takes them back
-- too), and the last applies the statement's whole change at once. A
-- query's BEFORE statement triggers all fire before any of its AFTER ones.

-- Results: statements of one query hand their rows to the last.
CREATE FUNCTION assessment_result_statement_start() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('shala.progress_result_statements',
    (coalesce(nullif(current_setting('shala.progress_result_statements', true), ''), '0')::int + 1)::text, true);
  RETURN NULL;
END;
$$;
CREATE TRIGGER assessment_result_progress_start BEFORE INSERT OR UPDATE OR DELETE ON assessment_result
  FOR EACH STATEMENT EXECUTE FUNCTION assessment_result_statement_start();

CREATE OR REPLACE FUNCTION assessment_result_progress() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  olds    assessment_result[] := '{}';
  news    assessment_result[] := '{}';
  pending int;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    olds := ARRAY(SELECT o::assessment_result FROM old_rows o);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    news := ARRAY(SELECT n::assessment_result FROM new_rows n);
  END IF;
  -- AFTER statement triggers of this query still to fire after this one
  -- (none when the BEFORE trigger did not run: its count is unset).
  pending := greatest(coalesce(nullif(current_setting('shala.progress_result_statements', true), ''), '1')::int - 1, 0);
  PERFORM set_config('shala.progress_result_statements', pending::text, true);
  olds := coalesce(nullif(current_setting('shala.progress_result_olds', true), ''), '{}')::assessment_result[] || olds;
  news := coalesce(nullif(current_setting('shala.progress_result_news', true), ''), '{}')::assessment_result[] || news;
  IF pending > 0 THEN
    PERFORM set_config('shala.progress_result_olds', olds::text, true),
            set_config('shala.progress_result_news', news::text, true);
    RETURN NULL;
  END IF;
  IF current_setting('shala.progress_result_olds', true) <> '' OR current_setting('shala.progress_result_news', true) <> '' THEN
    PERFORM set_config('shala.progress_result_olds', '', true), set_config('shala.progress_result_news', '', true);
  END IF;
  PERFORM assessment_result_progress_apply(olds, news);
  RETURN NULL;
END;
$$;
