// The SQL of WorkerStore (tables `worker_pools` and `workers` of
// migrations/0400_worker_manager.sql), one named constant per statement
// with $n parameters. Times are read as epoch_us() (0001) and written from
// the server's clock; bytea values travel as hex text (decode/encode) so a
// NULL is simply a null parameter.
#ifndef DROVER_QUEUE_WORKER_MANAGER_WORKER_SQL_H_
#define DROVER_QUEUE_WORKER_MANAGER_WORKER_SQL_H_

#include <vector>

#include "queue/store/pg_pool.h"

namespace drover::queue::worker_manager::sql {

// Column lists shared by several statements (string literal pieces).
#define DROVER_WM_POOL_COLUMNS                                            \
  "worker_pool_id, description, owner, provider, min_capacity, "          \
  "max_capacity, registration_timeout_s, reregistration_timeout_s, "      \
  "queue_inactivity_timeout_s, epoch_us(reregistration_sunset) AS "       \
  "sunset_us, worker_config::text AS worker_config, "                     \
  "encode(registration_secret_hash, 'hex') AS registration_secret_hash, " \
  "epoch_us(created) AS created_us, epoch_us(last_modified) AS "          \
  "last_modified_us"

// Runs of the worker's pool queue that it holds right now (alias w).
#define DROVER_WM_RUNNING_OF_W                                         \
  "(SELECT count(*) FROM runs r JOIN tasks t USING (task_id) "         \
  "WHERE r.state = 'running' AND r.worker_group = w.worker_group AND " \
  "r.worker_id = w.worker_id AND t.task_queue_id = w.worker_pool_id)"

#define DROVER_WM_WORKER_COLUMNS                                            \
  "w.worker_pool_id, w.worker_group, w.worker_id, w.provider, w.state, "    \
  "w.capacity, epoch_us(w.created) AS created_us, epoch_us(w.registered) "  \
  "AS registered_us, epoch_us(w.last_seen) AS last_seen_us, "               \
  "epoch_us(w.credentials_expire) AS credentials_expire_us, "               \
  "epoch_us(w.expires) AS expires_us, epoch_us(w.quarantine_until) AS "     \
  "quarantine_until_us, w.quarantine_reason, w.stop_reason, "               \
  "encode(w.static_secret_hash, 'hex') AS static_secret_hash, "             \
  "encode(w.reregistration_secret, 'hex') AS reregistration_secret, "       \
  "w.reregistration_key_id, ARRAY(SELECT encode(s.h, 'hex') FROM "          \
  "unnest(w.spent_secret_hashes) WITH ORDINALITY AS s(h, n) ORDER BY s.n) " \
  "AS spent_secret_hashes, w.supports_reregistration, "                     \
  "epoch_us(w.first_claim) AS first_claim_us, w.recent_tasks, w.hostname, " \
  "w.os, w.engine, "                                                        \
  "w.worker_version, epoch_us(w.boot_time) AS "                             \
  "boot_time_us, " DROVER_WM_RUNNING_OF_W " AS running_tasks"

// ---- pools -----------------------------------------------------------------

// $1 id, $2 description, $3 owner, $4 provider, $5 min, $6 max,
// $7 registration s, $8 reregistration s, $9 inactivity s, $10 sunset,
// $11 worker_config text, $12 now.
inline constexpr char kInsertPool[] =
    "INSERT INTO worker_pools (worker_pool_id, description, owner, provider, "
    "min_capacity, max_capacity, registration_timeout_s, "
    "reregistration_timeout_s, queue_inactivity_timeout_s, "
    "reregistration_sunset, worker_config, created, last_modified) VALUES "
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $12) "
    "ON CONFLICT (worker_pool_id) DO NOTHING RETURNING " DROVER_WM_POOL_COLUMNS;

// Parameters as kInsertPool.
inline constexpr char kUpdatePool[] =
    "UPDATE worker_pools SET description = $2, owner = $3, provider = $4, "
    "min_capacity = $5, max_capacity = $6, registration_timeout_s = $7, "
    "reregistration_timeout_s = $8, queue_inactivity_timeout_s = $9, "
    "reregistration_sunset = $10, worker_config = $11::jsonb, "
    "last_modified = $12 WHERE worker_pool_id = $1 "
    "RETURNING " DROVER_WM_POOL_COLUMNS;

