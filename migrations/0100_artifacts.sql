-- 0100_artifacts: artifacts of task runs, the blob deletions the expiry
-- reaper still owes the blob store, and live-log chunks.
--
-- Numbered 0100 so it never collides with the core schema (0001-0099).
-- Times come from the server's clock as parameters, as in 0001.

-- One row per artifact of a run. Kind-specific columns are NULL for the
-- other kinds (CHECKs below). There is deliberately no foreign key to
-- runs: an artifact's expiry never passes its task's, and the reaper, not
-- a cascade, removes rows so that blobs are deleted with them.
CREATE TABLE artifacts (
  task_id text NOT NULL,
  run_id int NOT NULL CHECK (run_id >= 0),
  -- Byte order ("C") so listing pages by name agree with the index.
  name text COLLATE "C" NOT NULL CHECK (length(name) BETWEEN 1 AND 1024),
  kind text NOT NULL CHECK (kind IN ('blob', 'reference', 'link', 'error')),
  content_type text NOT NULL,
  created timestamptz NOT NULL,
  expires timestamptz NOT NULL,
  -- blob: where the bytes live, what was declared, and whether
  -- FinishArtifact accepted the upload.
  blob_key text,
  size bigint CHECK (size >= 0),
  sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  content_encoding text,
  present boolean NOT NULL,
  -- reference
  url text,
  -- link: another artifact of the same task.
  link_run_id int,
  link_name text,
  -- error
  error_reason text,
  error_message text,
  PRIMARY KEY (task_id, run_id, name),
  CHECK ((kind = 'blob') = (blob_key IS NOT NULL AND size IS NOT NULL AND
                            sha256 IS NOT NULL AND
                            content_encoding IS NOT NULL)),
  CHECK (kind = 'blob' OR present),
  CHECK ((kind = 'reference') = (url IS NOT NULL)),
  CHECK ((kind = 'link') = (link_run_id IS NOT NULL AND link_name IS NOT NULL)),
  CHECK ((kind = 'error') = (error_reason IS NOT NULL AND
                             error_message IS NOT NULL))
);
-- The reaper takes the oldest expiries first.
CREATE INDEX artifacts_expires ON artifacts (expires);

-- Blobs of reaped artifacts not yet deleted from the blob store. The reaper
-- moves a row here in the transaction that deletes the artifact, deletes
-- the blob outside any transaction (it is a network call), then removes
-- the row; a replica that dies in between leaves the row for the next
-- pass. `not_before` leases a row to one reaper at a time.
CREATE TABLE artifact_blob_deletions (
  blob_key text PRIMARY KEY,
  not_before timestamptz NOT NULL
);
CREATE INDEX artifact_blob_deletions_not_before
  ON artifact_blob_deletions (not_before);

-- Live-log chunks of a run, contiguous from offset 0: each row starts where
-- the previous one ended. Dropped when the run's "public/logs/live.log"
-- blob is finished (the blob then holds the whole log), or with the run.
CREATE TABLE log_chunks (
  task_id text NOT NULL,
  run_id int NOT NULL,
  start_offset bigint NOT NULL CHECK (start_offset >= 0),
  data bytea NOT NULL CHECK (length(data) BETWEEN 1 AND 1048576),
  PRIMARY KEY (task_id, run_id, start_offset),
  FOREIGN KEY (task_id, run_id) REFERENCES runs ON DELETE CASCADE
);
