-- Integrity of the audit log: append-only, hash-chained, month-partitioned,
-- with signed checkpoints and a least-privilege application role.
-- The canonical encoding defined here is documented in README.md ("Integrity")
-- and recomputed by src/audit/canonical.ts; keep the three in step.

-- ---------------------------------------------------------------------------
-- The chain head: the last entry's sequence, hash and time. One row, locked by
-- every insert until its transaction ends, so writers chain strictly one after
-- another and a rolled-back insert leaves neither a gap nor a fork.
CREATE TABLE "person_auth_log_head" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "sequence" BIGINT NOT NULL,
    "hash" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "person_auth_log_head_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "person_auth_log_head_single_row" CHECK ("id" = 1)
);
INSERT INTO "person_auth_log_head" ("sequence", "hash", "created_at")
VALUES (0, '\x0000000000000000000000000000000000000000000000000000000000000000', '-infinity');

-- The chain's functions, created in the migration's schema with every name
-- qualified by it (__schema__ below): they run as the owner (SECURITY DEFINER),
-- so a caller's temporary table must never stand in for the head. Qualifying
-- beats "SET search_path" on the function, which costs ~0.2 ms per insert.
DO $migration$
DECLARE
  functions TEXT := $functions$

-- Canonical JSON of a jsonb value: object keys sorted by Unicode code point
-- (byte order of UTF-8, COLLATE "C"), no whitespace, strings escaped as JSON
-- requires (PostgreSQL's escaping equals JavaScript's JSON.stringify), numbers
-- as PostgreSQL prints a numeric (plain decimal, no exponent).
CREATE FUNCTION __schema__.person_auth_log_canonical_json(value JSONB) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  result TEXT;
BEGIN
  CASE jsonb_typeof(value)
    WHEN 'object' THEN
      IF value = '{}' THEN RETURN '{}'; END IF;
      SELECT '{' || string_agg(to_json(member.key)::text || ':' ||
                                 CASE WHEN jsonb_typeof(member.item) IN ('object', 'array')
                                      THEN __schema__.person_auth_log_canonical_json(member.item) ELSE member.item::text END,
                               ',' ORDER BY member.key COLLATE "C") || '}'
        INTO result FROM jsonb_each(value) AS member(key, item);
    WHEN 'array' THEN
      IF value = '[]' THEN RETURN '[]'; END IF;
      SELECT '[' || string_agg(CASE WHEN jsonb_typeof(element.item) IN ('object', 'array')
                                    THEN __schema__.person_auth_log_canonical_json(element.item) ELSE element.item::text END,
                               ',' ORDER BY element.position) || ']'
        INTO result FROM jsonb_array_elements(value) WITH ORDINALITY AS element(item, position);
    ELSE
      result := value::text;
  END CASE;
  RETURN result;
END
$$;

