-- Reading the log at scale: indexes for the authLog filters, export and analytics.
-- Only adds to person_auth_log, and every statement is valid on a partitioned table too
-- (CREATE INDEX on the parent cascades to the partitions; no CONCURRENTLY inside a migration).

-- success = false is rare; without its own index a page of failures would walk the whole time index.
CREATE INDEX "person_auth_log_success_created_at_id_idx" ON "person_auth_log"("success", "created_at" DESC, "id" DESC);

-- clientIp: a B-tree serves `client_ip <<= '10.0.0.0/8'` too (PostgreSQL rewrites it into a range).
CREATE INDEX "person_auth_log_client_ip_created_at_idx" ON "person_auth_log"("client_ip", "created_at" DESC);

-- q: case-insensitive substring search through one trigram index over the searchable text.
-- The expression must stay identical to SEARCH_TEXT in src/audit/query.ts (a test proves the
-- index serves it). Where pg_trgm is not installed the search still works, by scanning.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
    CREATE INDEX "person_auth_log_search_trgm_idx" ON "person_auth_log" USING gin ((
      coalesce("person_input_identifier", '') || E'\n' || coalesce("error_code", '') || E'\n' ||
      coalesce("user_agent", '') || E'\n' || "metadata"::text || E'\n' || "event_data"::text
    ) gin_trgm_ops);
  ELSE
    RAISE NOTICE 'pg_trgm is not available: authLog q will scan instead of using an index';
  END IF;
END
$$;
