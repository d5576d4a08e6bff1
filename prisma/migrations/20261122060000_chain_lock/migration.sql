-- A shorter hold of the chain head. Until now the created_at default locked the
-- head, so everything after it (the canonical encoding, its canonical JSON in
-- plpgsql, hashing, the row and its index entries) ran while every other writer
-- waited. Now the encoding is built before the lock in parts around the two
-- columns that depend on the head (created_at, which never precedes the
-- previous entry's, and the sequence number), and under the lock only those
-- two and one sha256 over the parts are computed.
-- The encoding itself is unchanged, byte for byte.
DO $migration$
DECLARE
  functions TEXT := $functions$

-- created_at as the encoding writes it: ISO 8601 UTC with milliseconds.
CREATE FUNCTION __schema__.person_auth_log_canonical_time("created_at" TIMESTAMPTZ) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_char("created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');

-- The encoding in parts around the two columns that may need the head:
-- '{"client_ip":…,"created_at":"' || time || middle || sequence || closing.
CREATE FUNCTION __schema__.person_auth_log_canonical_opening("client_ip" INET) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN '{"client_ip":' || coalesce(to_json("client_ip")::text, 'null') || ',"created_at":"';

-- From the quote closing created_at to '"sequence":' (keys in code point order).
CREATE FUNCTION __schema__.person_auth_log_canonical_middle(
    "id" UUID, "person_id" UUID, "identity_id" UUID, "person_input_identifier" TEXT, "error_code" TEXT,
    "metadata" JSONB, "event_data" JSONB
) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN '","error_code":' || coalesce(to_json("error_code")::text, 'null')
      || ',"event_data":' || __schema__.person_auth_log_canonical_json("event_data")
      || ',"id":"' || "id"::text
      || '","identity_id":' || coalesce('"' || "identity_id"::text || '"', 'null')
      || ',"metadata":' || __schema__.person_auth_log_canonical_json("metadata")
      || ',"person_id":' || coalesce('"' || "person_id"::text || '"', 'null')
      || ',"person_input_identifier":' || coalesce(to_json("person_input_identifier")::text, 'null')
      || ',"sequence":';
END
$$;

-- From the comma after the sequence number to the end.
CREATE FUNCTION __schema__.person_auth_log_canonical_closing(
    "type" TEXT, "success" BOOLEAN, "target_person_id" UUID, "user_agent" TEXT
) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN ',"success":' || "success"::text
    || ',"target_person_id":' || coalesce('"' || "target_person_id"::text || '"', 'null')
    || ',"type":' || to_json("type")::text
    || ',"user_agent":' || coalesce(to_json("user_agent")::text, 'null')
    || '}';

-- The whole encoding, as before, from its parts.
CREATE OR REPLACE FUNCTION __schema__.person_auth_log_canonical(
    "sequence" BIGINT, "id" UUID, "created_at" TIMESTAMPTZ, "type" TEXT, "success" BOOLEAN,
    "person_id" UUID, "identity_id" UUID, "target_person_id" UUID, "client_ip" INET, "user_agent" TEXT,
    "person_input_identifier" TEXT, "error_code" TEXT, "metadata" JSONB, "event_data" JSONB
) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN __schema__.person_auth_log_canonical_opening("client_ip")
      || __schema__.person_auth_log_canonical_time("created_at")
      || __schema__.person_auth_log_canonical_middle(
           "id", "person_id", "identity_id", "person_input_identifier", "error_code", "metadata", "event_data")
      || "sequence"::text
      || __schema__.person_auth_log_canonical_closing("type", "success", "target_person_id", "user_agent");
END
$$;

-- The default of created_at: the clock, never before the last committed
-- entry. It no longer locks the head: a writer that waits for the head while
-- others commit may find the head later than this value, and the chain
-- trigger then moves it up to the head's (only a value this default chose,
-- which it remembers for the trigger: never one a caller gave). Close to the
-- end of a month it still locks first, as a row must not be moved out of the
-- partition it was routed to.
CREATE OR REPLACE FUNCTION __schema__.person_auth_log_now() RETURNS TIMESTAMPTZ
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
DECLARE
  result TIMESTAMPTZ;
BEGIN
  SELECT greatest(date_trunc('milliseconds', clock_timestamp()), head.created_at) INTO result
    FROM __schema__.person_auth_log_head AS head WHERE head.id = 1;
  IF date_trunc('month', result AT TIME ZONE 'UTC') <> date_trunc('month', (result + interval '1 minute') AT TIME ZONE 'UTC') THEN
    SELECT greatest(date_trunc('milliseconds', clock_timestamp()), head.created_at) INTO result
      FROM __schema__.person_auth_log_head AS head WHERE head.id = 1 FOR UPDATE;
  END IF;
  PERFORM set_config('custos.person_auth_log_now', extract(epoch FROM result)::text, true);
  RETURN result;
END
$$;

-- Links the new row to the head and moves the head to it, in one statement.
-- The costly parts of the encoding are built before it; the UPDATE takes the
-- head, and when it had to wait it recomputes against the head's new version
-- (EvalPlanQual) only the time, the sequence number and one sha256.
CREATE OR REPLACE FUNCTION __schema__.person_auth_log_chain() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  opening BYTEA := convert_to(__schema__.person_auth_log_canonical_opening(NEW.client_ip), 'UTF8');
  middle BYTEA := convert_to(__schema__.person_auth_log_canonical_middle(
                    NEW.id, NEW.person_id, NEW.identity_id, NEW.person_input_identifier, NEW.error_code,
                    NEW.metadata, NEW.event_data), 'UTF8');
  closing BYTEA := convert_to(__schema__.person_auth_log_canonical_closing(
                     NEW.type, NEW.success, NEW.target_person_id, NEW.user_agent), 'UTF8');
  chosen_by_default BOOLEAN := extract(epoch FROM NEW.created_at)::text = current_setting('custos.person_auth_log_now', true);
BEGIN
  UPDATE __schema__.person_auth_log_head AS head
     SET sequence = head.sequence + 1,
         created_at = greatest(head.created_at, NEW.created_at),
         hash = sha256(head.hash || opening
                       || convert_to(__schema__.person_auth_log_canonical_time(greatest(head.created_at, NEW.created_at)), 'UTF8')
                       || middle || convert_to((head.sequence + 1)::text, 'UTF8') || closing)
   WHERE head.id = 1 AND (head.created_at <= NEW.created_at OR chosen_by_default)
  RETURNING head.sequence, head.hash, head.created_at INTO NEW.sequence, NEW.hash, NEW.created_at;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'person_auth_log.created_at % precedes the previous entry''s', NEW.created_at
      USING ERRCODE = 'check_violation', HINT = 'Leave created_at to its default.';
  END IF;
  RETURN NEW;
END
$$;

$functions$;
BEGIN
  EXECUTE replace(functions, '__schema__.', quote_ident(current_schema()) || '.');
END
$migration$;
