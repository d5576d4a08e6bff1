-- Authentication flows: a pending TOTP secret, per-IP limits for flows the log has no event for,
-- and an index so per-IP limits counted from the log stay cheap.

-- prepareOtp writes here; confirmOtp moves it to otp_secret, so re-enrolling never drops an active factor.
ALTER TABLE "person" ADD COLUMN "otp_pending_secret" TEXT;

-- One row per attempt of a flow without its own log event (sign-up); rows older than the window are pruned.
CREATE TABLE "rate_limit_hit" (
    "id" UUID NOT NULL,
    "bucket" TEXT NOT NULL,
    "client_ip" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "rate_limit_hit_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "rate_limit_hit_bucket_client_ip_created_at_idx" ON "rate_limit_hit"("bucket", "client_ip", "created_at" DESC);

CREATE INDEX "person_auth_log_client_ip_type_created_at_idx" ON "person_auth_log"("client_ip", "type", "created_at" DESC);
