// WorkerManagerSystem: the worker manager of one drover-queue process: its
// store (own connection pool), the WorkerManager service on an executor of
// its own, and the lifecycle resolver thread that stops workers whose
// credentials or registration timed out or that went quiet, and deletes
// stopped rows after kStoppedWorkerRetention. Replicas share the resolver
// work through the database (SKIP LOCKED).
//
// Wiring (queue/server/serve.cc): open it after the AuthSystem, register
// service() with the QueueServer, destroy it after the server stopped.
#ifndef DROVER_QUEUE_WORKER_MANAGER_WORKER_MANAGER_SYSTEM_H_
#define DROVER_QUEUE_WORKER_MANAGER_WORKER_MANAGER_SYSTEM_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "queue/auth/auth_system.h"
#include "queue/queue_service/executor.h"
#include "queue/store/store.h"
#include "queue/worker_manager/worker_claim_gate.h"
#include "queue/worker_manager/worker_manager_service.h"
#include "queue/worker_manager/worker_store.h"

namespace drover::queue::worker_manager {

struct WorkerManagerOptions {
  std::string connection_string;
  int pool_size = 4;
  int rpc_threads = 4;
  size_t rpc_queue = 1024;
  // Run the lifecycle resolver thread, every `resolver_interval`.
  bool run_resolver = true;
  absl::Duration resolver_interval = absl::Seconds(30);
  int resolver_batch = 500;
};

class WorkerManagerSystem {
 public:
  // `auth` (keys, certificate issuer, authorizer), `tasks` and `clock` must
  // outlive the system. Errors: WorkerStore::Open's.
  static absl::StatusOr<std::unique_ptr<WorkerManagerSystem>> Open(
      const WorkerManagerOptions& options, auth::AuthSystem* auth,
      store::Store* tasks, const Clock* clock);

  // Stops the resolver and drains the executor; the gRPC server must have
  // stopped before.
  ~WorkerManagerSystem();

  WorkerManagerService* service() { return service_.get(); }
  WorkerStore& store() { return *store_; }
  // For the Queue service's ClaimWork (QueueService::SetWorkerGate):
  // quarantine and last-seen bookkeeping.
  WorkerClaimGate* claim_gate() { return claim_gate_.get(); }

  // One resolver pass (all batches until a pass finds nothing). Errors:
  // the store's.
  absl::StatusOr<ExpiryCounts> ResolveOnce();

 private:
  explicit WorkerManagerSystem(const WorkerManagerOptions& options)
      : options_(options) {}
  void ResolverLoop();

  const WorkerManagerOptions options_;
  std::unique_ptr<WorkerStore> store_;
  std::unique_ptr<WorkerClaimGate> claim_gate_;
  std::unique_ptr<queue_service::BoundedExecutor> executor_;
  std::unique_ptr<WorkerManagerService> service_;

  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread resolver_;
};

}  // namespace drover::queue::worker_manager

#endif  // DROVER_QUEUE_WORKER_MANAGER_WORKER_MANAGER_SYSTEM_H_
