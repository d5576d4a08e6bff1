-- A person's account at an identity provider, by the provider's stable subject (the ID token's
-- `sub`): signInIDP finds the person by this link, and matches by email only to make the first
-- link, so an email that changes at the provider (or moves to another account there) does not
-- move the sign-in to another person. One link per person and provider; one person per subject.
-- The log keeps no foreign key to it: removing a link, person or provider rewrites no log row.
-- custos_app gets SELECT, INSERT, UPDATE, DELETE through the default privileges of 20261122030000_integrity.
CREATE TABLE "person_identity_provider" (
    "id" UUID NOT NULL,
    "person_id" UUID NOT NULL,
    "identity_provider_id" UUID NOT NULL,
    "external_identifier" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "person_identity_provider_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "person_identity_provider_person_id_fkey" FOREIGN KEY ("person_id") REFERENCES "person"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "person_identity_provider_identity_provider_id_fkey" FOREIGN KEY ("identity_provider_id") REFERENCES "identity_provider"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
-- Also serves the cascade from identity_provider (its leading column).
CREATE UNIQUE INDEX "person_identity_provider_subject_key" ON "person_identity_provider"("identity_provider_id", "external_identifier");
-- Also serves the cascade from person.
CREATE UNIQUE INDEX "person_identity_provider_person_key" ON "person_identity_provider"("person_id", "identity_provider_id");
