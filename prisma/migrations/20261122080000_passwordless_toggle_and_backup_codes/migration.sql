-- Passwordless sign-in turned on and off by the person (enableMyPasswordless, disableMyPasswordless)
-- and TOTP backup codes (regenerateBackupCodes).

-- TOTP backup codes: only the sha256 (hex) of each single-use code is stored. custos_app gets
-- SELECT, INSERT, UPDATE, DELETE on the new table through the default privileges of
-- 20261122030000_integrity.
CREATE TABLE "person_backup_code" (
    "id" UUID NOT NULL,
    "person_id" UUID NOT NULL,
    "code_hash" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "person_backup_code_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "person_backup_code_person_id_fkey" FOREIGN KEY ("person_id") REFERENCES "person"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "person_backup_code_code_hash_key" ON "person_backup_code"("code_hash");
CREATE INDEX "person_backup_code_person_id_idx" ON "person_backup_code"("person_id");

-- New event types passwordless_enable, passwordless_disable and 2fa_backup_codes_regenerate, in
-- one replacement of the constraint: each replacement checks every stored entry again. The list
-- only grows, so every stored entry passes.
-- Keep in step with src/audit/catalog.ts (a test compares them).
ALTER TABLE "person_auth_log" DROP CONSTRAINT "person_auth_log_type_check";
ALTER TABLE "person_auth_log" ADD CONSTRAINT "person_auth_log_type_check" CHECK ("type" IN (
    'login', 'create_session_token', 'idp_login',
    'passwordless_login_init', 'passwordless_login_exchange', 'passwordless_login',
    'passwordless_enable', 'passwordless_disable',
    'password_reset_init', 'password_reset', 'password_change', 'email_change',
    '2fa_enable', '2fa_disable', '2fa_backup_codes_regenerate', 'session_revoked_by_user', 'forced_sign_out',
    'person_disabled', 'global_role_grant', 'global_role_revoke',
    'project_membership_create', 'project_membership_update', 'project_membership_remove',
    'api_key_create', 'api_key_disable',
    'idp_create', 'idp_update', 'idp_disable', 'idp_enable',
    'project_create', 'project_update', 'project_secret_change',
    'mail_template_change', 'tenant_config_change', 'person_invite',
    'auth_log_retention', 'auth_log_export', 'auth_log_read', 'auth_log_checkpoint'
));