-- The canonical encoding of an entry: the canonical JSON of the object mapping
-- every column except "hash" to its value (uuids lowercase, created_at as
-- ISO 8601 UTC with milliseconds, client_ip as PostgreSQL prints an inet).
-- Keys are written in code point order, as canonical JSON sorts them.
CREATE FUNCTION __schema__.person_auth_log_canonical(
    "sequence" BIGINT, "id" UUID, "created_at" TIMESTAMPTZ, "type" TEXT, "success" BOOLEAN,
    "person_id" UUID, "identity_id" UUID, "target_person_id" UUID, "client_ip" INET, "user_agent" TEXT,
    "person_input_identifier" TEXT, "error_code" TEXT, "metadata" JSONB, "event_data" JSONB
) RETURNS TEXT
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  RETURN '{"client_ip":' || coalesce(to_json("client_ip")::text, 'null')
      || ',"created_at":"' || to_char("created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
      || '","error_code":' || coalesce(to_json("error_code")::text, 'null')
      || ',"event_data":' || __schema__.person_auth_log_canonical_json("event_data")
      || ',"id":"' || "id"::text
      || '","identity_id":' || coalesce('"' || "identity_id"::text || '"', 'null')
      || ',"metadata":' || __schema__.person_auth_log_canonical_json("metadata")
      || ',"person_id":' || coalesce('"' || "person_id"::text || '"', 'null')
      || ',"person_input_identifier":' || coalesce(to_json("person_input_identifier")::text, 'null')
      || ',"sequence":' || "sequence"::text
      || ',"success":' || "success"::text
      || ',"target_person_id":' || coalesce('"' || "target_person_id"::text || '"', 'null')
      || ',"type":' || to_json("type")::text
      || ',"user_agent":' || coalesce(to_json("user_agent")::text, 'null')
      || '}';
END
$$;

-- The default of created_at. Takes the head lock before the row is routed to
-- its partition, and never goes back in time, so the chain order is also the
-- time order and every month partition holds one contiguous run of sequences.
CREATE FUNCTION __schema__.person_auth_log_now() RETURNS TIMESTAMPTZ
LANGUAGE plpgsql VOLATILE SECURITY DEFINER AS $$
DECLARE
  result TIMESTAMPTZ;
BEGIN
  SELECT greatest(date_trunc('milliseconds', clock_timestamp()), head.created_at) INTO result
    FROM __schema__.person_auth_log_head AS head WHERE head.id = 1 FOR UPDATE;
  RETURN result;
END
$$;

-- Links the new row to the head and moves the head to it, in one statement.
CREATE FUNCTION __schema__.person_auth_log_chain() RETURNS TRIGGER
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
  UPDATE __schema__.person_auth_log_head AS head
     SET sequence = head.sequence + 1,
         hash = sha256(head.hash || convert_to(__schema__.person_auth_log_canonical(
                  head.sequence + 1, NEW.id, NEW.created_at, NEW.type, NEW.success, NEW.person_id, NEW.identity_id,
                  NEW.target_person_id, NEW.client_ip, NEW.user_agent, NEW.person_input_identifier, NEW.error_code,
                  NEW.metadata, NEW.event_data), 'UTF8')),
         created_at = NEW.created_at
   WHERE head.id = 1 AND head.created_at <= NEW.created_at
  RETURNING head.sequence, head.hash INTO NEW.sequence, NEW.hash;
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

-- Append-only, for every role including the owner and superusers. The
-- argument names the table (partitions report their parent).
CREATE FUNCTION "custos_reject_change"() RETURNS TRIGGER
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % is not allowed', coalesce(TG_ARGV[0], TG_TABLE_NAME), TG_OP
    USING ERRCODE = 'insufficient_privilege', HINT = 'Retention drops whole partitions; nothing else removes entries.';
END
$$;

-- ---------------------------------------------------------------------------
-- person_auth_log, now partitioned by month of created_at and chained. The old
-- table's rows are copied through the chain trigger in time order.
ALTER TABLE "person_auth_log" RENAME TO "person_auth_log_unchained";
ALTER TABLE "person_auth_log_unchained" RENAME CONSTRAINT "person_auth_log_pkey" TO "person_auth_log_unchained_pkey";
ALTER TABLE "person_auth_log_unchained" RENAME CONSTRAINT "person_auth_log_type_check" TO "person_auth_log_unchained_type_check";
DROP INDEX "person_auth_log_created_at_id_idx";
DROP INDEX "person_auth_log_target_person_id_created_at_idx";
DROP INDEX "person_auth_log_person_id_created_at_idx";
DROP INDEX "person_auth_log_identity_id_created_at_idx";
DROP INDEX "person_auth_log_type_created_at_idx";
DROP INDEX "person_auth_log_person_input_identifier_created_at_idx";

CREATE TABLE "person_auth_log" (
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "success" BOOLEAN NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT person_auth_log_now(),
    "person_id" UUID,
    "identity_id" UUID,
    "target_person_id" UUID,
    "client_ip" INET,
    "user_agent" TEXT,
    "person_input_identifier" TEXT,
    "error_code" TEXT,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "event_data" JSONB NOT NULL DEFAULT '{}',
    -- Position in the chain (1, 2, 3, … without gaps) and
    -- sha256(previous entry's hash || canonical encoding); both set by the chain trigger.
    "sequence" BIGINT NOT NULL,
    "hash" BYTEA NOT NULL,
    CONSTRAINT "person_auth_log_pkey" PRIMARY KEY ("id", "created_at"),
    -- Keep in step with src/audit/catalog.ts (a test compares them).
    CONSTRAINT "person_auth_log_type_check" CHECK ("type" IN (
        'login', 'create_session_token', 'idp_login',
        'passwordless_login_init', 'passwordless_login_exchange', 'passwordless_login',
        'password_reset_init', 'password_reset', 'password_change', 'email_change',
        '2fa_enable', '2fa_disable', 'session_revoked_by_user', 'forced_sign_out',
        'person_disabled', 'global_role_grant', 'global_role_revoke',
        'project_membership_create', 'project_membership_update', 'project_membership_remove',
        'api_key_create', 'api_key_disable',
        'idp_create', 'idp_update', 'idp_disable', 'idp_enable',
        'project_create', 'project_update', 'project_secret_change',
        'mail_template_change', 'tenant_config_change', 'person_invite',
        'auth_log_retention', 'auth_log_export', 'auth_log_read'
    ))
) PARTITION BY RANGE ("created_at");
CREATE INDEX "person_auth_log_created_at_id_idx" ON "person_auth_log"("created_at" DESC, "id" DESC);
CREATE INDEX "person_auth_log_target_person_id_created_at_idx" ON "person_auth_log"("target_person_id", "created_at" DESC);
CREATE INDEX "person_auth_log_person_id_created_at_idx" ON "person_auth_log"("person_id", "created_at" DESC);
CREATE INDEX "person_auth_log_identity_id_created_at_idx" ON "person_auth_log"("identity_id", "created_at" DESC);
CREATE INDEX "person_auth_log_type_created_at_idx" ON "person_auth_log"("type", "created_at" DESC);
CREATE INDEX "person_auth_log_person_input_identifier_created_at_idx" ON "person_auth_log"("person_input_identifier", "created_at" DESC);
-- Verification reads the chain in sequence order, in keyset batches.
CREATE INDEX "person_auth_log_sequence_id_idx" ON "person_auth_log"("sequence", "id");

-- Creates the partition for the month starting at month_start (UTC), unless it
-- exists or the default partition already holds rows of that month (they stay
-- there). Returns the new partition's name, or NULL. Runs as the owner, so the
-- application role can keep partitions ahead without owning the table.
CREATE FUNCTION "person_auth_log_create_partition"(month_start DATE) RETURNS TEXT
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  range_start TIMESTAMPTZ := date_trunc('month', month_start::timestamp) AT TIME ZONE 'UTC';
  range_end TIMESTAMPTZ := (date_trunc('month', month_start::timestamp) + interval '1 month') AT TIME ZONE 'UTC';
  partition_name TEXT := 'person_auth_log_' || to_char(month_start, 'YYYY_MM');
BEGIN
  IF to_regclass(quote_ident(partition_name)) IS NOT NULL THEN
    RETURN NULL;
  END IF;
  IF EXISTS (SELECT 1 FROM "person_auth_log_default" WHERE "created_at" >= range_start AND "created_at" < range_end) THEN
    RAISE WARNING 'person_auth_log_default holds entries of %; % is not created', to_char(month_start, 'YYYY-MM'), partition_name;
    RETURN NULL;
  END IF;
  EXECUTE format('CREATE TABLE %I PARTITION OF "person_auth_log" FOR VALUES FROM (%L) TO (%L)',
                 partition_name, range_start, range_end);
  PERFORM person_auth_log_protect_partition(partition_name);
  RETURN partition_name;
END
$$;

CREATE FUNCTION "person_auth_log_protect_partition"(partition_name TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('CREATE OR REPLACE TRIGGER "person_auth_log_no_truncate" BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION custos_reject_change(''person_auth_log'')', partition_name);
  -- Default privileges may have granted the application role more; it reaches rows through the parent only.
  EXECUTE format('REVOKE ALL ON %I FROM PUBLIC', partition_name);
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'custos_app') THEN
    EXECUTE format('REVOKE ALL ON %I FROM custos_app', partition_name);
  END IF;
END
$$;

-- Run as the owner: resolve names in this schema only, with pg_temp last.
DO $$
BEGIN
  EXECUTE format('ALTER FUNCTION person_auth_log_create_partition(date) SET search_path = %I, pg_temp', current_schema());
  EXECUTE format('ALTER FUNCTION person_auth_log_protect_partition(text) SET search_path = %I, pg_temp', current_schema());
END
$$;

-- Inserts never fail for want of a partition: a month without one lands here.
CREATE TABLE "person_auth_log_default" PARTITION OF "person_auth_log" DEFAULT;
SELECT person_auth_log_protect_partition('person_auth_log_default');

-- Months holding existing entries, then this month and the next three.
SELECT person_auth_log_create_partition(month::date)
  FROM (SELECT DISTINCT date_trunc('month', "created_at" AT TIME ZONE 'UTC') AS month FROM "person_auth_log_unchained"
        UNION
        SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => ahead) FROM generate_series(0, 3) AS ahead) AS months
 ORDER BY month;

-- The existing rows, chained in time order before the chain trigger exists:
-- one pass carrying the previous hash in a variable. (Through the trigger, one
-- transaction would update the head row once per row, slower with every row.)
DO $$
DECLARE
  entry RECORD;
  next_sequence BIGINT := 0;
  previous BYTEA := '\x0000000000000000000000000000000000000000000000000000000000000000';
  last_created_at TIMESTAMPTZ := '-infinity';
BEGIN
  FOR entry IN SELECT * FROM "person_auth_log_unchained" ORDER BY "created_at", "id" LOOP
    next_sequence := next_sequence + 1;
    previous := sha256(previous || convert_to(person_auth_log_canonical(
      next_sequence, entry.id, entry.created_at, entry.type, entry.success, entry.person_id, entry.identity_id,
      entry.target_person_id, entry.client_ip, entry.user_agent, entry.person_input_identifier, entry.error_code,
      entry.metadata, entry.event_data), 'UTF8'));
    INSERT INTO "person_auth_log" ("id", "type", "success", "created_at", "person_id", "identity_id", "target_person_id",
                                   "client_ip", "user_agent", "person_input_identifier", "error_code", "metadata",
                                   "event_data", "sequence", "hash")
    VALUES (entry.id, entry.type, entry.success, entry.created_at, entry.person_id, entry.identity_id, entry.target_person_id,
            entry.client_ip, entry.user_agent, entry.person_input_identifier, entry.error_code, entry.metadata,
            entry.event_data, next_sequence, previous);
    last_created_at := entry.created_at;
  END LOOP;
  UPDATE "person_auth_log_head" SET "sequence" = next_sequence, "hash" = previous, "created_at" = last_created_at;
END
$$;
DROP TABLE "person_auth_log_unchained";

-- Fires after every other BEFORE INSERT trigger (triggers fire in name order),
-- so the hash covers the row exactly as stored.
CREATE TRIGGER "zz_person_auth_log_chain" BEFORE INSERT ON "person_auth_log"
    FOR EACH ROW EXECUTE FUNCTION person_auth_log_chain();
CREATE TRIGGER "person_auth_log_append_only" BEFORE UPDATE OR DELETE ON "person_auth_log"
    FOR EACH ROW EXECUTE FUNCTION custos_reject_change('person_auth_log');
-- Statement triggers are not inherited: each partition gets its own (below).
CREATE TRIGGER "person_auth_log_no_truncate" BEFORE TRUNCATE ON "person_auth_log"
    FOR EACH STATEMENT EXECUTE FUNCTION custos_reject_change('person_auth_log');

-- ---------------------------------------------------------------------------
-- Signed checkpoints: "the chain had this hash at this sequence", signed with
-- the server's Ed25519 key over
--   custos-audit/v1\n<sequence>\n<hash, lowercase hex>\n<created_at, ISO 8601 UTC with ms>\n
CREATE TYPE "auth_log_checkpoint_reason" AS ENUM ('interval', 'on_demand', 'retention');

CREATE TABLE "person_auth_log_checkpoint" (
    "id" UUID NOT NULL,
    "sequence" BIGINT NOT NULL,
    "hash" BYTEA NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "signature" BYTEA NOT NULL,
    "reason" "auth_log_checkpoint_reason" NOT NULL,
    CONSTRAINT "person_auth_log_checkpoint_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "person_auth_log_checkpoint_sequence_idx" ON "person_auth_log_checkpoint"("sequence");
CREATE TRIGGER "person_auth_log_checkpoint_append_only" BEFORE UPDATE OR DELETE ON "person_auth_log_checkpoint"
    FOR EACH ROW EXECUTE FUNCTION custos_reject_change();
CREATE TRIGGER "person_auth_log_checkpoint_no_truncate" BEFORE TRUNCATE ON "person_auth_log_checkpoint"
    FOR EACH STATEMENT EXECUTE FUNCTION custos_reject_change();

-- ---------------------------------------------------------------------------
-- The least-privilege application role. Roles are cluster-wide and many
-- databases (tests, tenants) may run this at once: whoever loses the race to
-- create it uses the winner's. A migration role without CREATEROLE needs the
-- administrator to create the role before this runs (README, "Integrity").
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'custos_app') THEN
    CREATE ROLE custos_app NOLOGIN;
  END IF;
EXCEPTION
  WHEN duplicate_object OR unique_violation THEN NULL;
  WHEN insufficient_privilege THEN
    RAISE WARNING 'role custos_app not created (%): create it (CREATE ROLE custos_app NOLOGIN) before this migration runs, or run the application as the owner', SQLERRM;
END
$$;

DO $$
DECLARE
  schema_name TEXT := current_schema();
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'custos_app') THEN
    RETURN;
  END IF;
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO custos_app', schema_name);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO custos_app', schema_name);
  -- Tables later migrations create get the same.
  EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO custos_app', schema_name);
  -- The log: read, and insert only the columns the application decides; created_at, sequence and hash are the database's.
  REVOKE ALL ON "person_auth_log" FROM custos_app;
  GRANT SELECT ON "person_auth_log" TO custos_app;
  GRANT INSERT ("id", "type", "success", "person_id", "identity_id", "target_person_id", "client_ip", "user_agent",
                "person_input_identifier", "error_code", "metadata", "event_data") ON "person_auth_log" TO custos_app;
  REVOKE ALL ON "person_auth_log_checkpoint" FROM custos_app;
  GRANT SELECT, INSERT ON "person_auth_log_checkpoint" TO custos_app;
  REVOKE ALL ON "person_auth_log_head" FROM custos_app;
  GRANT SELECT ON "person_auth_log_head" TO custos_app;
  REVOKE ALL ON "_prisma_migrations" FROM custos_app;
  GRANT SELECT ON "_prisma_migrations" TO custos_app;
  PERFORM person_auth_log_protect_partition(child.relname)
     FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid
    WHERE pg_inherits.inhparent = '"person_auth_log"'::regclass;
  GRANT EXECUTE ON FUNCTION person_auth_log_create_partition(DATE) TO custos_app;
END
$$;
REVOKE EXECUTE ON FUNCTION person_auth_log_create_partition(DATE) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION person_auth_log_protect_partition(TEXT) FROM PUBLIC;
