-- The per-email backoff of password reset and passwordless requests matches the typed email
-- case-insensitively and without surrounding spaces (src/tenant/auth/throttle.ts, identifierAttemptsSql),
-- so that spelling an email differently does not start a fresh backoff.
CREATE INDEX IF NOT EXISTS "person_auth_log_input_identifier_folded_created_at_idx"
  ON "person_auth_log" (lower(btrim("person_input_identifier")), "created_at" DESC);
