-- The sender puts the oldest event refused alone and not yet known to be
-- refused for itself at the head of each batch, and sends events refused
-- alone only after the others.
CREATE INDEX product_event_unsent_suspect ON product_event (occurred_at, id)
  WHERE sent_at IS NULL AND refused_alone > 0 AND NOT refused_for_itself;
CREATE INDEX product_event_unsent_refused ON product_event (attempts, occurred_at, id)
  WHERE sent_at IS NULL AND refused_alone > 0;
