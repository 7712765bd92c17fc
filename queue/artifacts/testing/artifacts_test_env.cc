#include "queue/artifacts/testing/artifacts_test_env.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "common/slugid.h"
#include "common/status.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "queue/blobstore/filesystem/http_handlers.h"

namespace drover::queue::artifacts::testing {

struct ArtifactsTestEnv::Replica {
  std::unique_ptr<queue_service::BoundedExecutor> executor;
  std::unique_ptr<ArtifactsRuntime> runtime;
  std::unique_ptr<queue_service::QueueService> queue;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  ~Replica() {
    if (runtime) runtime->BeginShutdown();
    if (queue) queue->BeginShutdown();
    if (server) server->Shutdown(std::chrono::system_clock::now());
    if (executor) executor->Shutdown();
  }
};

absl::StatusOr<std::unique_ptr<ArtifactsTestEnv>> ArtifactsTestEnv::Create(
    ArtifactsTestEnvOptions options) {
  std::unique_ptr<ArtifactsTestEnv> env(new ArtifactsTestEnv());
  env->options_ = options;
  DROVER_ASSIGN_OR_RETURN(env->db_, store::testing::TestDatabase::Create());
  if (options.fake_clock) {
    auto fake = std::make_unique<FakeClock>(absl::Now());
    env->fake_clock_ = fake.get();
    env->clock_owner_ = std::move(fake);
  } else {
    env->clock_owner_ = std::make_unique<SystemClock>();
  }
  env->clock_ = env->clock_owner_.get();

  store::PgStoreOptions store_options;
  store_options.connection_string = env->db_->connection_string();
  store_options.pool_size = 2;
  DROVER_ASSIGN_OR_RETURN(env->store_,
                          store::PgStore::Open(store_options, env->clock_));

  std::random_device rd;
  env->blob_root_ =
      std::filesystem::temp_directory_path() /
      absl::StrCat("drover-artifacts-test-", ::getpid(), "-", rd());
  env->http_ = std::make_unique<httplib::Server>();
  const int http_port = env->http_->bind_to_any_port("127.0.0.1");
  if (http_port <= 0) return InternalError("cannot bind the HTTP listener");
  env->http_base_url_ = absl::StrCat("http://127.0.0.1:", http_port);
  blobstore::filesystem::FilesystemBlobStoreOptions blob_options;
  blob_options.root = env->blob_root_;
  blob_options.base_url = env->http_base_url_;
  blob_options.signing_key = std::string(32, '\0');
  for (char& c : blob_options.signing_key) c = static_cast<char>(rd());
  blob_options.sync_writes = false;
  DROVER_ASSIGN_OR_RETURN(env->blobs_,
                          blobstore::filesystem::FilesystemBlobStore::Create(
                              blob_options, env->clock_));
  blobstore::filesystem::RegisterHttpHandlers(*env->http_, *env->blobs_);
  httplib::Server* http = env->http_.get();
  env->http_thread_ = std::thread([http] { http->listen_after_bind(); });
  while (!http->is_running()) std::this_thread::yield();

  DROVER_RETURN_IF_ERROR(env->AddReplica().status());
  return env;
}

ArtifactsTestEnv::~ArtifactsTestEnv() {
  replicas_.clear();
  if (http_) http_->stop();
  if (http_thread_.joinable()) http_thread_.join();
  std::error_code ec;
  if (!blob_root_.empty()) std::filesystem::remove_all(blob_root_, ec);
}

absl::StatusOr<int> ArtifactsTestEnv::AddReplica() {
  auto replica = std::make_unique<Replica>();
  replica->executor = std::make_unique<queue_service::BoundedExecutor>(4, 1024);
  ArtifactsRuntimeOptions runtime_options;
  runtime_options.store.connection_string = db_->connection_string();
  runtime_options.store.pool_size = 4;
  runtime_options.service = options_.service;
  DROVER_ASSIGN_OR_RETURN(
      replica->runtime,
      ArtifactsRuntime::Start(runtime_options, blobs_.get(), clock_,
                              &authorizer_, replica->executor.get()));
  replica->queue = std::make_unique<queue_service::QueueService>(
      queue_service::QueueServiceOptions{}, store_.get(), clock_, &authorizer_,
      replica->executor.get());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &replica->port);
  builder.RegisterService(&replica->runtime->service());
  builder.RegisterService(replica->queue.get());
  replica->server = builder.BuildAndStart();
  if (replica->server == nullptr || replica->port == 0) {
    return InternalError("cannot start the Artifacts gRPC server");
  }
  replicas_.push_back(std::move(replica));
  return static_cast<int>(replicas_.size()) - 1;
}

absl::StatusOr<std::string> ArtifactsTestEnv::StartRunningTask(
    absl::Duration expires_in) {
  const absl::Time now = clock_->Now();
  store::Task task;
  task.task_id = NewSlugId();
  task.task_queue_id = "artifacts-test/" + task.task_id.substr(0, 20);
  task.scheduler_id = "-";
  task.task_group_id = task.task_id;
  task.retries = 0;
  task.created = absl::FromUnixMicros(absl::ToUnixMicros(now));
  task.deadline = task.created + std::min(expires_in, absl::Hours(1));
  task.expires = task.created + expires_in;
  task.metadata_name = "artifacts test";
  task.metadata_owner = "tests@example.com";
  task.metadata_source = "https://example.com/tests";
  DROVER_RETURN_IF_ERROR(store_->CreateTask(task).status());
  DROVER_ASSIGN_OR_RETURN(auto claimed,
                          store_->ClaimWork(task.task_queue_id, "test-group",
                                            "test-worker", 1, absl::Hours(1)));
  if (claimed.size() != 1 || claimed[0].task.task_id != task.task_id) {
    return InternalError("the new task was not claimed");
  }
  return task.task_id;
}

absl::Status ArtifactsTestEnv::ResolveRun(const std::string& task_id,
                                          int run_id, bool completed) {
  return store_
      ->ResolveRun(
          task_id, run_id,
          completed ? store::RunState::kCompleted : store::RunState::kFailed,
          completed ? "completed" : "failed")
      .status();
}

std::string ArtifactsTestEnv::grpc_target(int replica) const {
  return absl::StrCat("127.0.0.1:", replicas_.at(replica)->port);
}

std::shared_ptr<grpc::Channel> ArtifactsTestEnv::channel(int replica) const {
  return grpc::CreateChannel(grpc_target(replica),
                             grpc::InsecureChannelCredentials());
}

std::unique_ptr<v1::Artifacts::Stub> ArtifactsTestEnv::NewStub(
    int replica) const {
  return v1::Artifacts::NewStub(channel(replica));
}

const std::string& ArtifactsTestEnv::connection_string() const {
  return db_->connection_string();
}

ArtifactStore& ArtifactsTestEnv::artifact_store(int replica) {
  return replicas_.at(replica)->runtime->store();
}

ArtifactsService& ArtifactsTestEnv::service(int replica) {
  return replicas_.at(replica)->runtime->service();
}

}  // namespace drover::queue::artifacts::testing
