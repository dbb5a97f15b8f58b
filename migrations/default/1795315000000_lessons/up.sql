-- Online lessons (TeleKlasa): class groups with students who join by a
-- personal access token, moderators (teachers) who start lessons, and the
-- pool of BigBlueButton servers lessons are spread over.
--
-- Secrets live in tables Hasura does not track (bbb_server_secret,
-- lesson_secret), so no role — not even Hasura's admin — can read them
-- through GraphQL.

CREATE TABLE moderator (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id         text NOT NULL UNIQUE CHECK (char_length(user_id) BETWEEN 1 AND 200),
  display_name    text NOT NULL CHECK (char_length(btrim(display_name)) BETWEEN 1 AND 100),
  -- The quick-login link's token: 32 bytes from crypto/rand, shown once;
  -- only its SHA-256 is kept.
  link_token_hash bytea UNIQUE CHECK (octet_length(link_token_hash) = 32),
  link_token_hint text,
  link_created_at timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER moderator_updated_at BEFORE UPDATE ON moderator FOR EACH ROW EXECUTE FUNCTION set_updated_at();
COMMENT ON COLUMN moderator.user_id IS 'The Hasura user id (x-hasura-user-id) of the teacher';
COMMENT ON COLUMN moderator.display_name IS 'Name shown in BigBlueButton when this moderator joins';

CREATE TABLE lesson_group (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text NOT NULL CHECK (char_length(btrim(name)) BETWEEN 1 AND 100),
  region     text NOT NULL CHECK (region ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  school_id  uuid REFERENCES school (id),
  created_by text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER lesson_group_updated_at BEFORE UPDATE ON lesson_group FOR EACH ROW EXECUTE FUNCTION set_updated_at();
COMMENT ON TABLE lesson_group IS 'A class group ("6-A") that has live lessons together';

CREATE TABLE group_moderator (
  group_id     uuid NOT NULL REFERENCES lesson_group (id) ON DELETE CASCADE,
  moderator_id uuid NOT NULL REFERENCES moderator (id) ON DELETE CASCADE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, moderator_id)
);
CREATE INDEX group_moderator_moderator ON group_moderator (moderator_id);

-- A student's access token is 6 characters from 1–9 and A–Z without O (no
-- 0/O to confuse), stored upper case and matched case-insensitively by
-- upper-casing what was typed.
CREATE TABLE group_student (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  group_id       uuid NOT NULL REFERENCES lesson_group (id) ON DELETE CASCADE,
  display_name   text NOT NULL CHECK (char_length(btrim(display_name)) BETWEEN 1 AND 100),
  access_token   text NOT NULL UNIQUE CHECK (access_token ~ '^[1-9A-NP-Z]{6}$'),
  last_joined_at timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_student_group ON group_student (group_id);
CREATE TRIGGER group_student_updated_at BEFORE UPDATE ON group_student FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE bbb_server (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  hostname           text NOT NULL UNIQUE CHECK (hostname ~ '^[a-z0-9.:\[\]-]{1,255}$'),
  api_url            text NOT NULL CHECK (api_url ~ '^https?://.+/api/$'),
  checksum_algorithm text NOT NULL DEFAULT 'sha256' CHECK (checksum_algorithm IN ('sha1', 'sha256', 'sha512')),
  enabled            boolean NOT NULL DEFAULT false,
  disabled_reason    text CHECK (char_length(disabled_reason) <= 500),
  disabled_by        text CHECK (disabled_by ~ '^(operator(:.{1,200})?|alert|unreachable|registration)$'),
  disabled_at        timestamptz,
  region             text NOT NULL CHECK (region ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  cpu_count          int NOT NULL DEFAULT 1 CHECK (cpu_count BETWEEN 1 AND 1024),
  load_5m            double precision NOT NULL DEFAULT 0 CHECK (load_5m >= 0),
  users              int NOT NULL DEFAULT 0 CHECK (users >= 0),
  meetings           int NOT NULL DEFAULT 0 CHECK (meetings >= 0),
  capacity           int NOT NULL CHECK (capacity BETWEEN 1 AND 100000),
  booked             int NOT NULL DEFAULT 0 CHECK (booked >= 0),
  last_heartbeat_at  timestamptz,
  last_assigned_at   timestamptz,
  created_by         text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  CHECK (enabled OR disabled_by IS NOT NULL)
);
CREATE TRIGGER bbb_server_updated_at BEFORE UPDATE ON bbb_server FOR EACH ROW EXECUTE FUNCTION set_updated_at();
COMMENT ON COLUMN bbb_server.hostname IS 'host[:port] of the API URL; heartbeats and alerts name the server by it';
COMMENT ON COLUMN bbb_server.disabled_by IS 'operator[:user id] (disableBBBServer or the console), alert (bbb_alerts cron), unreachable (a failed call; a heartbeat and a connection check re-enable it), registration (self-registered, connection not yet checked)';
COMMENT ON COLUMN bbb_server.users IS 'Users on the server at its last heartbeat';
COMMENT ON COLUMN bbb_server.booked IS 'Seats booked by lessons running on this server: the roster sizes, added in the transaction that chose the server';

-- Enabling clears the disabled fields; disabling without saying who (an
-- admin flipping enabled in the console) counts as an operator, whom no
-- heartbeat or alert overrides.
CREATE FUNCTION bbb_server_enabled() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.enabled THEN
    NEW.disabled_reason := NULL;
    NEW.disabled_by := NULL;
    NEW.disabled_at := NULL;
  ELSIF NEW.disabled_by IS NULL THEN
    NEW.disabled_by := 'operator';
  END IF;
  IF NOT NEW.enabled AND (TG_OP = 'INSERT' OR OLD.enabled) THEN
    NEW.disabled_at := coalesce(NEW.disabled_at, now());
  END IF;
  RETURN NEW;
END;
$$;
CREATE TRIGGER bbb_server_enabled BEFORE INSERT OR UPDATE OF enabled, disabled_by ON bbb_server
  FOR EACH ROW EXECUTE FUNCTION bbb_server_enabled();

-- Not tracked by Hasura: no role can read API secrets.
CREATE TABLE bbb_server_secret (
  server_id  uuid PRIMARY KEY REFERENCES bbb_server (id) ON DELETE CASCADE,
  secret     text NOT NULL CHECK (char_length(secret) BETWEEN 8 AND 256),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE group_preferred_server (
  group_id  uuid NOT NULL REFERENCES lesson_group (id) ON DELETE CASCADE,
  server_id uuid NOT NULL REFERENCES bbb_server (id) ON DELETE CASCADE,
  priority  int NOT NULL DEFAULT 1 CHECK (priority BETWEEN 1 AND 1000),
  PRIMARY KEY (group_id, server_id)
);
COMMENT ON COLUMN group_preferred_server.priority IS '1 is tried first';

CREATE TABLE lesson (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  group_id           uuid NOT NULL REFERENCES lesson_group (id) ON DELETE CASCADE,
  server_id          uuid REFERENCES bbb_server (id),
  meeting_id         text NOT NULL UNIQUE CHECK (char_length(meeting_id) BETWEEN 2 AND 256 AND meeting_id !~ ','),
  moderator_id       uuid REFERENCES moderator (id) ON DELETE SET NULL,
  status             text NOT NULL DEFAULT 'starting' CHECK (status IN ('starting', 'running', 'ended', 'failed')),
  expected_attendees int NOT NULL CHECK (expected_attendees >= 0),
  booked             int NOT NULL DEFAULT 0 CHECK (booked >= 0),
  create_time        bigint,
  servers_tried      int NOT NULL DEFAULT 0,
  started_at         timestamptz NOT NULL DEFAULT now(),
  ended_at           timestamptz,
  end_reason         text CHECK (char_length(end_reason) <= 500),
  CHECK ((status IN ('ended', 'failed')) = (ended_at IS NOT NULL)),
  CHECK (ended_at IS NULL OR booked = 0)
);
-- One live lesson per group: two concurrent starts cannot make two meetings.
CREATE UNIQUE INDEX lesson_live_group ON lesson (group_id) WHERE ended_at IS NULL;
CREATE INDEX lesson_live_server ON lesson (server_id) WHERE ended_at IS NULL;
CREATE INDEX lesson_group_started ON lesson (group_id, started_at DESC);
COMMENT ON COLUMN lesson.booked IS 'Seats held on server_id (the roster size) until the lesson ends';
COMMENT ON COLUMN lesson.create_time IS 'BBB createTime of the meeting session (join links are valid for it only)';

-- Not tracked by Hasura: join passwords (for BBB servers older than 2.4).
CREATE TABLE lesson_secret (
  lesson_id    uuid PRIMARY KEY REFERENCES lesson (id) ON DELETE CASCADE,
  attendee_pw  text NOT NULL,
  moderator_pw text NOT NULL
);

-- Join links handed out: with getMeetingInfo's attendee list, they bound the
-- live sessions per token (a link handed out in the last minute counts even
-- before its browser has reached the meeting).
CREATE TABLE lesson_join (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  lesson_id  uuid NOT NULL REFERENCES lesson (id) ON DELETE CASCADE,
  student_id uuid NOT NULL REFERENCES group_student (id) ON DELETE CASCADE,
  granted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lesson_join_student ON lesson_join (student_id, granted_at);
CREATE INDEX lesson_join_lesson ON lesson_join (lesson_id);
