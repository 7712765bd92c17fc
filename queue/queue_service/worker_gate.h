// WorkerGate: what ClaimWork asks the worker manager about the worker that
// is claiming. The Queue service does not own workers; the worker manager
// (queue/worker_manager) implements this so that a quarantined worker
// claims nothing and claims count as signs of life, without the Queue
// service knowing its tables.
#ifndef DROVER_QUEUE_QUEUE_SERVICE_WORKER_GATE_H_
#define DROVER_QUEUE_QUEUE_SERVICE_WORKER_GATE_H_

#include <string>
#include <vector>

namespace drover::queue::queue_service {

class WorkerGate {
 public:
  virtual ~WorkerGate() = default;

  // Whether worker (`worker_group`, `worker_id`) may claim from
  // `task_queue_id` (its pool) now: false while the worker manager holds it
  // in quarantine, true for workers it does not know (fixed credentials).
  // Also notes the worker as seen. May answer from a cache a few seconds
  // old. Called on executor threads; thread-safe. Never fails a claim: an
  // error reading the database is logged and the claim allowed.
  virtual bool MayClaim(const std::string& task_queue_id,
                        const std::string& worker_group,
                        const std::string& worker_id) = 0;

  // Records that the worker just claimed `runs` ("<task_id>/<run_id>"):
  // first claim, recent tasks, last seen. Best effort; thread-safe.
  virtual void NoteClaimed(const std::string& task_queue_id,
                           const std::string& worker_group,
                           const std::string& worker_id,
                           const std::vector<std::string>& runs) = 0;
};

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_WORKER_GATE_H_
