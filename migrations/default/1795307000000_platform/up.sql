-- Platform tables every capability shares: the inbox that makes Hasura
-- deliveries idempotent, and the ping/pong pair that proves the
-- event → queue → worker path end to end.

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

-- One row per Hasura event or cron delivery that shala has durably
-- acknowledged. Hasura delivers at least once; the primary key turns every
-- redelivery (retries, a restarted Hasura re-sending locked events, three
-- concurrent copies) into a no-op. Pruned by the inbox_prune periodic job.
CREATE TABLE webhook_inbox (
  event_id    uuid PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('event', 'cron')),
  name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
  op          text CHECK (op IN ('INSERT', 'UPDATE', 'DELETE', 'MANUAL')),
  trace_id    text,
  received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_inbox_received_at ON webhook_inbox (received_at);

-- ping: a message anyone with admin rights can insert through Hasura (or the
-- ping action). Its insert fires the ping_created event trigger; the worker
-- answers with exactly one pong.
CREATE TABLE ping (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  message    text NOT NULL CHECK (char_length(message) BETWEEN 1 AND 500),
  sent_by    text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ping_created_at ON ping (created_at);

CREATE TABLE pong (
  ping_id      uuid PRIMARY KEY REFERENCES ping (id) ON DELETE CASCADE,
  event_id     uuid,
  job_id       bigint NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN pong.event_id IS 'Hasura event that caused the pong; null when the reconciler found the ping';
