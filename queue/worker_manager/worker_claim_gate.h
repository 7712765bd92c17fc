// WorkerClaimGate: the worker manager's answer to ClaimWork's questions
// (queue_service::WorkerGate): is this worker quarantined, and which runs
// did it just claim (last seen, first claim, recent tasks).
//
// The quarantine is read through a small per-worker cache (cache_ttl), so
// a claim costs no extra database round trip in the common case, and a
// quarantine set on any replica takes effect everywhere within cache_ttl.
// Workers the worker manager does not know (fixed credentials) may always
// claim; their claims leave no trace here.
#ifndef DROVER_QUEUE_WORKER_MANAGER_WORKER_CLAIM_GATE_H_
#define DROVER_QUEUE_WORKER_MANAGER_WORKER_CLAIM_GATE_H_

#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "queue/queue_service/worker_gate.h"
#include "queue/worker_manager/worker_store.h"

namespace drover::queue::worker_manager {

struct WorkerClaimGateOptions {
  // How long a worker's quarantine state is reused before it is re-read.
  absl::Duration cache_ttl = absl::Seconds(5);
  // A claim moves last_seen at most this often per worker.
  absl::Duration seen_granularity = absl::Seconds(30);
  // The cache is emptied when it grows beyond this many workers.
  size_t max_entries = 100000;
};

class WorkerClaimGate final : public queue_service::WorkerGate {
 public:
  // `store` and `clock` must outlive the gate.
  WorkerClaimGate(WorkerStore* store, const Clock* clock,
                  WorkerClaimGateOptions options = {});

  // queue_service::WorkerGate; thread-safe.
  bool MayClaim(const std::string& task_queue_id,
                const std::string& worker_group,
                const std::string& worker_id) override;
  void NoteClaimed(const std::string& task_queue_id,
                   const std::string& worker_group,
                   const std::string& worker_id,
                   const std::vector<std::string>& runs) override;

  // Drops the cached state of one worker (after a change in this process,
  // so it applies at once here). Thread-safe.
  void Forget(const std::string& pool, const std::string& group,
              const std::string& id);

 private:
  struct Entry {
    bool managed = false;
    std::optional<absl::Time> quarantine_until;
    absl::Time fetched;
  };
  static std::string Key(const std::string& pool, const std::string& group,
                         const std::string& id);

  WorkerStore* const store_;
  const Clock* const clock_;
  const WorkerClaimGateOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;  // Guarded by mu_.
};

}  // namespace drover::queue::worker_manager

#endif  // DROVER_QUEUE_WORKER_MANAGER_WORKER_CLAIM_GATE_H_
