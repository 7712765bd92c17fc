// WorkerManagerClient: the drover.v1.WorkerManager service (pools,
// workers, registration, heartbeats, capacity statistics), one method per
// RPC.
//
// Each method returns the response or the server's error decoded into an
// absl::Status that keeps {code, message, details}.
//
// Retries: UNAVAILABLE is retried for reads and for calls whose repeat
// leaves the same state (updates, quarantine, heartbeat, removal,
// shutdown). Creations, secret resets and (re-)registrations are not:
// a repeat after a lost answer would conflict or, for ReregisterWorker,
// present an already used secret; the worker daemon handles those itself.
//
// Thread-safe.
#ifndef DROVER_CLIENT_WORKER_MANAGER_CLIENT_H_
#define DROVER_CLIENT_WORKER_MANAGER_CLIENT_H_

#include "absl/status/statusor.h"
#include "client/call.h"
#include "client/connection.h"
#include "client/service_client.h"
#include "drover/v1/worker_manager.grpc.pb.h"

namespace drover::client {

class WorkerManagerClient : public ServiceClient<v1::WorkerManager> {
 public:
  // Takes the shared connection and the CallOptions of the calls that
  // pass none of their own (ServiceClient's constructor).
  using ServiceClient::ServiceClient;

  absl::StatusOr<v1::WorkerPool> CreateWorkerPool(
      const v1::CreateWorkerPoolRequest& request, Options options = {}) const;
  absl::StatusOr<v1::WorkerPool> UpdateWorkerPool(
      const v1::UpdateWorkerPoolRequest& request, Options options = {}) const;
  absl::StatusOr<v1::DeleteWorkerPoolResponse> DeleteWorkerPool(
      const v1::WorkerPoolIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::WorkerPool> GetWorkerPool(
      const v1::WorkerPoolIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListWorkerPoolsResponse> ListWorkerPools(
      const v1::ListWorkerPoolsRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ResetRegistrationSecretResponse> ResetRegistrationSecret(
      const v1::ResetRegistrationSecretRequest& request,
      Options options = {}) const;
  absl::StatusOr<v1::WorkerPoolStats> GetWorkerPoolStats(
      const v1::WorkerPoolIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListWorkerPoolStatsResponse> ListWorkerPoolStats(
      const v1::ListWorkerPoolStatsRequest& request,
      Options options = {}) const;
  absl::StatusOr<v1::CreateWorkerResponse> CreateWorker(
      const v1::CreateWorkerRequest& request, Options options = {}) const;
  absl::StatusOr<v1::Worker> GetWorker(const v1::WorkerKey& request,
                                       Options options = {}) const;
  absl::StatusOr<v1::ListWorkersResponse> ListWorkers(
      const v1::ListWorkersRequest& request, Options options = {}) const;
  absl::StatusOr<v1::Worker> QuarantineWorker(
      const v1::QuarantineWorkerRequest& request, Options options = {}) const;
  absl::StatusOr<v1::RemoveWorkerResponse> RemoveWorker(
      const v1::WorkerKey& request, Options options = {}) const;
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request, Options options = {}) const;
  absl::StatusOr<v1::RegisterWorkerResponse> ReregisterWorker(
      const v1::ReregisterWorkerRequest& request, Options options = {}) const;
  absl::StatusOr<v1::WorkerHeartbeatResponse> WorkerHeartbeat(
      const v1::WorkerHeartbeatRequest& request, Options options = {}) const;
  absl::StatusOr<v1::WorkerShutdownResponse> WorkerShutdown(
      const v1::WorkerKey& request, Options options = {}) const;
};

}  // namespace drover::client

#endif  // DROVER_CLIENT_WORKER_MANAGER_CLIENT_H_