// $1 id. FOR SHARE: registrations read the pool while it cannot change.
inline constexpr char kSelectPoolForShare[] =
    "SELECT " DROVER_WM_POOL_COLUMNS
    " FROM worker_pools WHERE worker_pool_id = $1 FOR SHARE";

// $1 id.
inline constexpr char kSelectPool[] =
    "SELECT " DROVER_WM_POOL_COLUMNS
    " FROM worker_pools WHERE worker_pool_id = $1";

// $1 after (exclusive), $2 limit.
inline constexpr char kListPools[] =
    "SELECT " DROVER_WM_POOL_COLUMNS
    " FROM worker_pools WHERE worker_pool_id > $1 ORDER BY worker_pool_id "
    "LIMIT $2";

// $1 id, $2 hash as hex (NULL clears), $3 now.
inline constexpr char kSetRegistrationSecret[] =
    "UPDATE worker_pools SET registration_secret_hash = decode($2, 'hex'), "
    "last_modified = $3 WHERE worker_pool_id = $1 RETURNING worker_pool_id";

// $1 id. Locks the pool so no worker registers while it is deleted.
inline constexpr char kLockPoolForDelete[] =
    "SELECT worker_pool_id FROM worker_pools WHERE worker_pool_id = $1 "
    "FOR UPDATE";
// $1 id.
inline constexpr char kCountLiveWorkers[] =
    "SELECT count(*) FROM workers WHERE worker_pool_id = $1 "
    "AND state <> 'stopped'";
// $1 id. Stopped workers go with it (ON DELETE CASCADE).
inline constexpr char kDeletePool[] =
    "DELETE FROM worker_pools WHERE worker_pool_id = $1";

// ---- workers ---------------------------------------------------------------

// $1 pool, $2 group, $3 id.
inline constexpr char kSelectWorker[] =
    "SELECT " DROVER_WM_WORKER_COLUMNS
    " FROM workers w WHERE w.worker_pool_id = $1 AND w.worker_group = $2 "
    "AND w.worker_id = $3";

// A claim's look at its worker: the quarantine, and last_seen moved to $4
// unless it is already later than $5 (so a busy worker costs one write per
// interval, not one per claim). No row: not a managed worker.
inline constexpr char kClaimCheck[] =
    "WITH w AS (SELECT quarantine_until FROM workers "
    "  WHERE worker_pool_id = $1 AND worker_group = $2 AND worker_id = $3), "
    "seen AS (UPDATE workers SET last_seen = $4::timestamptz "
    "  WHERE worker_pool_id = $1 AND worker_group = $2 AND worker_id = $3 "
    "  AND (last_seen IS NULL OR last_seen < $5::timestamptz)) "
    "SELECT epoch_us(quarantine_until) AS quarantine_until_us FROM w";

// After a claim: first_claim (once), last_seen $4, and the runs $5 in
// front of recent_tasks, which keeps its newest 20.
inline constexpr char kNoteClaimed[] =
    "UPDATE workers SET first_claim = coalesce(first_claim, $4::timestamptz), "
    "last_seen = greatest(last_seen, $4::timestamptz), "
    "recent_tasks = (ARRAY(SELECT r FROM unnest($5::text[]) AS r) "
    "  || recent_tasks)[1:20] "
    "WHERE worker_pool_id = $1 AND worker_group = $2 AND worker_id = $3";

// As kSelectWorker, locking the row.
inline constexpr char kSelectWorkerForUpdate[] =
    "SELECT " DROVER_WM_WORKER_COLUMNS
    " FROM workers w WHERE w.worker_pool_id = $1 AND w.worker_group = $2 "
    "AND w.worker_id = $3 FOR UPDATE OF w";

// $1 pool, $2 states (text[]), $3 after group, $4 after id, $5 limit.
inline constexpr char kListWorkers[] =
    "SELECT " DROVER_WM_WORKER_COLUMNS
    " FROM workers w WHERE w.worker_pool_id = $1 AND w.state = ANY($2) "
    "AND (w.worker_group, w.worker_id) > ($3, $4) "
    "ORDER BY w.worker_group, w.worker_id LIMIT $5";

