// QueueServer: one drover-queue process's serving side, given a Store:
// the gRPC server (Queue service, health, reflection, metrics
// interceptor), the HTTP listener (/metrics, /healthz), the pending
// notifier feeding ClaimWork long-polls, and the background resolvers.
//
// Where the database comes from (embedded or URL, migrations) is
// serve.h's business; tests build a QueueServer directly on their store.
#ifndef DROVER_QUEUE_SERVER_QUEUE_SERVER_H_
#define DROVER_QUEUE_SERVER_QUEUE_SERVER_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "queue/queue_service/authorizer.h"
#include "queue/queue_service/executor.h"
#include "queue/queue_service/queue_service.h"
#include "queue/resolvers/resolvers.h"
#include "queue/server/http_listener.h"
#include "queue/server/metrics.h"
#include "queue/store/store.h"

namespace drover::queue::server {

struct QueueServerOptions {
  // "host:port"; port 0 picks a free one (see grpc_port()).
  std::string listen = "127.0.0.1:50051";
  // Empty: no HTTP listener.
  std::string http_listen = "127.0.0.1:8080";
  // Credentials of the gRPC listener (TLS); null: plaintext.
  std::shared_ptr<grpc::ServerCredentials> credentials;
  queue_service::QueueServiceOptions service;
  resolvers::ResolverOptions resolvers;
  bool run_resolvers = true;
  int rpc_threads = 8;
  size_t rpc_queue = 4096;
  absl::Duration shutdown_grace = absl::Seconds(10);
  absl::Duration queue_metrics_ttl = absl::Seconds(5);
};

class QueueServer {
 public:
  // `store`, `clock` and `authorizer` must outlive the server. `notifier`
  // may be null (parked ClaimWork calls then rely on local wake-ups and the
  // safety poll); the server starts and stops it.
  QueueServer(QueueServerOptions options, store::Store* store,
              store::PendingNotifier* notifier, const Clock* clock,
              queue_service::Authorizer* authorizer);
  // Calls Stop().
  ~QueueServer();

  QueueServer(const QueueServer&) = delete;
  QueueServer& operator=(const QueueServer&) = delete;

  // Registers another gRPC service (WorkerManager, Auth, ...); before
  // Start(). `service` must outlive the server.
  void AddService(grpc::Service* service);
  // Extra HTTP routes go here, before Start().
  HttpListener& http() { return http_; }
  MetricsRegistry& metrics() { return metrics_; }
  queue_service::QueueService& queue_service() { return *queue_service_; }
  resolvers::Resolvers& resolvers() { return resolvers_; }

  // Binds the HTTP listener ahead of Start() and returns its port, for
  // routes that must know their own URL (the filesystem blob store's
  // signed URLs) when options.http_listen asks for port 0. Errors:
  // InputError on "http-listen" when the HTTP listener is disabled;
  // HttpListener::Bind's.
  absl::StatusOr<int> BindHttp();

  // Binds the listeners and starts serving. Errors: InputError for a bad
  // listen address, InternalError when a port cannot be bound or the
  // notifier cannot start. Call once.
  absl::Status Start();

  // Graceful stop: health goes NOT_SERVING, parked ClaimWork calls are
  // answered, new calls are refused, in-flight calls get shutdown_grace to
  // finish, then the notifier, resolvers, RPC threads and HTTP listener
  // stop. Idempotent.
  void Stop();

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_.port(); }
  // "127.0.0.1:<port>", for clients in tests.
  std::string grpc_target() const;

 private:
  void AddQueueCollector();
  void AddHealthRoutes();

  const QueueServerOptions options_;
  store::Store* const store_;
  store::PendingNotifier* const notifier_;

  MetricsRegistry metrics_;
  queue_service::BoundedExecutor executor_;
  std::unique_ptr<queue_service::QueueService> queue_service_;
  resolvers::Resolvers resolvers_;
  HttpListener http_;
  std::vector<grpc::Service*> extra_services_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int grpc_port_ = 0;
  std::string listen_host_;
  bool started_ = false;
  bool stopped_ = false;
  bool notifier_started_ = false;
  // Read by /healthz on HTTP threads.
  std::atomic<bool> serving_{false};

  // Per-queue counts for /metrics, cached for queue_metrics_ttl.
  std::mutex queue_cache_mu_;
  std::chrono::steady_clock::time_point queue_cache_time_;
  std::string queue_cache_text_;
};

}  // namespace drover::queue::server

#endif  // DROVER_QUEUE_SERVER_QUEUE_SERVER_H_
