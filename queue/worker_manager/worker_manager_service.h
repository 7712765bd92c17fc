// WorkerManagerService: the drover.v1.WorkerManager gRPC service: worker
// pools, static workers, registration (RegisterWorker, needing no
// credentials: the proof is a static or registration secret) and
// re-registration (ReregisterWorker: a single-use secret, rotated at each
// use), liveness (heartbeat, shutdown, quarantine, removal) and capacity
// statistics. Scopes: docs/api-scopes.md.
//
// Secrets: static and registration secrets are kept as keyed hashes
// (TokenHasher) bound to the worker or pool; the re-registration secret is
// encrypted with the KeyRing, its associated data binding it to the
// worker's row, and the hash of the secret it replaced is kept so a replay
// is refused as such rather than as an unknown secret.
//
// Errors (all precise, naming the field or worker): InputError for
// malformed requests and for registrations without re-registration support
// after the pool's sunset; ResourceNotFound for unknown pools and workers;
// AuthenticationFailed for a wrong proof, a wrong or replayed
// re-registration secret, or credentials of another worker; ResourceExpired
// for a registration after the registration timeout or a re-registration
// after the credentials expired; RequestConflict for stopped, stopping or
// not yet registered workers and for pools that still have workers.
//
// Work runs on a BoundedExecutor after the ScopeAuthorizer allowed it.
#ifndef DROVER_QUEUE_WORKER_MANAGER_WORKER_MANAGER_SERVICE_H_
#define DROVER_QUEUE_WORKER_MANAGER_WORKER_MANAGER_SERVICE_H_

#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/crypto/keyring.h"
#include "common/crypto/token_hash.h"
#include "drover/v1/worker_manager.grpc.pb.h"
#include "queue/auth/certificate.h"
#include "queue/auth/scope_authorizer.h"
#include "queue/auth/service_util.h"
#include "queue/queue_service/executor.h"
#include "queue/store/store.h"
#include "queue/worker_manager/worker_claim_gate.h"
#include "queue/worker_manager/worker_store.h"

namespace drover::queue::worker_manager {

inline constexpr absl::Duration kDefaultRegistrationTimeout = absl::Hours(24);
inline constexpr absl::Duration kDefaultReregistrationTimeout = absl::Hours(96);
inline constexpr absl::Duration kMaxLifecycleTimeout = absl::Hours(24 * 30);
inline constexpr absl::Duration kMinLifecycleTimeout = absl::Seconds(60);
inline constexpr int kMaxPoolCapacity = 100000;
inline constexpr int kMaxWorkerCapacity = 1000;

// Client id of a worker's credentials: "worker/<pool>/<group>/<id>".
std::string WorkerClientId(std::string_view pool, std::string_view group,
                           std::string_view id);
// Scopes of a worker's credentials: claim from its pool as itself,
// re-register, heartbeat/shutdown, read the pool's secrets
// ("worker-pool:<pool>/*").
std::vector<std::string> WorkerCredentialScopes(std::string_view pool,
                                                std::string_view group,
                                                std::string_view id);

// Converts and validates a pool configuration (defaults applied).
// Errors: InputError naming "config.<field>".
absl::StatusOr<PoolConfig> ValidatePoolConfig(
    const v1::WorkerPoolConfig& config);

struct WorkerManagerDeps {
  WorkerStore* store = nullptr;
  // For resolving the runs of removed or shut-down workers.
  store::Store* tasks = nullptr;
  const crypto::KeyRing* keyring = nullptr;
  const crypto::TokenHasher* hasher = nullptr;
  const auth::CertificateIssuer* certificates = nullptr;
  auth::ScopeAuthorizer* authorizer = nullptr;
  const Clock* clock = nullptr;
  queue_service::BoundedExecutor* executor = nullptr;
  // Optional: told when a quarantine changes so this replica's claims see
  // it at once (others within the gate's cache TTL).
  WorkerClaimGate* claim_gate = nullptr;
};

class WorkerManagerService final : public v1::WorkerManager::CallbackService {
 public:
  // Every pointer must be set and outlive the service; the executor must be
  // drained before the service is destroyed.
  explicit WorkerManagerService(const WorkerManagerDeps& deps);

