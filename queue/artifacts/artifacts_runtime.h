// ArtifactsRuntime: the artifacts side of one drover-queue process, built
// in one call for the server's wiring: its ArtifactStore (own connection
// pool), the LogNotifier (one LISTEN connection) feeding the service's
// TailLog followers, and the ArtifactsService itself.
//
// Wiring (queue/server): Start() it with the process's blob store, clock,
// authorizer and RPC executor; AddService(&runtime->service()); register
// the blob store's HTTP routes; run ReapPass from a resolver loop; call
// BeginShutdown() before the gRPC server shuts down.
#ifndef DROVER_QUEUE_ARTIFACTS_ARTIFACTS_RUNTIME_H_
#define DROVER_QUEUE_ARTIFACTS_ARTIFACTS_RUNTIME_H_

#include <memory>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "queue/artifacts/artifact_store.h"
#include "queue/artifacts/artifacts_service.h"
#include "queue/artifacts/log_notifier.h"
#include "queue/blobstore/blob_store.h"
#include "queue/queue_service/authorizer.h"
#include "queue/queue_service/executor.h"

namespace drover::queue::artifacts {

struct ArtifactsRuntimeOptions {
  // connection_string is required (the queue's database).
  ArtifactStoreOptions store;
  ArtifactsServiceOptions service;
};

class ArtifactsRuntime {
 public:
  // Opens the store, starts listening for live-log changes and makes the
  // service. Every pointer must outlive the runtime. Errors: those of
  // ArtifactStore::Open and LogNotifier::Start (InternalError).
  static absl::StatusOr<std::unique_ptr<ArtifactsRuntime>> Start(
      ArtifactsRuntimeOptions options, blobstore::BlobStore* blobs,
      const Clock* clock, queue_service::Authorizer* authorizer,
      queue_service::BoundedExecutor* executor);
  // Stops the notifier. The executor must have been drained first.
  ~ArtifactsRuntime();

  ArtifactsService& service() { return *service_; }
  ArtifactStore& store() { return *store_; }

  // One expiry-reaper pass (ReapExpiredArtifacts); for a resolver loop.
  absl::StatusOr<int> ReapPass(int batch);

  // Ends parked TailLog streams; call before grpc::Server::Shutdown.
  void BeginShutdown();

 private:
  ArtifactsRuntime() = default;

  blobstore::BlobStore* blobs_ = nullptr;
  std::unique_ptr<ArtifactStore> store_;
  std::unique_ptr<ArtifactsService> service_;
  std::unique_ptr<LogNotifier> notifier_;
};

}  // namespace drover::queue::artifacts

#endif  // DROVER_QUEUE_ARTIFACTS_ARTIFACTS_RUNTIME_H_
