-- New event types sign_up (signUp, refusals too), logout (signOut) and name_change (changeProfile,
-- changeMyProfile), in one replacement of the constraint: each replacement checks every stored
-- entry again. The list only grows, so every stored entry passes.
-- Keep in step with src/audit/catalog.ts (a test compares them).
ALTER TABLE "person_auth_log" DROP CONSTRAINT "person_auth_log_type_check";
ALTER TABLE "person_auth_log" ADD CONSTRAINT "person_auth_log_type_check" CHECK ("type" IN (
    'login', 'create_session_token', 'idp_login', 'sign_up', 'logout',
    'passwordless_login_init', 'passwordless_login_exchange', 'passwordless_login',
    'passwordless_enable', 'passwordless_disable',
    'password_reset_init', 'password_reset', 'password_change', 'email_change', 'name_change',
    '2fa_enable', '2fa_disable', '2fa_backup_codes_regenerate', 'session_revoked_by_user', 'forced_sign_out',
    'person_disabled', 'global_role_grant', 'global_role_revoke',
    'project_membership_create', 'project_membership_update', 'project_membership_remove',
    'api_key_create', 'api_key_disable',
    'idp_create', 'idp_update', 'idp_disable', 'idp_enable',
    'project_create', 'project_update', 'project_secret_change',
    'mail_template_change', 'tenant_config_change', 'person_invite',
    'auth_log_retention', 'auth_log_export', 'auth_log_read', 'auth_log_checkpoint'
));