  grpc::ServerUnaryReactor* CreateWorkerPool(
      grpc::CallbackServerContext* context,
      const v1::CreateWorkerPoolRequest* request,
      v1::WorkerPool* response) override;
  grpc::ServerUnaryReactor* UpdateWorkerPool(
      grpc::CallbackServerContext* context,
      const v1::UpdateWorkerPoolRequest* request,
      v1::WorkerPool* response) override;
  grpc::ServerUnaryReactor* DeleteWorkerPool(
      grpc::CallbackServerContext* context,
      const v1::WorkerPoolIdRequest* request,
      v1::DeleteWorkerPoolResponse* response) override;
  grpc::ServerUnaryReactor* GetWorkerPool(
      grpc::CallbackServerContext* context,
      const v1::WorkerPoolIdRequest* request,
      v1::WorkerPool* response) override;
  grpc::ServerUnaryReactor* ListWorkerPools(
      grpc::CallbackServerContext* context,
      const v1::ListWorkerPoolsRequest* request,
      v1::ListWorkerPoolsResponse* response) override;
  grpc::ServerUnaryReactor* ResetRegistrationSecret(
      grpc::CallbackServerContext* context,
      const v1::ResetRegistrationSecretRequest* request,
      v1::ResetRegistrationSecretResponse* response) override;
  grpc::ServerUnaryReactor* GetWorkerPoolStats(
      grpc::CallbackServerContext* context,
      const v1::WorkerPoolIdRequest* request,
      v1::WorkerPoolStats* response) override;
  grpc::ServerUnaryReactor* ListWorkerPoolStats(
      grpc::CallbackServerContext* context,
      const v1::ListWorkerPoolStatsRequest* request,
      v1::ListWorkerPoolStatsResponse* response) override;
  grpc::ServerUnaryReactor* CreateWorker(
      grpc::CallbackServerContext* context,
      const v1::CreateWorkerRequest* request,
      v1::CreateWorkerResponse* response) override;
  grpc::ServerUnaryReactor* GetWorker(grpc::CallbackServerContext* context,
                                      const v1::WorkerKey* request,
                                      v1::Worker* response) override;
  grpc::ServerUnaryReactor* ListWorkers(
      grpc::CallbackServerContext* context,
      const v1::ListWorkersRequest* request,
      v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* QuarantineWorker(
      grpc::CallbackServerContext* context,
      const v1::QuarantineWorkerRequest* request,
      v1::Worker* response) override;
  grpc::ServerUnaryReactor* RemoveWorker(
      grpc::CallbackServerContext* context, const v1::WorkerKey* request,
      v1::RemoveWorkerResponse* response) override;
  grpc::ServerUnaryReactor* RegisterWorker(
      grpc::CallbackServerContext* context,
      const v1::RegisterWorkerRequest* request,
      v1::RegisterWorkerResponse* response) override;
  grpc::ServerUnaryReactor* ReregisterWorker(
      grpc::CallbackServerContext* context,
      const v1::ReregisterWorkerRequest* request,
      v1::RegisterWorkerResponse* response) override;
  grpc::ServerUnaryReactor* WorkerHeartbeat(
      grpc::CallbackServerContext* context,
      const v1::WorkerHeartbeatRequest* request,
      v1::WorkerHeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* WorkerShutdown(
      grpc::CallbackServerContext* context, const v1::WorkerKey* request,
      v1::WorkerShutdownResponse* response) override;

 private:
  absl::Time Now() const;
  // Fills credentials, a fresh re-registration secret's plaintext and the
  // worker into `response` for a row already rotated to `secret`.
  absl::Status Respond(const PoolRecord& pool, const WorkerRecord& worker,
                       const std::string& secret,
                       v1::RegisterWorkerResponse* response) const;
  // Resolves the worker's running runs exception/worker-shutdown.
  absl::StatusOr<int> ResolveRunsOf(const WorkerRecord& worker);

  const WorkerManagerDeps deps_;
  auth::AuthorizedRunner runner_;
};

}  // namespace drover::queue::worker_manager

#endif  // DROVER_QUEUE_WORKER_MANAGER_WORKER_MANAGER_SERVICE_H_
