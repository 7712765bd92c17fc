// ArtifactsService: the drover.v1.Artifacts gRPC service (artifacts and
// live logs) on the gRPC callback API.
//
// Unary handlers return at once; their work (authorisation, validation,
// database and blob store calls) runs on the shared BoundedExecutor, as in
// QueueService. TailLog is a server stream driven step by step from the
// executor: each step reads what the log has from the cursor (one database
// snapshot) and writes it; a follower with nothing to read parks without a
// thread until its run's log changes (LogNotifier, or an AppendLog in this
// process) or the safety poll comes round, which also notices resolution.
//
// Every error leaves through rpc::ToGrpcStatus, so clients get
// {code, message, details}.
#ifndef DROVER_QUEUE_ARTIFACTS_ARTIFACTS_SERVICE_H_
#define DROVER_QUEUE_ARTIFACTS_ARTIFACTS_SERVICE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "drover/v1/artifacts.grpc.pb.h"
#include "queue/artifacts/artifact_store.h"
#include "queue/blobstore/blob_store.h"
#include "queue/queue_service/authorizer.h"
#include "queue/queue_service/executor.h"

namespace drover::queue::artifacts {

struct ArtifactsServiceOptions {
  // Validity of the upload request CreateArtifact hands out.
  absl::Duration upload_url_ttl = absl::Hours(1);
  // Validity of GetArtifact's download URLs (and TailLog's remaining_url).
  absl::Duration download_url_ttl = absl::Minutes(10);
  // Parked TailLog followers look again at least this often (they notice
  // a resolved run this way; log changes wake them at once).
  absl::Duration tail_poll_interval = absl::Seconds(1);
  // Most bytes in one TailLog message.
  int64_t tail_message_bytes = 256 * 1024;
  // GetArtifact follows at most this many links.
  int max_link_hops = 10;
};

// Full gRPC method paths, as passed to Authorizer::Authorize.
inline constexpr std::string_view kCreateArtifactMethod =
    "/drover.v1.Artifacts/CreateArtifact";
inline constexpr std::string_view kFinishArtifactMethod =
    "/drover.v1.Artifacts/FinishArtifact";
inline constexpr std::string_view kGetArtifactMethod =
    "/drover.v1.Artifacts/GetArtifact";
inline constexpr std::string_view kGetLatestArtifactMethod =
    "/drover.v1.Artifacts/GetLatestArtifact";
inline constexpr std::string_view kListArtifactsMethod =
    "/drover.v1.Artifacts/ListArtifacts";
inline constexpr std::string_view kListLatestArtifactsMethod =
    "/drover.v1.Artifacts/ListLatestArtifacts";
inline constexpr std::string_view kAppendLogMethod =
    "/drover.v1.Artifacts/AppendLog";
inline constexpr std::string_view kTailLogMethod =
    "/drover.v1.Artifacts/TailLog";

class ArtifactsService final : public v1::Artifacts::CallbackService {
 public:
  // Every pointer must outlive the service; the executor must be drained
  // (BoundedExecutor::Shutdown) before the service is destroyed, and
  // BeginShutdown called before the gRPC server shuts down.
  ArtifactsService(ArtifactsServiceOptions options, ArtifactStore* store,
                   blobstore::BlobStore* blobs, const Clock* clock,
                   queue_service::Authorizer* authorizer,
                   queue_service::BoundedExecutor* executor);
  // Stops the safety-poll thread.
  ~ArtifactsService() override;

  // A run's live log changed (payload "<task_id>/<run_id>"; empty: any
  // run). The LogNotifier callback. Thread-safe, non-blocking.
  void NotifyLogChanged(const std::string& payload);

  // Ends parked TailLog streams with UNAVAILABLE and parks no new ones.
  // Idempotent.
  void BeginShutdown();

  // TailLog streams currently waiting for their log to change.
  size_t parked_tails() const;

  grpc::ServerUnaryReactor* CreateArtifact(
      grpc::CallbackServerContext* context,
      const v1::CreateArtifactRequest* request,
      v1::CreateArtifactResponse* response) override;
  grpc::ServerUnaryReactor* FinishArtifact(
      grpc::CallbackServerContext* context, const v1::ArtifactRequest* request,
      v1::FinishArtifactResponse* response) override;
  grpc::ServerUnaryReactor* GetArtifact(
      grpc::CallbackServerContext* context, const v1::ArtifactRequest* request,
      v1::GetArtifactResponse* response) override;
  grpc::ServerUnaryReactor* GetLatestArtifact(
      grpc::CallbackServerContext* context,
      const v1::LatestArtifactRequest* request,
      v1::GetArtifactResponse* response) override;
  grpc::ServerUnaryReactor* ListArtifacts(
      grpc::CallbackServerContext* context,
      const v1::ListArtifactsRequest* request,
      v1::ListArtifactsResponse* response) override;
  grpc::ServerUnaryReactor* ListLatestArtifacts(
      grpc::CallbackServerContext* context,
      const v1::ListLatestArtifactsRequest* request,
      v1::ListArtifactsResponse* response) override;
  grpc::ServerUnaryReactor* AppendLog(grpc::CallbackServerContext* context,
                                      const v1::AppendLogRequest* request,
                                      v1::AppendLogResponse* response) override;
  grpc::ServerWriteReactor<v1::TailLogResponse>* TailLog(
      grpc::CallbackServerContext* context,
      const v1::TailLogRequest* request) override;

 private:
  class TailReactor;
  friend class TailReactor;

  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                std::string_view method,
                                const google::protobuf::Message& request,
                                std::function<absl::Status()> work);
  absl::Status Get(const std::string& task_id, int run_id,
                   const std::string& name, v1::GetArtifactResponse* response);
  absl::Status List(const std::string& task_id, int run_id,
                    const std::string& after, int limit,
                    v1::ListArtifactsResponse* response);

  // Removes the followers parked on `key` (all of them for "") from the
  // parked set and returns them. Call with mu_ held.
  std::vector<TailReactor*> TakeParked(const std::string& key);
  // Wakes every parked follower each tail_poll_interval.
  void PollLoop();

  const ArtifactsServiceOptions options_;
  ArtifactStore* const store_;
  blobstore::BlobStore* const blobs_;
  const Clock* const clock_;
  queue_service::Authorizer* const authorizer_;
  queue_service::BoundedExecutor* const executor_;

  mutable std::mutex mu_;
  std::condition_variable poll_cv_;
  // "<task_id>/<run_id>" -> parked followers. Guarded by mu_.
  std::map<std::string, std::set<TailReactor*>> parked_;
  // Bumped by every log change, so a follower that read before a change
  // and parks after it looks again instead. Guarded by mu_.
  uint64_t generation_ = 0;
  bool shutting_down_ = false;  // Guarded by mu_.
  bool stop_poll_ = false;      // Guarded by mu_.
  std::thread poll_thread_;
};

// One pass of the expiry reaper, for the resolvers: deletes up to `batch`
// expired artifacts (queuing their blobs), then deletes up to `batch`
// queued blobs from `blobs` (each leased for `lease` so replicas do not
// collide; a failed delete is retried after the lease). Returns artifacts
// plus blobs deleted, so a full pass means "go again". Errors: the store's
// InternalError; blob delete failures are logged and retried later, not
// returned.
absl::StatusOr<int> ReapExpiredArtifacts(
    ArtifactStore& store, blobstore::BlobStore& blobs, int batch,
    absl::Duration lease = absl::Minutes(5));

}  // namespace drover::queue::artifacts

#endif  // DROVER_QUEUE_ARTIFACTS_ARTIFACTS_SERVICE_H_
