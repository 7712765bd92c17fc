#include "queue/server/serve.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "common/status.h"
#include "queue/artifacts/artifacts_runtime.h"
#include "queue/auth/auth_system.h"
#include "queue/blobstore/filesystem/filesystem_blob_store.h"
#include "queue/blobstore/filesystem/http_handlers.h"
#include "queue/blobstore/s3/s3_blob_store.h"
#include "queue/queue_service/executor.h"
#include "queue/server/queue_server.h"
#include "queue/store/embedded_postgres.h"
#include "queue/store/migrations.h"
#include "queue/store/pg_pending_notifier.h"
#include "queue/store/pg_store.h"
#include "queue/store/process_launcher.h"
#include "queue/worker_manager/worker_manager_system.h"
#include "spdlog/spdlog.h"

namespace drover::queue::server {
namespace {

// The database a command works on; stops an embedded cluster it started
// when destroyed.
class Database {
 public:
  ~Database() {
    if (embedded_ != nullptr) {
      if (absl::Status s = embedded_->Stop(); !s.ok()) {
        spdlog::error("stopping embedded PostgreSQL: {}", s.ToString());
      } else {
        spdlog::info("embedded PostgreSQL stopped");
      }
    }
  }

  absl::Status Open(const ServerConfig& config) {
    if (!config.database_url.empty()) {
      url_ = config.database_url;
      description_ = "PostgreSQL at --database-url";
      return absl::OkStatus();
    }
    store::EmbeddedPostgresOptions options;
    options.data_dir = std::filesystem::absolute(config.data_dir).string();
    options.settings = config.embedded_postgres_settings;
    embedded_ = std::make_unique<store::EmbeddedPostgres>(options, &launcher_);
    spdlog::info("starting embedded PostgreSQL in {}", options.data_dir);
    DROVER_ASSIGN_OR_RETURN(url_, embedded_->Start());
    description_ = "embedded PostgreSQL in " + options.data_dir;
    return absl::OkStatus();
  }

  const std::string& url() const { return url_; }
  const std::string& description() const { return description_; }

