-- The event-trigger tables Hasura v2 creates in its source database
-- (graphql-engine server/src-rsr/init_pg_source.sql, source catalog 3):
-- same columns, types, defaults and indexes, so the cleanup is tested
-- against what it will meet.
CREATE SCHEMA hdb_catalog;

CREATE FUNCTION hdb_catalog.gen_hasura_uuid() RETURNS uuid AS 'select gen_random_uuid()' LANGUAGE SQL;

CREATE TABLE hdb_catalog.event_log (
  id            TEXT DEFAULT hdb_catalog.gen_hasura_uuid() PRIMARY KEY,
  schema_name   TEXT NOT NULL,
  table_name    TEXT NOT NULL,
  trigger_name  TEXT NOT NULL,
  payload       JSONB NOT NULL,
  delivered     BOOLEAN NOT NULL DEFAULT FALSE,
  error         BOOLEAN NOT NULL DEFAULT FALSE,
  tries         INTEGER NOT NULL DEFAULT 0,
  created_at    TIMESTAMP DEFAULT NOW(),
  locked        TIMESTAMPTZ,
  next_retry_at TIMESTAMP,
  archived      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX ON hdb_catalog.event_log (trigger_name);
CREATE INDEX event_log_fetch_events ON hdb_catalog.event_log (locked NULLS FIRST, next_retry_at NULLS FIRST, created_at)
  WHERE delivered = 'f' AND error = 'f' AND archived = 'f';

CREATE TABLE hdb_catalog.event_invocation_logs (
  id           TEXT DEFAULT hdb_catalog.gen_hasura_uuid() PRIMARY KEY,
  trigger_name TEXT,
  event_id     TEXT,
  status       INTEGER,
  request      JSON,
  response     JSON,
  created_at   TIMESTAMP DEFAULT NOW()
);
CREATE INDEX ON hdb_catalog.event_invocation_logs (event_id);
