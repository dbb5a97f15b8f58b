-- When the sweep last checked a live lesson with its server: each sweep
-- checks a batch of the least recently checked lessons, so with more live
-- lessons than a batch every lesson still gets its turn.
ALTER TABLE lesson ADD COLUMN checked_at timestamptz;
CREATE INDEX lesson_live_checked ON lesson (checked_at NULLS FIRST, started_at) WHERE ended_at IS NULL;
