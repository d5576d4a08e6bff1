-- The integrity migration rebuilt person_auth_log as a partitioned table with the indexes it knew
-- of; this restores the per-IP rate limit index of 20261122010000_auth on the rebuilt table.
CREATE INDEX IF NOT EXISTS "person_auth_log_client_ip_type_created_at_idx" ON "person_auth_log"("client_ip", "type", "created_at" DESC);
