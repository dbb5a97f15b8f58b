-- Product events for PostHog: what happened (a certificate issued, results
-- announced, an SMS request finished), with internal ids, enums and counts
-- only — never names, phone numbers or other personal data. A row is
-- written in the transaction of the change it describes, so an event is
-- never sent for work that rolled back nor lost with a crash; the periodic
-- job analytics.send posts unsent rows to PostHog's batch API, each with its
-- id as PostHog's event uuid (a batch sent twice is deduplicated there), and
-- marks them sent. Sent rows are kept for a week, unsent ones at most 30 days.
CREATE TABLE product_event (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  event       text NOT NULL CONSTRAINT product_event_event CHECK (event ~ '^[a-z][a-z0-9_]{0,63}$'),
  distinct_id text NOT NULL CONSTRAINT product_event_distinct_id CHECK (distinct_id ~ '^[A-Za-z0-9._:-]{1,100}$'),
  properties  jsonb NOT NULL DEFAULT '{}'
              CONSTRAINT product_event_properties CHECK (jsonb_typeof(properties) = 'object' AND octet_length(properties::text) <= 4096),
  occurred_at timestamptz NOT NULL DEFAULT now(),
  sent_at     timestamptz
);
COMMENT ON TABLE product_event IS 'Product events for PostHog (internal ids and counts only), sent by the analytics.send job';
COMMENT ON COLUMN product_event.distinct_id IS 'PostHog distinct id: a school''s or staff member''s internal id, or "shala" for the system';
COMMENT ON COLUMN product_event.sent_at IS 'When PostHog accepted the event; NULL while unsent';
CREATE INDEX product_event_unsent ON product_event (occurred_at, id) WHERE sent_at IS NULL;
CREATE INDEX product_event_sent ON product_event (sent_at) WHERE sent_at IS NOT NULL;