// The whole row, $1..$26 in the order of the column list; bytea as hex
// ($18, the spent-secret hashes, as a text[] of hex, order kept).
// Insert, or (kUpsertWorker) insert-or-replace under the row lock the
// mutation holds.
#define DROVER_WM_WORKER_INSERT                                              \
  "INSERT INTO workers (worker_pool_id, worker_group, worker_id, provider, " \
  "state, capacity, created, registered, last_seen, credentials_expire, "    \
  "expires, quarantine_until, quarantine_reason, stop_reason, "              \
  "static_secret_hash, reregistration_secret, reregistration_key_id, "       \
  "spent_secret_hashes, supports_reregistration, first_claim, "              \
  "recent_tasks, hostname, os, engine, worker_version, boot_time) VALUES "   \
  "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "           \
  "decode($15, 'hex'), decode($16, 'hex'), $17, "                            \
  "ARRAY(SELECT decode(s.h, 'hex') FROM unnest($18::text[]) WITH "           \
  "ORDINALITY AS s(h, n) ORDER BY s.n), $19, "                               \
  "$20, $21, $22, $23, $24, $25, $26) "

inline constexpr char kInsertWorker[] = DROVER_WM_WORKER_INSERT
    "ON CONFLICT (worker_pool_id, worker_group, worker_id) DO NOTHING "
    "RETURNING worker_id";

// A plain insert: a concurrent insert of the same worker raises a unique
// violation, and the transaction is retried with the row then locked.
inline constexpr char kInsertNewWorker[] = DROVER_WM_WORKER_INSERT;

inline constexpr char kUpsertWorker[] = DROVER_WM_WORKER_INSERT
    "ON CONFLICT (worker_pool_id, worker_group, worker_id) DO UPDATE SET "
    "provider = EXCLUDED.provider, state = EXCLUDED.state, "
    "capacity = EXCLUDED.capacity, created = EXCLUDED.created, "
    "registered = EXCLUDED.registered, last_seen = EXCLUDED.last_seen, "
    "credentials_expire = EXCLUDED.credentials_expire, "
    "expires = EXCLUDED.expires, quarantine_until = EXCLUDED.quarantine_until, "
    "quarantine_reason = EXCLUDED.quarantine_reason, "
    "stop_reason = EXCLUDED.stop_reason, "
    "static_secret_hash = EXCLUDED.static_secret_hash, "
    "reregistration_secret = EXCLUDED.reregistration_secret, "
    "reregistration_key_id = EXCLUDED.reregistration_key_id, "
    "spent_secret_hashes = EXCLUDED.spent_secret_hashes, "
    "supports_reregistration = EXCLUDED.supports_reregistration, "
    "first_claim = EXCLUDED.first_claim, recent_tasks = EXCLUDED.recent_tasks, "
    "hostname = EXCLUDED.hostname, os = EXCLUDED.os, engine = EXCLUDED.engine, "
    "worker_version = EXCLUDED.worker_version, boot_time = EXCLUDED.boot_time";

// $1 pool, $2 group, $3 id.
inline constexpr char kRunningRuns[] =
    "SELECT r.task_id, r.run_id FROM runs r JOIN tasks t USING (task_id) "
    "WHERE r.state = 'running' AND r.worker_group = $2 AND r.worker_id = $3 "
    "AND t.task_queue_id = $1 ORDER BY r.task_id, r.run_id";

// Registration against max_capacity. $1 pool. Serialises the capacity
// checks of one pool's registrations (pools are share-locked, so two
// registrations would otherwise both see room for themselves).
inline constexpr char kLockPoolCapacity[] =
    "SELECT pg_advisory_xact_lock(hashtextextended("
    "'drover-worker-pool-capacity/' || $1, 0))";
// $1 pool, $2 group, $3 id: capacity of the pool's workers that are not
// stopped, other than this one.
inline constexpr char kOtherWorkersCapacity[] =
    "SELECT coalesce(sum(capacity), 0) FROM workers WHERE worker_pool_id = $1 "
    "AND state <> 'stopped' AND (worker_group, worker_id) <> ($2, $3)";

// ---- key rotation (queue/auth/key_rotation.h) ------------------------------

