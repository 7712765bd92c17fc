// The SQL of ArtifactStore, as named statements prepared on every pooled
// connection. Values are always $n parameters; times are passed as
// timestamptz text from the server's clock and read back through
// epoch_us().
#ifndef DROVER_QUEUE_ARTIFACTS_ARTIFACT_SQL_H_
#define DROVER_QUEUE_ARTIFACTS_ARTIFACT_SQL_H_

#include <vector>

#include "queue/store/pg_pool.h"

namespace drover::queue::artifacts::sql {

using store::PreparedStatement;

// The columns every artifact read returns, in this order (see
// ArtifactFromRow in artifact_store.cc).
#define DROVER_ARTIFACT_COLUMNS                                            \
  "task_id, run_id, name, kind, content_type, epoch_us(created) AS "       \
  "created_us, epoch_us(expires) AS expires_us, present, blob_key, size, " \
  "sha256, content_encoding, url, link_run_id, link_name, error_reason, "  \
  "error_message"

// $1 task, $2 run: the run's state and its task's expiry.
inline constexpr PreparedStatement kRunForArtifact{"artifacts_run",
                                                   R"sql(
SELECT r.state, epoch_us(t.expires) AS task_expires_us
FROM runs r JOIN tasks t ON t.task_id = r.task_id
WHERE r.task_id = $1 AND r.run_id = $2
)sql"};

// $1 task.
inline constexpr PreparedStatement kTaskExists{
    "artifacts_task_exists", "SELECT 1 FROM tasks WHERE task_id = $1"};

// $1 task: its newest run (NULL without runs) and whether it exists.
inline constexpr PreparedStatement kLatestRun{"artifacts_latest_run",
                                              R"sql(
SELECT (SELECT max(run_id) FROM runs WHERE task_id = $1) AS run_id,
       EXISTS (SELECT 1 FROM tasks WHERE task_id = $1) AS task_exists
)sql"};

// $1 task, $2 run, $3 name.
inline constexpr PreparedStatement kSelectArtifact{
    "artifacts_select",
    "SELECT " DROVER_ARTIFACT_COLUMNS
    " FROM artifacts WHERE task_id = $1 AND run_id = $2 AND name = $3"};

inline constexpr PreparedStatement kSelectArtifactForUpdate{
    "artifacts_select_for_update",
    "SELECT " DROVER_ARTIFACT_COLUMNS
    " FROM artifacts WHERE task_id = $1 AND run_id = $2 AND name = $3"
    " FOR UPDATE"};

// $1 task, $2 run, $3 name, $4 kind, $5 content type, $6 created,
// $7 expires, $8 blob key, $9 size, $10 sha256, $11 content encoding,
// $12 present, $13 url, $14 link run, $15 link name, $16 error reason,
// $17 error message. Columns of other kinds are stored as NULL.
inline constexpr PreparedStatement kInsertArtifact{"artifacts_insert",
                                                   R"sql(
INSERT INTO artifacts (task_id, run_id, name, kind, content_type, created,
                       expires, blob_key, size, sha256, content_encoding,
                       present, url, link_run_id, link_name, error_reason,
                       error_message)
VALUES ($1, $2, $3, $4::text, $5, $6::timestamptz, $7::timestamptz,
        CASE WHEN $4::text = 'blob' THEN $8::text END,
        CASE WHEN $4::text = 'blob' THEN $9::bigint END,
        CASE WHEN $4::text = 'blob' THEN $10::text END,
        CASE WHEN $4::text = 'blob' THEN $11::text END,
        $12,
        CASE WHEN $4::text = 'reference' THEN $13::text END,
        CASE WHEN $4::text = 'link' THEN $14::int END,
        CASE WHEN $4::text = 'link' THEN $15::text END,
        CASE WHEN $4::text = 'error' THEN $16::text END,
        CASE WHEN $4::text = 'error' THEN $17::text END)
)sql"};

// A blob not yet finished declared anew. $1 task, $2 run, $3 name,
// $4 content type, $5 expires, $6 size, $7 sha256, $8 content encoding.
inline constexpr PreparedStatement kRedeclareBlob{"artifacts_redeclare_blob",
                                                  R"sql(
UPDATE artifacts
SET content_type = $4, expires = $5::timestamptz, size = $6, sha256 = $7,
    content_encoding = $8
WHERE task_id = $1 AND run_id = $2 AND name = $3 AND kind = 'blob'
  AND NOT present
)sql"};

// $1 task, $2 run, $3 name, $4 new expiry (only ever later).
inline constexpr PreparedStatement kExtendExpiry{"artifacts_extend_expiry",
                                                 R"sql(
UPDATE artifacts SET expires = $4::timestamptz
WHERE task_id = $1 AND run_id = $2 AND name = $3 AND expires < $4::timestamptz
)sql"};

// $1 blob key: still queued for deletion by the reaper?
inline constexpr PreparedStatement kBlobDeletionPending{
    "artifacts_blob_deletion_pending",
    "SELECT 1 FROM artifact_blob_deletions WHERE blob_key = $1"};

// $1 task, $2 run, $3 name.
inline constexpr PreparedStatement kMarkPresent{"artifacts_mark_present",
                                                R"sql(
UPDATE artifacts SET present = true
WHERE task_id = $1 AND run_id = $2 AND name = $3 AND kind = 'blob'
)sql"};

// The event, with the task's routes. $1 task, $2 run, $3 time, $4 name,
// $5 kind, $6 content type, $7 expires.
inline constexpr PreparedStatement kInsertArtifactEvent{
    "artifacts_insert_event",
    R"sql(
INSERT INTO events (kind, task_id, task_group_id, task_queue_id, run_id,
                    time, routes, body)
SELECT 'artifact-created', t.task_id, t.task_group_id, t.task_queue_id, $2,
       $3::timestamptz, t.routes,
       jsonb_build_object('artifact',
                          jsonb_build_object('name', $4::text,
                                             'kind', $5::text,
                                             'content_type', $6::text,
                                             'expires', $7::timestamptz))
FROM tasks t WHERE t.task_id = $1
)sql"};

// $1 task, $2 run, $3 names after this, $4 now, $5 limit.
inline constexpr PreparedStatement kListArtifacts{
    "artifacts_list",
    "SELECT " DROVER_ARTIFACT_COLUMNS
    " FROM artifacts WHERE task_id = $1 AND run_id = $2 AND name > $3"
    " AND expires > $4::timestamptz ORDER BY name LIMIT $5"};

// Serialises appends to one run's log (two-key advisory lock space, class
// 'l','o','g'). $1 task, $2 run.
inline constexpr PreparedStatement kLockLog{
    "artifacts_lock_log",
    "SELECT pg_advisory_xact_lock(7106407, hashtext($1::text) # $2::int)"};

// $1 task, $2 run: the log's current length (no row: empty).
inline constexpr PreparedStatement kLogEnd{"artifacts_log_end",
                                           R"sql(
SELECT start_offset + length(data) AS end_offset FROM log_chunks
WHERE task_id = $1 AND run_id = $2
ORDER BY start_offset DESC LIMIT 1
)sql"};

// $1 task, $2 run, $3 offset.
inline constexpr PreparedStatement kChunkAt{"artifacts_chunk_at",
                                            R"sql(
SELECT data FROM log_chunks
WHERE task_id = $1 AND run_id = $2 AND start_offset = $3
)sql"};

// $1 task, $2 run, $3 offset, $4 bytes; notifies followers on commit.
inline constexpr PreparedStatement kInsertChunk{"artifacts_insert_chunk",
                                                R"sql(
WITH inserted AS (
  INSERT INTO log_chunks (task_id, run_id, start_offset, data)
  VALUES ($1, $2, $3, $4)
)
SELECT pg_notify('drover_log', $1::text || '/' || $2::int::text)
)sql"};

// $1 task, $2 run; notifies followers on commit.
inline constexpr PreparedStatement kDropChunks{"artifacts_drop_chunks",
                                               R"sql(
WITH dropped AS (
  DELETE FROM log_chunks WHERE task_id = $1 AND run_id = $2
)
SELECT pg_notify('drover_log', $1::text || '/' || $2::int::text)
)sql"};

// $1 task, $2 run: the run's state alone.
inline constexpr PreparedStatement kRunState{
    "artifacts_run_state",
    "SELECT state FROM runs WHERE task_id = $1 AND run_id = $2"};

// Chunks from the one holding byte $3 on, in order, while the bytes before
// each are fewer than $4 past the chunk holding $3 (so at most $4 plus one
// chunk), and at most 4096 rows. $1 task, $2 run. length() of a bytea needs
// no detoasting, so skipped rows cost no data reads.
inline constexpr PreparedStatement kReadChunks{"artifacts_read_chunks",
                                               R"sql(
SELECT start_offset, data FROM (
  SELECT start_offset, data,
         sum(length(data)) OVER (ORDER BY start_offset) - length(data)
           AS before
  FROM log_chunks
  WHERE task_id = $1 AND run_id = $2
    AND start_offset >= COALESCE(
          (SELECT max(start_offset) FROM log_chunks
           WHERE task_id = $1 AND run_id = $2 AND start_offset <= $3), 0)
  ORDER BY start_offset
  LIMIT 4096) c
WHERE before < $4
ORDER BY start_offset
)sql"};

// Reaper step 1. $1 now, $2 batch. Returns the number of rows deleted.
inline constexpr PreparedStatement kDeleteExpired{"artifacts_delete_expired",
                                                  R"sql(
WITH doomed AS (
  SELECT task_id, run_id, name FROM artifacts
  WHERE expires <= $1::timestamptz
  ORDER BY expires
  LIMIT $2
  FOR UPDATE SKIP LOCKED
), deleted AS (
  DELETE FROM artifacts a USING doomed d
  WHERE a.task_id = d.task_id AND a.run_id = d.run_id AND a.name = d.name
  RETURNING a.kind, a.blob_key
), queued AS (
  INSERT INTO artifact_blob_deletions (blob_key, not_before)
  SELECT blob_key, $1::timestamptz FROM deleted WHERE kind = 'blob'
  ON CONFLICT (blob_key) DO NOTHING
)
SELECT count(*) AS deleted FROM deleted
)sql"};

// Reaper step 2. $1 now, $2 lease end, $3 batch.
inline constexpr PreparedStatement kLeaseDeletions{"artifacts_lease_deletions",
                                                   R"sql(
UPDATE artifact_blob_deletions SET not_before = $2::timestamptz
WHERE blob_key IN (
  SELECT blob_key FROM artifact_blob_deletions
  WHERE not_before <= $1::timestamptz
  ORDER BY not_before
  LIMIT $3
  FOR UPDATE SKIP LOCKED)
RETURNING blob_key
)sql"};

// Reaper step 3. $1 text[] of keys.
inline constexpr PreparedStatement kCompleteDeletions{
    "artifacts_complete_deletions",
    "DELETE FROM artifact_blob_deletions WHERE blob_key = ANY($1::text[])"};

#undef DROVER_ARTIFACT_COLUMNS

// Every statement above, for PgConnectionPool::Create.
inline std::vector<PreparedStatement> AllStatements() {
  return {kRunForArtifact,
          kTaskExists,
          kLatestRun,
          kSelectArtifact,
          kSelectArtifactForUpdate,
          kInsertArtifact,
          kRedeclareBlob,
          kExtendExpiry,
          kBlobDeletionPending,
          kMarkPresent,
          kInsertArtifactEvent,
          kListArtifacts,
          kLockLog,
          kLogEnd,
          kChunkAt,
          kInsertChunk,
          kDropChunks,
          kRunState,
          kReadChunks,
          kDeleteExpired,
          kLeaseDeletions,
          kCompleteDeletions};
}

}  // namespace drover::queue::artifacts::sql

#endif  // DROVER_QUEUE_ARTIFACTS_ARTIFACT_SQL_H_
