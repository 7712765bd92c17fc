// ArtifactsTestEnv: everything the artifacts code talks to, real and local,
// for tests: a fresh migrated PostgreSQL database (store test fixture), the
// queue's PgStore (to make running runs), a FilesystemBlobStore served by
// cpp-httplib on 127.0.0.1, and one or more "replicas" of the Artifacts
// gRPC service on 127.0.0.1 (each an ArtifactsRuntime with its own
// ArtifactStore, LogNotifier and executor, all on the one database), each
// serving drover.v1.Queue too, as drover-queue does.
#ifndef DROVER_QUEUE_ARTIFACTS_TESTING_ARTIFACTS_TEST_ENV_H_
#define DROVER_QUEUE_ARTIFACTS_TESTING_ARTIFACTS_TEST_ENV_H_

#include <httplib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "drover/v1/artifacts.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/server.h"
#include "queue/artifacts/artifact_store.h"
#include "queue/artifacts/artifacts_runtime.h"
#include "queue/artifacts/artifacts_service.h"
#include "queue/blobstore/filesystem/filesystem_blob_store.h"
#include "queue/queue_service/authorizer.h"
#include "queue/queue_service/executor.h"
#include "queue/queue_service/queue_service.h"
#include "queue/store/pg_store.h"
#include "queue/store/testing/test_database.h"

namespace drover::queue::artifacts::testing {

struct ArtifactsTestEnvOptions {
  // A FakeClock (tests move time) or the system clock.
  bool fake_clock = true;
  ArtifactsServiceOptions service;
};

class ArtifactsTestEnv {
 public:
  // Errors: absl Unavailable when PostgreSQL cannot start here (callers
  // skip the test with the reason); anything else is a failure.
  static absl::StatusOr<std::unique_ptr<ArtifactsTestEnv>> Create(
      ArtifactsTestEnvOptions options = {});
  ~ArtifactsTestEnv();

  // Creates a task on its own queue and claims it, so run 0 is running.
  // The task expires `expires_in` from now.
  absl::StatusOr<std::string> StartRunningTask(
      absl::Duration expires_in = absl::Hours(24));
  // Resolves the run completed (or failed).
  absl::Status ResolveRun(const std::string& task_id, int run_id,
                          bool completed = true);

  // Starts another replica of the service on the same database; returns
  // its index.
  absl::StatusOr<int> AddReplica();

  // "127.0.0.1:<port>" of a replica.
  std::string grpc_target(int replica = 0) const;
  std::shared_ptr<grpc::Channel> channel(int replica = 0) const;
  std::unique_ptr<v1::Artifacts::Stub> NewStub(int replica = 0) const;
  // "http://127.0.0.1:<port>": the blob store's HTTP listener.
  const std::string& http_base_url() const { return http_base_url_; }

  const Clock& clock() const { return *clock_; }
  // Null with the system clock.
  FakeClock* fake_clock() const { return fake_clock_; }
  const std::string& connection_string() const;
  store::PgStore& store() { return *store_; }
  blobstore::filesystem::FilesystemBlobStore& blobs() { return *blobs_; }
  ArtifactStore& artifact_store(int replica = 0);
  ArtifactsService& service(int replica = 0);
  const std::filesystem::path& blob_root() const { return blob_root_; }

 private:
  struct Replica;
  ArtifactsTestEnv() = default;

  ArtifactsTestEnvOptions options_;
  std::unique_ptr<store::testing::TestDatabase> db_;
  std::unique_ptr<Clock> clock_owner_;
  const Clock* clock_ = nullptr;
  FakeClock* fake_clock_ = nullptr;
  std::unique_ptr<store::PgStore> store_;
  std::filesystem::path blob_root_;
  std::unique_ptr<blobstore::filesystem::FilesystemBlobStore> blobs_;
  std::unique_ptr<httplib::Server> http_;
  std::thread http_thread_;
  std::string http_base_url_;
  queue_service::AllowAllAuthorizer authorizer_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

}  // namespace drover::queue::artifacts::testing

#endif  // DROVER_QUEUE_ARTIFACTS_TESTING_ARTIFACTS_TEST_ENV_H_
