-- An entry written with plain SQL may leave its id to the database, like created_at, sequence and
-- hash. Without a default, a missing id made the chain trigger's encoding NULL and the insert failed
-- on the chain head's hash, an error that named neither the id nor the entry.
ALTER TABLE "person_auth_log" ALTER COLUMN "id" SET DEFAULT gen_random_uuid();
