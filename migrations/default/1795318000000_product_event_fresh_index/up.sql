-- The sender's batches take events never refused alone before the others:
-- their own index, so a pile of known-bad events is never scanned past.
CREATE INDEX product_event_unsent_fresh ON product_event (attempts, occurred_at, id)
  WHERE sent_at IS NULL AND refused_alone = 0;
