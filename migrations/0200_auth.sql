-- 0200_auth: permanent clients, roles, secrets and the auth state row that
-- lets every replica notice role and client changes cheaply.
--
-- Numbered 0200 so it never collides with the core schema (0001-0099) or
-- artifacts (0100). Times come from the server's clock as parameters, as in
-- 0001 (the seed rows below are the one exception).
--
-- Nothing secret is stored in the clear: clients keep a keyed hash of their
-- access token (common/crypto/token_hash.h), and secret values are
-- XChaCha20-Poly1305 ciphertexts (common/crypto/keyring.h) whose associated
-- data binds them to their table, column and primary key. The keys live in
-- the server's configuration, never here.

-- One row per permanent client. `static` clients come from the server's
-- configuration: they are rewritten at every start and the API refuses to
-- change them.
CREATE TABLE clients (
  -- Byte order ("C") so listing pages by id agree with the index.
  client_id text COLLATE "C" PRIMARY KEY
    CHECK (length(client_id) BETWEEN 1 AND 256),
  description text NOT NULL,
  -- BLAKE2b-256 keyed with the server's token-hash key over the client id
  -- and the token; never the token itself.
  access_token_hash bytea NOT NULL CHECK (length(access_token_hash) = 32),
  -- As configured (may hold assume: scopes); expanded at use.
  scopes text[] NOT NULL,
  created timestamptz NOT NULL,
  last_modified timestamptz NOT NULL,
  last_rotated timestamptz NOT NULL,
  -- Refreshed lazily (at most every few minutes), not on every call.
  last_used timestamptz,
  expires timestamptz NOT NULL,
  disabled boolean NOT NULL DEFAULT false,
  delete_on_expiration boolean NOT NULL DEFAULT false,
  static boolean NOT NULL DEFAULT false
);
-- The expiry sweeper only looks at clients that ask to be deleted.
CREATE INDEX clients_delete_on_expiration
  ON clients (expires) WHERE delete_on_expiration;

-- One row per role: whoever holds assume:<role_id> holds its scopes.
CREATE TABLE roles (
  role_id text COLLATE "C" PRIMARY KEY
    CHECK (length(role_id) BETWEEN 1 AND 256),
  description text NOT NULL,
  scopes text[] NOT NULL,
  created timestamptz NOT NULL,
  last_modified timestamptz NOT NULL
);

-- Exactly one row. Every change to roles bumps roles_generation and every
-- change to a client that affects authentication bumps clients_generation,
-- in the transaction making the change, followed by NOTIFY drover_auth.
-- Each replica listens on that channel and also reads this row once a
-- second, so a lost notification delays a cache refresh by at most that.
-- Role writers lock the row, which serialises them (each validates the whole
-- role table it is about to commit). `bootstrapped` records when the root
-- client was created, so deleting it later does not bring it back.
CREATE TABLE auth_state (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  roles_generation bigint NOT NULL,
  clients_generation bigint NOT NULL,
  bootstrapped timestamptz
);
INSERT INTO auth_state (singleton, roles_generation, clients_generation)
  VALUES (true, 1, 1);

-- Callers without credentials get the scopes of this role: by default only
-- the public artifacts of every task (which includes live logs).
INSERT INTO roles (role_id, description, scopes, created, last_modified)
  VALUES ('anonymous',
          'Scopes of callers without credentials.',
          ARRAY['queue:get-artifact:public/*'], now(), now());

-- Named JSON values, encrypted. `key_id` repeats the key id carried inside
-- `value` so that key rotation finds the rows still under an old key
-- through an index instead of decrypting every row.
CREATE TABLE secrets (
  name text COLLATE "C" PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 256),
  -- KeyRing ciphertext; associated data ("secrets", "value", name).
  value bytea NOT NULL,
  key_id text NOT NULL,
  -- NULL: never expires. Past it GetSecret answers ResourceExpired and the
  -- sweeper deletes the row.
  expires timestamptz,
  created timestamptz NOT NULL,
  last_modified timestamptz NOT NULL
);
CREATE INDEX secrets_key_id ON secrets (key_id);
CREATE INDEX secrets_expires ON secrets (expires) WHERE expires IS NOT NULL;