// $1 current key id, $2..$4 after (pool, group, id; exclusive), $5 batch.
// Rows a registration holds are skipped; it writes the current key anyway.
inline constexpr char kSelectSecretsToRotate[] =
    "SELECT worker_pool_id, worker_group, worker_id, "
    "encode(reregistration_secret, 'hex') AS secret FROM workers "
    "WHERE reregistration_key_id <> $1 AND (worker_pool_id, worker_group, "
    "worker_id) > ($2, $3, $4) ORDER BY worker_pool_id, worker_group, "
    "worker_id LIMIT $5 FOR UPDATE SKIP LOCKED";
// $1..$3 the worker, $4 new ciphertext (hex), $5 its key id, $6 the
// ciphertext it replaces (hex).
inline constexpr char kReplaceSecretCiphertext[] =
    "UPDATE workers SET reregistration_secret = decode($4, 'hex'), "
    "reregistration_key_id = $5 WHERE worker_pool_id = $1 AND "
    "worker_group = $2 AND worker_id = $3 AND "
    "reregistration_secret = decode($6, 'hex')";
inline constexpr char kCountSecretsByKeyId[] =
    "SELECT reregistration_key_id, count(*) FROM workers WHERE "
    "reregistration_key_id IS NOT NULL GROUP BY reregistration_key_id "
    "ORDER BY reregistration_key_id";

// ---- stats -----------------------------------------------------------------

// Per pool p; $1 is now (quarantine).
#define DROVER_WM_STATS_SELECT                                                \
  "SELECT p.worker_pool_id, p.min_capacity, p.max_capacity, "                 \
  "c.requested, c.running, c.stopping, c.stopped, c.quarantined, "            \
  "c.total_capacity, "                                                        \
  "(SELECT count(*) FROM runs r JOIN tasks t USING (task_id) "                \
  " WHERE r.state = 'running' AND t.task_queue_id = p.worker_pool_id) "       \
  " AS running_tasks, "                                                       \
  "(SELECT coalesce(sum(greatest(w.capacity - " DROVER_WM_RUNNING_OF_W        \
  ", 0)), 0) FROM workers w WHERE w.worker_pool_id = p.worker_pool_id "       \
  " AND w.state = 'running' AND (w.quarantine_until IS NULL OR "              \
  " w.quarantine_until <= $1)) AS idle_capacity, "                            \
  "(SELECT count(*) FROM pending q WHERE q.task_queue_id = "                  \
  " p.worker_pool_id) AS pending_tasks, "                                     \
  "(SELECT epoch_us(min(r.scheduled)) FROM pending q JOIN runs r "            \
  " USING (task_id, run_id) WHERE q.task_queue_id = p.worker_pool_id) "       \
  " AS oldest_pending_us "                                                    \
  "FROM worker_pools p CROSS JOIN LATERAL (SELECT "                           \
  " count(*) FILTER (WHERE w.state = 'requested') AS requested, "             \
  " count(*) FILTER (WHERE w.state = 'running') AS running, "                 \
  " count(*) FILTER (WHERE w.state = 'stopping') AS stopping, "               \
  " count(*) FILTER (WHERE w.state = 'stopped') AS stopped, "                 \
  " count(*) FILTER (WHERE w.state <> 'stopped' AND w.quarantine_until > $1)" \
  "  AS quarantined, "                                                        \
  " coalesce(sum(w.capacity) FILTER (WHERE w.state <> 'stopped'), 0) "        \
  "  AS total_capacity "                                                      \
  " FROM workers w WHERE w.worker_pool_id = p.worker_pool_id) c "

// $1 now, $2 pool.
inline constexpr char kPoolStats[] =
    DROVER_WM_STATS_SELECT "WHERE p.worker_pool_id = $2";

// $1 now, $2 after (exclusive), $3 limit.
inline constexpr char kListPoolStats[] = DROVER_WM_STATS_SELECT
    "WHERE p.worker_pool_id > $2 ORDER BY p.worker_pool_id LIMIT $3";

// ---- lifecycle -------------------------------------------------------------

// $1 now, $2 batch, $3 expires of the stopped rows.
inline constexpr char kStopCredentialsExpired[] =
    "UPDATE workers SET state = 'stopped', stop_reason = "
    "'credentials-expired', expires = $3 WHERE (worker_pool_id, "
    "worker_group, worker_id) IN (SELECT worker_pool_id, worker_group, "
    "worker_id FROM workers WHERE state IN ('running', 'stopping') AND "
    "credentials_expire <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "RETURNING worker_id";

