-- An event PostHog refused on its own in a run in which it accepted other
-- events is refused for itself: the event, not PostHog, is the problem, and
-- the backlog gauge leaves it out. One refused on its own in a run in which
-- PostHog accepted nothing is not (yet): PostHog may be refusing everything,
-- and the gauge shows it as an outage.
ALTER TABLE product_event ADD COLUMN refused_for_itself boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN product_event.refused_for_itself IS 'PostHog refused the event on its own in a run in which it accepted others (left out of the oldest-unsent gauge)';
COMMENT ON COLUMN product_event.attempts IS 'Calls to PostHog that carried the event and were refused for their payload (400, 413, 422); events with fewer go first';
