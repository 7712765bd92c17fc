// WorkerStore: the `worker_pools` and `workers` tables
// (migrations/0400_worker_manager.sql) on PostgreSQL, for the WorkerManager
// service and its lifecycle resolver.
//
// The store knows rows, not policy: the service decides what a
// registration may change and hands the store a mutation that runs while
// the pool row is share-locked and the worker row is locked FOR UPDATE, so
// checking a single-use secret and rotating it are one atomic step (two
// concurrent re-registrations with the same secret cannot both succeed).
// Secrets arrive already hashed or encrypted; the store never sees one in
// the clear.
//
// Own connection pool. Every method is one short transaction. Thread-safe.
#ifndef DROVER_QUEUE_WORKER_MANAGER_WORKER_STORE_H_
#define DROVER_QUEUE_WORKER_MANAGER_WORKER_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/keyring.h"
#include "queue/auth/key_rotation.h"
#include "queue/store/pg_pool.h"
#include "queue/store/types.h"

namespace drover::queue::worker_manager {

inline constexpr int kMaxRecentTasks = 20;
// Spent re-registration secrets remembered per worker (as keyed hashes) so
// that any of them is refused as a replay (migrations/0510).
inline constexpr size_t kMaxSpentSecrets = 16;

struct PoolConfig {
  std::string description;
  std::string owner;
  std::string provider = "static";
  int min_capacity = 0;
  int max_capacity = 0;
  absl::Duration registration_timeout = absl::Hours(24);
  absl::Duration reregistration_timeout = absl::Hours(96);
  // Zero: never.
  absl::Duration queue_inactivity_timeout = absl::ZeroDuration();
  std::optional<absl::Time> reregistration_sunset;
  // A JSON object (canonical text).
  std::string worker_config = "{}";
};

struct PoolRecord {
  std::string worker_pool_id;
  PoolConfig config;
  absl::Time created;
  absl::Time last_modified;
  // Keyed hash of the pool's registration secret; empty when none.
  std::string registration_secret_hash;
  // Only inside a mutation of MutateWorker with `count_capacity`: the total
  // capacity of the pool's workers that are not stopped, other than the
  // one being mutated, read while no other such mutation of the pool runs.
  std::optional<int64_t> other_workers_capacity;
};

struct WorkerFactsRecord {
  std::string hostname;
  std::string os;
  std::string engine;
  std::string worker_version;
  std::optional<absl::Time> boot_time;
};

enum class WorkerState { kRequested, kRunning, kStopping, kStopped };
std::string_view WorkerStateName(WorkerState state);
// Errors: InputError("state").
absl::StatusOr<WorkerState> ParseWorkerState(std::string_view name);

struct WorkerRecord {
  std::string worker_pool_id;
  std::string worker_group;
  std::string worker_id;
  std::string provider = "static";
  WorkerState state = WorkerState::kRequested;
  int capacity = 1;
  absl::Time created;
  std::optional<absl::Time> registered;
  std::optional<absl::Time> last_seen;
  std::optional<absl::Time> credentials_expire;
  // The row is deleted after this.
  absl::Time expires;
  std::optional<absl::Time> quarantine_until;
  std::string quarantine_reason;
  std::string stop_reason;
  // Keyed hash; empty when the worker registered with the pool's secret.
  std::string static_secret_hash;
  // KeyRing ciphertext and its key id; empty before the first
  // registration.
  std::string reregistration_secret;
  std::string reregistration_key_id;
  // Keyed hashes of the last kMaxSpentSecrets secrets the worker spent,
  // newest first.
  std::vector<std::string> spent_secret_hashes;
  bool supports_reregistration = false;
  std::optional<absl::Time> first_claim;
  std::vector<std::string> recent_tasks;
  WorkerFactsRecord facts;
  // Read only: runs of the pool's queue the worker holds now.
  int running_tasks = 0;
};

struct PoolStatsRecord {
  std::string worker_pool_id;
  int min_capacity = 0;
  int max_capacity = 0;
  int64_t requested = 0;
  int64_t running = 0;
  int64_t stopping = 0;
  int64_t stopped = 0;
  int64_t quarantined = 0;
  int64_t total_capacity = 0;
  int64_t running_tasks = 0;
  int64_t idle_capacity = 0;
  int64_t pending_tasks = 0;
  std::optional<absl::Time> oldest_pending;
};

struct RunRef {
  std::string task_id;
  int run_id = 0;
};

struct WorkerStoreOptions : store::PgConnectionSettings {};

// What the lifecycle resolver did in one pass.
struct ExpiryCounts {
  int credentials_expired = 0;
  int registration_expired = 0;
  int inactive = 0;
  int deleted = 0;
};

// "<pool>/<group>/<id>": how a worker is named in messages, hash subjects
// and the associated data of its re-registration secret.
inline std::string WorkerPath(std::string_view pool, std::string_view group,
                              std::string_view id) {
  return std::string(pool) + "/" + std::string(group) + "/" + std::string(id);
}

// Where a worker's re-registration secret belongs, bound into its
// ciphertext: WorkerPath (must outlive the returned value).
inline crypto::AssociatedData ReregistrationSecretAd(
    std::string_view worker_path) {
  return {"workers", "reregistration_secret", worker_path};
}

// ResourceNotFound naming the worker (pool, group and id in the details).
absl::Status WorkerNotFound(const std::string& pool, const std::string& group,
                            const std::string& id);

class WorkerStore final : public auth::EncryptedColumn {
 public:
  // The mutation of MutateWorker: given the pool and the current row (none
  // when it does not exist), the row to write, or an error (nothing is
  // written). It runs inside the transaction: no network calls.
  using Mutation = std::function<absl::StatusOr<WorkerRecord>(
      const PoolRecord& pool, const std::optional<WorkerRecord>& current)>;

