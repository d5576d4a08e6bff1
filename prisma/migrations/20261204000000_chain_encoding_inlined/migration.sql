-- The chain trigger's encoding, inlined. The SQL functions that build its parts were declared
-- IMMUTABLE over bodies that are only STABLE (to_json, to_char), which the planner refuses to
-- inline: every call ran through the SQL-function executor, which parses and plans the body anew
-- in each transaction, one of them (the time) under the chain lock. That was 9.7% of all CPU with
-- 16 writers. STABLE is what the bodies are, and lets them inline; the middle part becomes SQL too,
-- calling the plpgsql canonical JSON only for a non-empty object.
-- The encoding is unchanged, byte for byte.
DO $migration$
DECLARE
  functions TEXT := $functions$

ALTER FUNCTION __schema__.person_auth_log_canonical_time(TIMESTAMPTZ) STABLE;
ALTER FUNCTION __schema__.person_auth_log_canonical_opening(INET) STABLE;
ALTER FUNCTION __schema__.person_auth_log_canonical_closing(TEXT, BOOLEAN, UUID, TEXT) STABLE;

CREATE OR REPLACE FUNCTION __schema__.person_auth_log_canonical_middle(
    "id" UUID, "person_id" UUID, "identity_id" UUID, "person_input_identifier" TEXT, "error_code" TEXT,
    "metadata" JSONB, "event_data" JSONB
) RETURNS TEXT
LANGUAGE sql STABLE PARALLEL SAFE
RETURN '","error_code":' || coalesce(to_json("error_code")::text, 'null')
    || ',"event_data":' || CASE WHEN "event_data" = '{}' THEN '{}' ELSE __schema__.person_auth_log_canonical_json("event_data") END
    || ',"id":"' || "id"::text
    || '","identity_id":' || coalesce('"' || "identity_id"::text || '"', 'null')
    || ',"metadata":' || CASE WHEN "metadata" = '{}' THEN '{}' ELSE __schema__.person_auth_log_canonical_json("metadata") END
    || ',"person_id":' || coalesce('"' || "person_id"::text || '"', 'null')
    || ',"person_input_identifier":' || coalesce(to_json("person_input_identifier")::text, 'null')
    || ',"sequence":';

$functions$;
BEGIN
  EXECUTE replace(functions, '__schema__.', quote_ident(current_schema()) || '.');
END
$migration$;
