-- Product events for PostHog: what happened (a certificate issued, results
-- announced, an SMS request finished), with internal ids, enums and counts
-- only — never names, phone numbers or other personal data; the distinct id
-- is a school's uuid or 'shala', never a person's. A row is written in the
-- transaction of the change it describes, so an event is never sent for
-- work that rolled back nor lost with a crash; the periodic job
-- analytics.send posts unsent rows to PostHog's batch API, each with its id
-- as PostHog's event uuid (a batch sent twice is deduplicated there), and
-- marks them sent. attempts counts the calls PostHog refused for their
-- payload: such events go after the others, in batches halved at each
-- refusal, so no event PostHog refuses can hold up the rest; refused_alone
-- counts the calls that refused it on its own. No event is given up for a
-- refusal: it is tried again each run and expires after 30 days. Sent rows are kept for a week,
-- unsent ones at most 30 days.
CREATE TABLE product_event (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  event       text NOT NULL CONSTRAINT product_event_event CHECK (event ~ '^[a-z][a-z0-9_]{0,63}$'),
  distinct_id text NOT NULL CONSTRAINT product_event_distinct_id
              CHECK (distinct_id = 'shala' OR distinct_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
  -- analytics.Record measures the same text form and records the size
  -- instead of properties that would not fit.
  properties  jsonb NOT NULL DEFAULT '{}'
              CONSTRAINT product_event_properties CHECK (jsonb_typeof(properties) = 'object' AND octet_length(properties::text) <= 4096),
  occurred_at timestamptz NOT NULL DEFAULT now(),
  attempts    int NOT NULL DEFAULT 0 CONSTRAINT product_event_attempts CHECK (attempts >= 0),
  refused_alone int NOT NULL DEFAULT 0 CONSTRAINT product_event_refused_alone CHECK (refused_alone >= 0),
  sent_at     timestamptz
);
COMMENT ON TABLE product_event IS 'Product events for PostHog (internal ids and counts only), sent by the analytics.send job';
COMMENT ON COLUMN product_event.distinct_id IS 'PostHog distinct id: a school''s id, or "shala" for everything else (never a person''s id)';
COMMENT ON COLUMN product_event.attempts IS 'Calls to PostHog that carried the event and were refused for their payload (400, 413, 422)';
COMMENT ON COLUMN product_event.refused_alone IS 'Calls in which PostHog refused the event on its own (it is then left out for the rest of the run)';
COMMENT ON COLUMN product_event.sent_at IS 'When PostHog accepted the event; NULL while unsent';
CREATE INDEX product_event_unsent ON product_event (attempts, occurred_at, id) WHERE sent_at IS NULL;
CREATE INDEX product_event_sent ON product_event (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX product_event_unsent_age ON product_event (occurred_at) WHERE sent_at IS NULL;