  // `clock` must outlive the store. Errors: as PgConnectionPool::Create.
  static absl::StatusOr<std::unique_ptr<WorkerStore>> Open(
      const WorkerStoreOptions& options, const Clock* clock);

  // Errors: RequestConflict when the pool exists.
  absl::StatusOr<PoolRecord> CreatePool(const std::string& id,
                                        const PoolConfig& config);
  // Replaces the configuration. Errors: ResourceNotFound.
  absl::StatusOr<PoolRecord> UpdatePool(const std::string& id,
                                        const PoolConfig& config);
  // Errors: ResourceNotFound; RequestConflict while workers that are not
  // stopped remain (naming how many). Stopped workers go with the pool.
  absl::Status DeletePool(const std::string& id);
  // Errors: ResourceNotFound.
  absl::StatusOr<PoolRecord> GetPool(const std::string& id);
  // In id order after `after`; the token is the last id of a full page.
  absl::StatusOr<store::Page<PoolRecord>> ListPools(const std::string& after,
                                                    int limit);
  // Sets (a hash) or clears (empty) the pool's registration secret.
  // Errors: ResourceNotFound.
  absl::Status SetRegistrationSecretHash(const std::string& id,
                                         const std::string& hash);

  // Errors: ResourceNotFound (pool); RequestConflict when the worker
  // exists.
  absl::StatusOr<WorkerRecord> CreateWorker(const WorkerRecord& worker);
  // Errors: ResourceNotFound (worker).
  absl::StatusOr<WorkerRecord> GetWorker(const std::string& pool,
                                         const std::string& group,
                                         const std::string& id);
  // Workers of `pool` in (group, id) order after `after` ("group/id");
  // `states` empty means every state. Errors: ResourceNotFound (pool).
  absl::StatusOr<store::Page<WorkerRecord>> ListWorkers(
      const std::string& pool, const std::vector<WorkerState>& states,
      const std::string& after, int limit);
  // Runs `mutation` with the pool share-locked and the worker row locked,
  // then writes the row it returns (insert or update). With
  // `count_capacity` (registrations against max_capacity), in a pool that
  // has a maximum, it also takes the pool's capacity lock, so such
  // mutations of one pool run one at a time, and fills
  // PoolRecord::other_workers_capacity. Errors:
  // ResourceNotFound (pool); the mutation's.
  absl::StatusOr<WorkerRecord> MutateWorker(const std::string& pool,
                                            const std::string& group,
                                            const std::string& id,
                                            const Mutation& mutation,
                                            bool count_capacity = false);

  // For ClaimWork: the worker's quarantine end (nullopt when none), or
  // ResourceNotFound when the worker is not managed here; moves last_seen
  // to now unless it is later than now - `seen_granularity`.
  absl::StatusOr<std::optional<absl::Time>> ClaimCheck(
      const std::string& pool, const std::string& group, const std::string& id,
      absl::Duration seen_granularity);
  // Records claimed runs ("<task_id>/<run_id>"): first claim, last seen,
  // recent tasks (newest 20). A worker that is not managed: no change.
  absl::Status NoteClaimed(const std::string& pool, const std::string& group,
                           const std::string& id,
                           const std::vector<std::string>& runs);

  // Running runs the worker holds on its pool's queue.
  absl::StatusOr<std::vector<RunRef>> RunningRuns(const std::string& pool,
                                                  const std::string& group,
                                                  const std::string& id);

  // Errors: ResourceNotFound (pool).
  absl::StatusOr<PoolStatsRecord> PoolStats(const std::string& pool);
  absl::StatusOr<store::Page<PoolStatsRecord>> ListPoolStats(
      const std::string& after, int limit);

  // One lifecycle pass of up to `batch` rows per kind: stops running or
  // stopping workers whose credentials ran out, requested workers past
  // their pool's registration timeout and running workers not seen within
  // the pool's queue-inactivity timeout; deletes rows past `expires`.
  // Replicas share the work (SKIP LOCKED).
  absl::StatusOr<ExpiryCounts> ExpireWorkers(int batch);

  // auth::EncryptedColumn: workers.reregistration_secret, for
  // `drover-queue rotate-keys`. Row keys in reports are "pool/group/id".
  std::string_view column_name() const override {
    return "workers.reregistration_secret";
  }
  absl::StatusOr<auth::RotationBatch> RotateBatch(
      const crypto::KeyRing& keyring, const std::string& after,
      int batch) override;
  absl::StatusOr<std::map<std::string, int64_t>> CountByKeyId() override;

 private:
  WorkerStore(std::unique_ptr<store::PgConnectionPool> pool, const Clock* clock)
      : pool_(std::move(pool)), clock_(clock) {}
  absl::Time Now() const;

  std::unique_ptr<store::PgConnectionPool> pool_;
  const Clock* clock_;
};

// How long a stopped worker row is kept before the resolver deletes it.
inline constexpr absl::Duration kStoppedWorkerRetention = absl::Hours(24);

}  // namespace drover::queue::worker_manager

#endif  // DROVER_QUEUE_WORKER_MANAGER_WORKER_STORE_H_
