#include "queue/server/serve.h"

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>

#include "common/status.h"
#include "queue/auth/auth_system.h"
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
  options.rpc_threads =
      config.rpc_threads > 0 ? config.rpc_threads : config.db_pool_size;
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
  server.queue_service().SetTaskCredentialsIssuer(
      auth_system->task_credentials());
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
  server.Stop();
  spdlog::info("server stopped");
  return absl::OkStatus();
}

absl::Status RotateKeys(const ServerConfig& config, const Clock* clock,
                        std::ostream& out) {
  Database database;
  DROVER_RETURN_IF_ERROR(database.Open(config));
  DROVER_RETURN_IF_ERROR(store::CheckSchema(database.url()));
  return auth::RotateKeysCommand(
      config.auth, std::filesystem::absolute(config.data_dir).string(),
      database.url(), clock, out);
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
