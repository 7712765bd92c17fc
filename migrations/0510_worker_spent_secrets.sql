-- 0510_worker_spent_secrets: remember more than one spent re-registration
-- secret per worker.
--
-- 0400 kept the keyed hash of the one secret the current one replaced, so
-- only the immediately previous secret was recognised as a replay; an
-- older one looked merely wrong. spent_secret_hashes keeps the keyed
-- BLAKE2b hashes (common/crypto/token_hash.h, subject
-- "worker-reregistration/<pool>/<group>/<id>") of the last 16 secrets the
-- worker spent, newest first. Never the secrets themselves.

ALTER TABLE workers
  ADD COLUMN spent_secret_hashes bytea[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(spent_secret_hashes) <= 16);

UPDATE workers SET spent_secret_hashes = ARRAY[previous_secret_hash]
  WHERE previous_secret_hash IS NOT NULL;

ALTER TABLE workers DROP COLUMN previous_secret_hash;
