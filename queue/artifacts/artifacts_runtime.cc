#include "queue/artifacts/artifacts_runtime.h"

#include "common/status.h"

namespace drover::queue::artifacts {

absl::StatusOr<std::unique_ptr<ArtifactsRuntime>> ArtifactsRuntime::Start(
    ArtifactsRuntimeOptions options, blobstore::BlobStore* blobs,
    const Clock* clock, queue_service::Authorizer* authorizer,
    queue_service::BoundedExecutor* executor) {
  std::unique_ptr<ArtifactsRuntime> runtime(new ArtifactsRuntime());
  runtime->blobs_ = blobs;
  DROVER_ASSIGN_OR_RETURN(runtime->store_,
                          ArtifactStore::Open(options.store, clock));
  runtime->service_ =
      std::make_unique<ArtifactsService>(options.service, runtime->store_.get(),
                                         blobs, clock, authorizer, executor);
  runtime->notifier_ = std::make_unique<LogNotifier>(LogNotifier::Options{
      .connection_string = options.store.connection_string});
  ArtifactsService* service = runtime->service_.get();
  DROVER_RETURN_IF_ERROR(
      runtime->notifier_->Start([service](const std::string& payload) {
        service->NotifyLogChanged(payload);
      }));
  return runtime;
}

ArtifactsRuntime::~ArtifactsRuntime() {
  if (notifier_) notifier_->Stop();
  if (service_) service_->BeginShutdown();
}

absl::StatusOr<int> ArtifactsRuntime::ReapPass(int batch) {
  return ReapExpiredArtifacts(*store_, *blobs_, batch);
}

void ArtifactsRuntime::BeginShutdown() { service_->BeginShutdown(); }

}  // namespace drover::queue::artifacts