 private:
  store::SubprocessLauncher launcher_;
  std::unique_ptr<store::EmbeddedPostgres> embedded_;
  std::string url_;
  std::string description_;
};

QueueServerOptions ToServerOptions(const ServerConfig& config) {
  QueueServerOptions options;
  options.listen = config.listen;
  options.http_listen = config.http_listen;
  options.service = config.service;
  options.resolvers = config.resolvers;
  options.run_resolvers = config.run_resolvers;
  // Reports wait in the store's group commit while a batch runs, so more
  // threads than connections let concurrent reports form larger batches.
  options.rpc_threads =
      config.rpc_threads > 0 ? config.rpc_threads : 8 * config.db_pool_size;
  options.rpc_queue = static_cast<size_t>(config.rpc_queue);
  options.shutdown_grace = config.shutdown_grace;
  options.queue_metrics_ttl = config.queue_metrics_ttl;
  return options;
}

// Applies what is missing; refuses (RequestConflict, naming both versions)
// a database newer than this binary.
absl::Status BringSchemaUpToDate(const std::string& url) {
  DROVER_RETURN_IF_ERROR(store::Migrate(url));
  return store::CheckSchema(url);
}

// "host:0" with the port actually bound.
std::string WithPort(const std::string& address, int port) {
  size_t colon = address.rfind(':');
  return address.substr(0, colon) + ":" + std::to_string(port);
}

// The key that signs filesystem blob URLs, derived from the token-hash
// key: every replica already shares that key (tokens must verify
// anywhere), so a URL one replica signs is honoured by all, and no new
// secret needs managing. The empty client id belongs to no client, so the
// derived value never equals a stored token hash.
std::string BlobUrlSigningKey(const auth::ServerKeys& keys) {
  return keys.token_hasher.Hash("", "drover filesystem blob URL key v1");
}

// "http://<host>:<port>" of the bound HTTP listener, as workers and
// clients on this machine reach it.
std::string HttpBaseUrl(const std::string& http_listen, int port) {
  std::string host = http_listen.substr(0, http_listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") {
    spdlog::warn(
        "--http-listen {} is a wildcard address; artifact URLs use "
        "127.0.0.1, which only this machine reaches: set --blob-public-url",
        http_listen);
    host = "127.0.0.1";
  }
  return "http://" + host + ":" + std::to_string(port);
}

// The artifact blob store the configuration asks for; null (artifacts
// disabled, with a warning) for a filesystem store without an HTTP
// listener to serve it. Filesystem routes are registered on the server's
// HTTP listener, which is bound here, before Start.
absl::StatusOr<std::unique_ptr<blobstore::BlobStore>> OpenBlobStore(
    const ServerConfig& config, const auth::ServerKeys& keys,
    QueueServer& server, const Clock* clock) {
  const BlobStoreConfig& blobs = config.blobs;
  if (blobs.kind == "s3") {
    blobstore::s3::S3BlobStoreOptions options;
    options.endpoint = blobs.s3_endpoint;
    options.region = blobs.s3_region;
    options.bucket = blobs.s3_bucket;
    options.credentials.access_key_id = blobs.s3_access_key_id;
    options.credentials.secret_access_key = blobs.s3_secret_access_key;
    options.path_style = blobs.s3_path_style;
    options.key_prefix = blobs.s3_key_prefix;
    DROVER_ASSIGN_OR_RETURN(auto store, blobstore::s3::S3BlobStore::Create(
                                            std::move(options), clock));
    spdlog::info("artifact blobs in S3 bucket {} at {}", blobs.s3_bucket,
                 blobs.s3_endpoint);
    return std::unique_ptr<blobstore::BlobStore>(std::move(store));
  }
  if (config.http_listen.empty()) {
    spdlog::warn(
        "artifacts are disabled: the filesystem blob store is served on the "
        "HTTP listener, and --http-listen is empty");
    return std::unique_ptr<blobstore::BlobStore>();
  }
  DROVER_ASSIGN_OR_RETURN(int http_port, server.BindHttp());
  blobstore::filesystem::FilesystemBlobStoreOptions options;
  options.root = blobs.dir.empty()
                     ? std::filesystem::absolute(config.data_dir) / "blobs"
                     : std::filesystem::absolute(blobs.dir);
  options.base_url = blobs.public_url.empty()
                         ? HttpBaseUrl(config.http_listen, http_port)
                         : blobs.public_url;
  while (!options.base_url.empty() && options.base_url.back() == '/') {
    options.base_url.pop_back();
  }
  options.signing_key = BlobUrlSigningKey(keys);
  auto store =
      blobstore::filesystem::FilesystemBlobStore::Create(options, clock);
  if (!store.ok()) {
    ErrorInfo info = GetErrorInfo(store.status());
    // Name the flag the operator sets rather than the option.
    auto field = info.details.find("field");
    if (field != info.details.end() && field->second == "root") {
      field->second = "blob-dir";
    } else if (field != info.details.end() && field->second == "base_url") {
      field->second = "blob-public-url";
    }
    return MakeError(info.code, info.message, info.details);
  }
  blobstore::filesystem::RegisterHttpHandlers(server.http().server(), **store);
  spdlog::info("artifact blobs in {}, served at {}{}", options.root.string(),
               options.base_url, options.url_prefix);
  return std::unique_ptr<blobstore::BlobStore>(std::move(*store));
}

}  // namespace

absl::Status Serve(const ServerConfig& config, const Clock* clock,
                   queue_service::Authorizer* authorizer,
                   ShutdownSignal* signal, std::ostream& out) {
  Database database;
  DROVER_RETURN_IF_ERROR(database.Open(config));
  DROVER_RETURN_IF_ERROR(BringSchemaUpToDate(database.url()));

  store::PgStoreOptions store_options;
  store_options.connection_string = database.url();
  store_options.pool_size = config.db_pool_size;
  store_options.plan_refresh_interval = config.db_plan_refresh;
  store_options.resolution_batch = static_cast<size_t>(config.report_batch);
  store_options.resolution_batches_in_flight = config.report_batches_in_flight;
  DROVER_ASSIGN_OR_RETURN(std::unique_ptr<store::PgStore> store,
                          store::PgStore::Open(store_options, clock));
  store::PgPendingNotifier notifier({.connection_string = database.url()});

  // Declared before the server so that it outlives it: the services and
  // the authorizer must stay until the server has stopped.
  auth::AuthSystemOptions auth_options;
  auth_options.config = config.auth;
  auth_options.data_dir = std::filesystem::absolute(config.data_dir).string();
  auth_options.connection_string = database.url();
  auth_options.embedded_database = config.database_url.empty();
  DROVER_ASSIGN_OR_RETURN(
      std::unique_ptr<auth::AuthSystem> auth_system,
      auth::AuthSystem::Open(std::move(auth_options), store.get(), clock, out));

  // Worker pools and registration; like the auth system it must outlive
  // the server, so it is opened before it.
  worker_manager::WorkerManagerOptions worker_manager_options;
  worker_manager_options.connection_string = database.url();
  worker_manager_options.pool_size = std::max(2, config.db_pool_size / 2);
  worker_manager_options.run_resolver = config.run_resolvers;
  DROVER_ASSIGN_OR_RETURN(
      std::unique_ptr<worker_manager::WorkerManagerSystem> worker_manager,
      worker_manager::WorkerManagerSystem::Open(
          worker_manager_options, auth_system.get(), store.get(), clock));

  QueueServerOptions server_options = ToServerOptions(config);
  server_options.credentials = auth_system->server_credentials();
  const bool tls = !config.auth.tls_cert.empty();
  if (!tls && config.listen.rfind("127.", 0) != 0 &&
      config.listen.rfind("localhost:", 0) != 0 &&
      config.listen.rfind("[::1]:", 0) != 0) {
    spdlog::warn(
        "gRPC listens on {} without TLS: credentials cross the network in "
        "the clear; set --tls-cert and --tls-key",
        config.listen);
  }
  QueueServer server(
      server_options, store.get(), &notifier, clock,
      authorizer != nullptr ? authorizer : auth_system->authorizer());
  server.AddService(auth_system->auth_service());
  server.AddService(auth_system->secrets_service());
  server.AddService(worker_manager->service());
  server.queue_service().SetWorkerGate(worker_manager->claim_gate());
  server.queue_service().SetTaskCredentialsIssuer(
      auth_system->task_credentials());

  // Artifacts and live logs. The runtime's RPC work runs on an executor of
  // its own, so parked TailLog followers and uploads never take threads
  // from the Queue service. Destruction runs in reverse: the server stops
  // (gRPC, resolvers with the reaper, HTTP routes), then the executor
  // drains, then the runtime and the blob store go.
  DROVER_ASSIGN_OR_RETURN(
      std::unique_ptr<blobstore::BlobStore> blobs,
      OpenBlobStore(config, auth_system->keys(), server, clock));
  std::unique_ptr<artifacts::ArtifactsRuntime> artifacts_runtime;
  std::optional<queue_service::BoundedExecutor> artifacts_executor;
  if (blobs != nullptr) {
    artifacts_executor.emplace(std::max(2, server_options.rpc_threads / 2),
                               server_options.rpc_queue);
    artifacts::ArtifactsRuntimeOptions artifacts_options;
    artifacts_options.store.connection_string = database.url();
    artifacts_options.store.pool_size = std::max(2, config.db_pool_size / 2);
    artifacts_options.service.upload_url_ttl = config.artifacts.upload_url_ttl;
    artifacts_options.service.download_url_ttl =
        config.artifacts.download_url_ttl;
    DROVER_ASSIGN_OR_RETURN(
        artifacts_runtime,
        artifacts::ArtifactsRuntime::Start(
            artifacts_options, blobs.get(), clock,
            authorizer != nullptr ? authorizer : auth_system->authorizer(),
            &*artifacts_executor));
    server.AddService(&artifacts_runtime->service());
    artifacts::ArtifactsRuntime* runtime = artifacts_runtime.get();
    server.resolvers().AddLoop(
        "artifact-expiry", config.artifacts.expiry_interval,
        [runtime](int batch) { return runtime->ReapPass(batch); });
  }
  // Runs before the members above are destroyed, on every return path.
  struct StopFirst {
    QueueServer& server;
    artifacts::ArtifactsRuntime* runtime;
    std::optional<queue_service::BoundedExecutor>& executor;
    ~StopFirst() {
      // Parked TailLog streams end before gRPC waits for in-flight calls.
      if (runtime != nullptr) runtime->BeginShutdown();
      server.Stop();
      if (executor.has_value()) executor->Shutdown();
    }
  } stop_first{server, artifacts_runtime.get(), artifacts_executor};

  DROVER_RETURN_IF_ERROR(server.Start());
  out << "drover-queue: gRPC listening on "
      << WithPort(config.listen, server.grpc_port()) << (tls ? " (TLS)" : "");
  if (!config.http_listen.empty()) {
    out << ", HTTP (/metrics, /healthz) on "
        << WithPort(config.http_listen, server.http_port());
  }
  out << "; database: " << database.description() << std::endl;
  spdlog::info("serving; schema version {}", store::LatestKnownSchemaVersion());

  int signo = signal->Wait();
  spdlog::info("received signal {}; shutting down", signo);
  if (artifacts_runtime != nullptr) artifacts_runtime->BeginShutdown();
  server.Stop();
  spdlog::info("server stopped");
  return absl::OkStatus();
}

absl::Status RotateKeys(const ServerConfig& config, const Clock* clock,
                        std::ostream& out) {
  Database database;
  DROVER_RETURN_IF_ERROR(database.Open(config));
  DROVER_RETURN_IF_ERROR(store::CheckSchema(database.url()));
  // Every module's encrypted columns besides the auth module's own.
  worker_manager::WorkerStoreOptions workers_options;
  workers_options.connection_string = database.url();
  workers_options.pool_size = 1;
  DROVER_ASSIGN_OR_RETURN(
      std::unique_ptr<worker_manager::WorkerStore> workers,
      worker_manager::WorkerStore::Open(workers_options, clock));
  return auth::RotateKeysCommand(
      config.auth, std::filesystem::absolute(config.data_dir).string(),
      database.url(), clock, out, {workers.get()});
}

absl::Status MigrateDatabase(const ServerConfig& config, std::ostream& out) {
  Database database;
  DROVER_RETURN_IF_ERROR(database.Open(config));
  DROVER_ASSIGN_OR_RETURN(int before, store::SchemaVersion(database.url()));
  DROVER_RETURN_IF_ERROR(BringSchemaUpToDate(database.url()));
  DROVER_ASSIGN_OR_RETURN(int after, store::SchemaVersion(database.url()));
  out << "drover-queue migrate: schema version " << after;
  if (after == before) {
    out << " (already up to date)";
  } else {
    out << " (was " << before << ")";
  }
  out << "; database: " << database.description() << std::endl;
  return absl::OkStatus();
}

}  // namespace drover::queue::server
