-- Global mail templates (project_id NULL) are unique per type and variant too:
-- the (project_id, mail_type, variant) unique index treats NULLs as distinct.
CREATE UNIQUE INDEX "mail_template_global_mail_type_variant_key" ON "mail_template"("mail_type", "variant") WHERE "project_id" IS NULL;
