#include "client/worker_manager_client.h"

namespace drover::client {

absl::StatusOr<v1::WorkerPool> WorkerManagerClient::CreateWorkerPool(
    const v1::CreateWorkerPoolRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::CreateWorkerPool, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::WorkerPool> WorkerManagerClient::UpdateWorkerPool(
    const v1::UpdateWorkerPoolRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::UpdateWorkerPool, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::DeleteWorkerPoolResponse>
WorkerManagerClient::DeleteWorkerPool(const v1::WorkerPoolIdRequest& request,
                                      Options options) const {
  return Call(&v1::WorkerManager::Stub::DeleteWorkerPool, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::WorkerPool> WorkerManagerClient::GetWorkerPool(
    const v1::WorkerPoolIdRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::GetWorkerPool, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListWorkerPoolsResponse>
WorkerManagerClient::ListWorkerPools(const v1::ListWorkerPoolsRequest& request,
                                     Options options) const {
  return Call(&v1::WorkerManager::Stub::ListWorkerPools, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ResetRegistrationSecretResponse>
WorkerManagerClient::ResetRegistrationSecret(
    const v1::ResetRegistrationSecretRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::ResetRegistrationSecret, request,
              options, Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::WorkerPoolStats> WorkerManagerClient::GetWorkerPoolStats(
    const v1::WorkerPoolIdRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::GetWorkerPoolStats, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListWorkerPoolStatsResponse>
WorkerManagerClient::ListWorkerPoolStats(
    const v1::ListWorkerPoolStatsRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::ListWorkerPoolStats, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::CreateWorkerResponse> WorkerManagerClient::CreateWorker(
    const v1::CreateWorkerRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::CreateWorker, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::Worker> WorkerManagerClient::GetWorker(
    const v1::WorkerKey& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::GetWorker, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListWorkersResponse> WorkerManagerClient::ListWorkers(
    const v1::ListWorkersRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::ListWorkers, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::Worker> WorkerManagerClient::QuarantineWorker(
    const v1::QuarantineWorkerRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::QuarantineWorker, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::RemoveWorkerResponse> WorkerManagerClient::RemoveWorker(
    const v1::WorkerKey& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::RemoveWorker, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::RegisterWorkerResponse> WorkerManagerClient::RegisterWorker(
    const v1::RegisterWorkerRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::RegisterWorker, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::RegisterWorkerResponse>
WorkerManagerClient::ReregisterWorker(
    const v1::ReregisterWorkerRequest& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::ReregisterWorker, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::WorkerHeartbeatResponse>
WorkerManagerClient::WorkerHeartbeat(const v1::WorkerHeartbeatRequest& request,
                                     Options options) const {
  return Call(&v1::WorkerManager::Stub::WorkerHeartbeat, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::WorkerShutdownResponse> WorkerManagerClient::WorkerShutdown(
    const v1::WorkerKey& request, Options options) const {
  return Call(&v1::WorkerManager::Stub::WorkerShutdown, request, options,
              Idempotency::kIdempotent);
}

}  // namespace drover::client
