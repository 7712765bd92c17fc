-- 0400_worker_manager: worker pools and the relational workers table.
--
-- Everything the worker manager queries is a plain column; the only JSON is
-- the pool's worker_config, a document handed to workers as it is. Times
-- come from the server's clock as parameters, as in 0001. Secrets are never
-- stored in the clear: static and registration secrets as keyed BLAKE2b
-- hashes (common/crypto/token_hash.h), the re-registration secret as an
-- XChaCha20-Poly1305 ciphertext (common/crypto/keyring.h) whose associated
-- data binds it to ("workers", "reregistration_secret", "pool/group/id"),
-- plus the keyed hash of the secret it replaced, so a replayed secret is
-- recognised as such.

CREATE TABLE worker_pools (
  -- A task queue id: "<provisioner>/<worker-type>".
  worker_pool_id text COLLATE "C" PRIMARY KEY
    CHECK (length(worker_pool_id) BETWEEN 3 AND 77),
  description text NOT NULL,
  owner text NOT NULL,
  provider text NOT NULL CHECK (provider IN ('static')),
  min_capacity int NOT NULL CHECK (min_capacity >= 0),
  max_capacity int NOT NULL CHECK (max_capacity >= min_capacity),
  -- Durations in whole seconds.
  registration_timeout_s bigint NOT NULL CHECK (registration_timeout_s > 0),
  reregistration_timeout_s bigint NOT NULL
    CHECK (reregistration_timeout_s > 0),
  -- 0: workers are never stopped for inactivity.
  queue_inactivity_timeout_s bigint NOT NULL
    CHECK (queue_inactivity_timeout_s >= 0),
  reregistration_sunset timestamptz,
  worker_config jsonb NOT NULL CHECK (jsonb_typeof(worker_config) = 'object'),
  -- Keyed hash over ("worker-pool/<id>", secret); NULL when none is set.
  registration_secret_hash bytea
    CHECK (length(registration_secret_hash) = 32),
  created timestamptz NOT NULL,
  last_modified timestamptz NOT NULL
);

CREATE TABLE workers (
  worker_pool_id text COLLATE "C" NOT NULL
    REFERENCES worker_pools ON DELETE CASCADE,
  worker_group text COLLATE "C" NOT NULL,
  worker_id text COLLATE "C" NOT NULL,
  provider text NOT NULL,
  state text NOT NULL
    CHECK (state IN ('requested', 'running', 'stopping', 'stopped')),
  capacity int NOT NULL CHECK (capacity BETWEEN 1 AND 1000),
  created timestamptz NOT NULL,
  registered timestamptz,
  last_seen timestamptz,
  -- When the current credentials expire; the worker expires with them
  -- unless it re-registers.
  credentials_expire timestamptz,
  -- The row is deleted after this (a stopped worker is kept a while so
  -- operators can see what happened).
  expires timestamptz NOT NULL,
  quarantine_until timestamptz,
  quarantine_reason text NOT NULL DEFAULT '',
  -- Why a stopping or stopped worker stopped ("removed", "shutdown",
  -- "credentials-expired", ...).
  stop_reason text NOT NULL DEFAULT '',
  -- Keyed hash over ("worker/<pool>/<group>/<id>", secret); NULL for
  -- workers that registered with the pool's registration secret.
  static_secret_hash bytea CHECK (length(static_secret_hash) = 32),
  reregistration_secret bytea,
  reregistration_key_id text,
  previous_secret_hash bytea CHECK (length(previous_secret_hash) = 32),
  supports_reregistration boolean NOT NULL DEFAULT false,
  first_claim timestamptz,
  -- "<task_id>/<run_id>", most recent first, at most 20.
  recent_tasks text[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(recent_tasks) <= 20),
  hostname text NOT NULL DEFAULT '',
  os text NOT NULL DEFAULT '',
  engine text NOT NULL DEFAULT '',
  worker_version text NOT NULL DEFAULT '',
  boot_time timestamptz,
  PRIMARY KEY (worker_pool_id, worker_group, worker_id),
  -- Running and stopping workers have registered; stopped ones may not
  -- have (a created worker that never registered in time).
  CHECK (state IN ('requested', 'stopped') OR registered IS NOT NULL),
  CHECK ((reregistration_secret IS NULL) = (reregistration_key_id IS NULL))
);
-- Stats and listings per pool and state.
CREATE INDEX workers_pool_state ON workers (worker_pool_id, state);
-- The lifecycle resolver: workers whose credentials ran out, and rows past
-- their expiry.
CREATE INDEX workers_credentials_expire ON workers (credentials_expire)
  WHERE state IN ('running', 'stopping');
CREATE INDEX workers_expires ON workers (expires);
-- "Which runs does this worker hold": running runs by worker.
CREATE INDEX runs_running_worker ON runs (worker_group, worker_id)
  WHERE state = 'running';
