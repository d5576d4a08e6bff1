-- Custos initial schema: the tenant model and the audit log.

CREATE TYPE "api_key_type" AS ENUM ('session', 'permanent', 'one_off');

CREATE TABLE "identity" (
    "id" UUID NOT NULL,
    "description" TEXT,
    "roles" TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "identity_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "person" (
    "id" UUID NOT NULL,
    "identity_id" UUID NOT NULL,
    "email" TEXT,
    "name" TEXT,
    "password_hash" TEXT,
    "otp_secret" TEXT,
    "otp_activated_at" TIMESTAMPTZ(3),
    "otp_last_used_step" BIGINT,
    "passwordless_enabled" BOOLEAN,
    "disabled_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "person_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "person_identity_id_fkey" FOREIGN KEY ("identity_id") REFERENCES "identity"("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "person_identity_id_key" ON "person"("identity_id");
CREATE UNIQUE INDEX "person_email_key" ON "person"("email");

CREATE TABLE "api_key" (
    "id" UUID NOT NULL,
    "token_hash" TEXT NOT NULL,
    "type" "api_key_type" NOT NULL,
    "identity_id" UUID NOT NULL,
    "disabled_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3),
    "expiration" INTEGER,
    "trust_forwarded_info" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "created_ip" TEXT,
    "created_user_agent" TEXT,
    CONSTRAINT "api_key_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "api_key_identity_id_fkey" FOREIGN KEY ("identity_id") REFERENCES "identity"("id") ON DELETE RESTRICT ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "api_key_token_hash_key" ON "api_key"("token_hash");
CREATE INDEX "api_key_identity_id_idx" ON "api_key"("identity_id");

CREATE TABLE "project" (
    "id" UUID NOT NULL,
    "slug" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "config" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "project_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "project_slug_key" ON "project"("slug");

CREATE TABLE "project_membership" (
    "id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "identity_id" UUID NOT NULL,
    "role" TEXT NOT NULL,
    "variables" JSONB NOT NULL DEFAULT '[]',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "project_membership_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "project_membership_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "project"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "project_membership_identity_id_fkey" FOREIGN KEY ("identity_id") REFERENCES "identity"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "project_membership_project_id_identity_id_role_key" ON "project_membership"("project_id", "identity_id", "role");
CREATE INDEX "project_membership_identity_id_idx" ON "project_membership"("identity_id");

CREATE TABLE "identity_provider" (
    "id" UUID NOT NULL,
    "slug" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "configuration" JSONB NOT NULL,
    "auto_sign_up" BOOLEAN NOT NULL DEFAULT false,
    "exclusive" BOOLEAN NOT NULL DEFAULT false,
    "init_returns_config" BOOLEAN NOT NULL DEFAULT false,
    "disabled_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "identity_provider_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "identity_provider_slug_key" ON "identity_provider"("slug");

CREATE TABLE "project_secret" (
    "id" UUID NOT NULL,
    "project_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "value_encrypted" BYTEA NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "project_secret_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "project_secret_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "project"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "project_secret_project_id_key_key" ON "project_secret"("project_id", "key");

CREATE TABLE "mail_template" (
    "id" UUID NOT NULL,
    "project_id" UUID,
    "mail_type" TEXT NOT NULL,
    "variant" TEXT NOT NULL DEFAULT '',
    "subject" TEXT NOT NULL,
    "content" TEXT NOT NULL,
    "use_layout" BOOLEAN NOT NULL DEFAULT true,
    "reply_to" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "mail_template_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "mail_template_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "project"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "mail_template_project_id_mail_type_variant_key" ON "mail_template"("project_id", "mail_type", "variant");

CREATE TABLE "config" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "data" JSONB NOT NULL DEFAULT '{}',
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "config_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "person_token" (
    "id" UUID NOT NULL,
    "person_id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "otp_hash" TEXT,
    "otp_activated_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "used_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "person_token_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "person_token_person_id_fkey" FOREIGN KEY ("person_id") REFERENCES "person"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "person_token_token_hash_key" ON "person_token"("token_hash");
CREATE INDEX "person_token_person_id_idx" ON "person_token"("person_id");

CREATE TABLE "mail_outbox" (
    "id" UUID NOT NULL,
    "recipient" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "mail_outbox_pkey" PRIMARY KEY ("id")
);

-- The audit log. No foreign keys on purpose: nothing elsewhere may rewrite a row.
CREATE TABLE "person_auth_log" (
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "success" BOOLEAN NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "person_id" UUID,
    "identity_id" UUID,
    "target_person_id" UUID,
    "client_ip" INET,
    "user_agent" TEXT,
    "person_input_identifier" TEXT,
    "error_code" TEXT,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "event_data" JSONB NOT NULL DEFAULT '{}',
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
);
CREATE INDEX "person_auth_log_created_at_id_idx" ON "person_auth_log"("created_at" DESC, "id" DESC);
CREATE INDEX "person_auth_log_target_person_id_created_at_idx" ON "person_auth_log"("target_person_id", "created_at" DESC);
CREATE INDEX "person_auth_log_person_id_created_at_idx" ON "person_auth_log"("person_id", "created_at" DESC);
CREATE INDEX "person_auth_log_identity_id_created_at_idx" ON "person_auth_log"("identity_id", "created_at" DESC);
CREATE INDEX "person_auth_log_type_created_at_idx" ON "person_auth_log"("type", "created_at" DESC);
CREATE INDEX "person_auth_log_person_input_identifier_created_at_idx" ON "person_auth_log"("person_input_identifier", "created_at" DESC);
