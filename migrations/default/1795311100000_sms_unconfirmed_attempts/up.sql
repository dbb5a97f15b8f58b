-- An attempt counter that does not lie. A message is claimed ('sending',
-- attempts + 1) before each provider call, so attempts counts the calls that
-- were started; a call whose outcome shala never learned (the process died
-- during it, it timed out or was cut off) is counted in unconfirmed_attempts:
-- each of those may have reached the phone. So "did this parent get two
-- messages?" is answered by the row: at most unconfirmed_attempts, plus one
-- if the message is sent or delivered.
ALTER TABLE sms_message ADD COLUMN unconfirmed_attempts int NOT NULL DEFAULT 0;
ALTER TABLE sms_message ADD CONSTRAINT sms_message_unconfirmed_attempts_check
  CHECK (unconfirmed_attempts BETWEEN 0 AND attempts) NOT VALID;
COMMENT ON COLUMN sms_message.attempts IS 'Provider calls started for this message (each claimed before it is made)';
COMMENT ON COLUMN sms_message.unconfirmed_attempts IS 'Provider calls whose outcome shala never learned (process died, timeout, cut off): each may have reached the phone';
COMMENT ON COLUMN sms_message.status IS 'queued → sending (handed to the provider, outcome not yet recorded) → sent → delivered, or failed / undeliverable';