// As kStopCredentialsExpired.
inline constexpr char kStopRegistrationExpired[] =
    "UPDATE workers SET state = 'stopped', stop_reason = "
    "'registration-timeout', expires = $3 WHERE (worker_pool_id, "
    "worker_group, worker_id) IN (SELECT w.worker_pool_id, w.worker_group, "
    "w.worker_id FROM workers w JOIN worker_pools p USING (worker_pool_id) "
    "WHERE w.state = 'requested' AND w.created + "
    "make_interval(secs => p.registration_timeout_s) <= $1 LIMIT $2 "
    "FOR UPDATE OF w SKIP LOCKED) RETURNING worker_id";

// As kStopCredentialsExpired.
inline constexpr char kStopInactive[] =
    "UPDATE workers SET state = 'stopped', stop_reason = "
    "'queue-inactivity-timeout', expires = $3 WHERE (worker_pool_id, "
    "worker_group, worker_id) IN (SELECT w.worker_pool_id, w.worker_group, "
    "w.worker_id FROM workers w JOIN worker_pools p USING (worker_pool_id) "
    "WHERE w.state = 'running' AND p.queue_inactivity_timeout_s > 0 AND "
    "coalesce(w.last_seen, w.registered) + "
    "make_interval(secs => p.queue_inactivity_timeout_s) <= $1 LIMIT $2 "
    "FOR UPDATE OF w SKIP LOCKED) RETURNING worker_id";

// $1 now, $2 batch.
inline constexpr char kDeleteExpiredWorkers[] =
    "DELETE FROM workers WHERE (worker_pool_id, worker_group, worker_id) IN "
    "(SELECT worker_pool_id, worker_group, worker_id FROM workers WHERE "
    "state = 'stopped' AND expires <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED) "
    "RETURNING worker_id";

inline std::vector<store::PreparedStatement> AllStatements() {
  return {
      {"wm_insert_pool", kInsertPool},
      {"wm_update_pool", kUpdatePool},
      {"wm_select_pool_for_share", kSelectPoolForShare},
      {"wm_select_pool", kSelectPool},
      {"wm_list_pools", kListPools},
      {"wm_set_registration_secret", kSetRegistrationSecret},
      {"wm_lock_pool_for_delete", kLockPoolForDelete},
      {"wm_count_live_workers", kCountLiveWorkers},
      {"wm_delete_pool", kDeletePool},
      {"wm_select_worker", kSelectWorker},
      {"wm_claim_check", kClaimCheck},
      {"wm_note_claimed", kNoteClaimed},
      {"wm_select_worker_for_update", kSelectWorkerForUpdate},
      {"wm_list_workers", kListWorkers},
      {"wm_insert_worker", kInsertWorker},
      {"wm_insert_new_worker", kInsertNewWorker},
      {"wm_upsert_worker", kUpsertWorker},
      {"wm_running_runs", kRunningRuns},
      {"wm_lock_pool_capacity", kLockPoolCapacity},
      {"wm_other_workers_capacity", kOtherWorkersCapacity},
      {"wm_select_secrets_to_rotate", kSelectSecretsToRotate},
      {"wm_replace_secret_ciphertext", kReplaceSecretCiphertext},
      {"wm_count_secrets_by_key_id", kCountSecretsByKeyId},
      {"wm_pool_stats", kPoolStats},
      {"wm_list_pool_stats", kListPoolStats},
      {"wm_stop_credentials_expired", kStopCredentialsExpired},
      {"wm_stop_registration_expired", kStopRegistrationExpired},
      {"wm_stop_inactive", kStopInactive},
      {"wm_delete_expired_workers", kDeleteExpiredWorkers},
  };
}

#undef DROVER_WM_POOL_COLUMNS
#undef DROVER_WM_RUNNING_OF_W
#undef DROVER_WM_WORKER_COLUMNS
#undef DROVER_WM_WORKER_INSERT
#undef DROVER_WM_STATS_SELECT

}  // namespace drover::queue::worker_manager::sql

#endif  // DROVER_QUEUE_WORKER_MANAGER_WORKER_SQL_H_
