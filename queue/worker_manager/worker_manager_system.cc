#include "queue/worker_manager/worker_manager_system.h"

#include <utility>

#include "common/status.h"
#include "spdlog/spdlog.h"

namespace drover::queue::worker_manager {

absl::StatusOr<std::unique_ptr<WorkerManagerSystem>> WorkerManagerSystem::Open(
    const WorkerManagerOptions& options, auth::AuthSystem* auth,
    store::Store* tasks, const Clock* clock) {
  std::unique_ptr<WorkerManagerSystem> system(new WorkerManagerSystem(options));
  WorkerStoreOptions store_options;
  store_options.connection_string = options.connection_string;
  store_options.pool_size = options.pool_size;
  DROVER_ASSIGN_OR_RETURN(system->store_,
                          WorkerStore::Open(store_options, clock));
  system->claim_gate_ =
      std::make_unique<WorkerClaimGate>(system->store_.get(), clock);
  system->executor_ = std::make_unique<queue_service::BoundedExecutor>(
      options.rpc_threads, options.rpc_queue);
  WorkerManagerDeps deps;
  deps.store = system->store_.get();
  deps.tasks = tasks;
  deps.keyring = &auth->keys().keyring;
  deps.hasher = &auth->keys().token_hasher;
  deps.certificates = &auth->certificate_issuer();
  deps.authorizer = auth->authorizer();
  deps.clock = clock;
  deps.executor = system->executor_.get();
  deps.claim_gate = system->claim_gate_.get();
  system->service_ = std::make_unique<WorkerManagerService>(deps);
  if (options.run_resolver) {
    system->resolver_ = std::thread([s = system.get()] { s->ResolverLoop(); });
  }
  return system;
}

WorkerManagerSystem::~WorkerManagerSystem() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (resolver_.joinable()) resolver_.join();
  if (executor_ != nullptr) executor_->Shutdown();
}

absl::StatusOr<ExpiryCounts> WorkerManagerSystem::ResolveOnce() {
  ExpiryCounts total;
  // Bounded so one pass cannot run forever against a flood of rows.
  for (int round = 0; round < 100; ++round) {
    DROVER_ASSIGN_OR_RETURN(ExpiryCounts c,
                            store_->ExpireWorkers(options_.resolver_batch));
    total.credentials_expired += c.credentials_expired;
    total.registration_expired += c.registration_expired;
    total.inactive += c.inactive;
    total.deleted += c.deleted;
    const int batch = options_.resolver_batch;
    if (c.credentials_expired < batch && c.registration_expired < batch &&
        c.inactive < batch && c.deleted < batch) {
      break;
    }
  }
  return total;
}

void WorkerManagerSystem::ResolverLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    absl::StatusOr<ExpiryCounts> counts = ResolveOnce();
    if (!counts.ok()) {
      spdlog::warn("worker lifecycle resolver: {}", counts.status().ToString());
    } else if (counts->credentials_expired + counts->registration_expired +
                   counts->inactive + counts->deleted >
               0) {
      spdlog::info(
          "worker lifecycle: {} credentials expired, {} registration "
          "timed out, {} inactive, {} rows deleted",
          counts->credentials_expired, counts->registration_expired,
          counts->inactive, counts->deleted);
    }
    lock.lock();
    stop_cv_.wait_for(lock,
                      absl::ToChronoMilliseconds(options_.resolver_interval),
                      [this] { return stop_; });
  }
}

}  // namespace drover::queue::worker_manager
