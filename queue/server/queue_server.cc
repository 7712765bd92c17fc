#include "queue/server/queue_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "spdlog/spdlog.h"

namespace drover::queue::server {
namespace {

// At most this many queues are listed per scrape (1000 per page).
constexpr int kMaxQueuePages = 10;

}  // namespace

QueueServer::QueueServer(QueueServerOptions options, store::Store* store,
                         store::PendingNotifier* notifier, const Clock* clock,
                         queue_service::Authorizer* authorizer)
    : options_(std::move(options)),
      store_(store),
      notifier_(notifier),
      executor_(options_.rpc_threads, options_.rpc_queue),
      queue_service_(std::make_unique<queue_service::QueueService>(
          options_.service, store, clock, authorizer, &executor_)),
      resolvers_(options_.resolvers, store) {}

QueueServer::~QueueServer() { Stop(); }

void QueueServer::AddService(grpc::Service* service) {
  extra_services_.push_back(service);
}

std::string QueueServer::grpc_target() const {
  std::string host = listen_host_;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return absl::StrCat(host, ":", grpc_port_);
}

absl::StatusOr<int> QueueServer::BindHttp() {
  if (options_.http_listen.empty()) {
    return InputError("http-listen", "",
                      "the HTTP listener is disabled (empty --http-listen)");
  }
  return http_.Bind(options_.http_listen);
}

absl::Status QueueServer::Start() {
  started_ = true;
  DROVER_ASSIGN_OR_RETURN(auto host_port,
                          SplitHostPort("listen", options_.listen));
  listen_host_ = host_port.first;

  if (notifier_ != nullptr) {
    DROVER_RETURN_IF_ERROR(
        notifier_->Start([this](const std::string& queue_id) {
          queue_service_->NotifyPending(queue_id);
        }));
    notifier_started_ = true;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen,
                           options_.credentials != nullptr
                               ? options_.credentials
                               : grpc::InsecureServerCredentials(),
                           &grpc_port_);
  // gRPC lets every process on Linux bind a port already in use
  // (SO_REUSEPORT) and then spreads new connections over them: a second
  // server started by mistake on the same address would silently take part
  // of the traffic. A server that cannot have its address to itself fails
  // to start instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Temporary credentials with many scopes travel as one metadata value of
  // up to 64 KiB (queue/auth/certificate.h); gRPC's default is 8 KiB.
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 64 * 1024 + 4096);
  builder.RegisterService(queue_service_.get());
  for (grpc::Service* service : extra_services_) {
    builder.RegisterService(service);
  }
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(
      std::make_unique<MetricsInterceptorFactory>(&metrics_));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  grpc_server_ = builder.BuildAndStart();
  if (grpc_server_ == nullptr || grpc_port_ == 0) {
    grpc_server_.reset();
    return MakeError(ErrorCode::kInternalError,
                     "cannot listen for gRPC on " + options_.listen,
                     {{"field", "listen"}, {"value", options_.listen}});
  }
  grpc_server_->GetHealthCheckService()->SetServingStatus(true);

  AddQueueCollector();
  if (!options_.http_listen.empty()) {
    AddHealthRoutes();
    http_.server().Get(
        "/metrics", [this](const httplib::Request&, httplib::Response& res) {
          res.set_content(metrics_.Render(), "text/plain; version=0.0.4");
        });
    DROVER_RETURN_IF_ERROR(http_.Start(options_.http_listen));
  }
  if (options_.run_resolvers) resolvers_.Start();
  serving_ = true;
  return absl::OkStatus();
}

void QueueServer::Stop() {
  if (stopped_) return;
  stopped_ = true;
  serving_ = false;
  if (grpc_server_ != nullptr) {
    grpc_server_->GetHealthCheckService()->SetServingStatus(false);
  }
  // Parked long-polls would otherwise hold shutdown for the poll timeout.
  queue_service_->BeginShutdown();
  if (grpc_server_ != nullptr) {
    grpc_server_->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoNanoseconds(options_.shutdown_grace));
    grpc_server_->Wait();
  }
  if (notifier_started_) notifier_->Stop();
  resolvers_.Stop();
  executor_.Shutdown();
  http_.Stop();
}

void QueueServer::AddQueueCollector() {
  metrics_.AddCollector([this](std::string* out) {
    absl::StrAppend(
        out,
        "# HELP drover_claimwork_waiting ClaimWork calls waiting for work.\n"
        "# TYPE drover_claimwork_waiting gauge\n"
        "drover_claimwork_waiting ",
        queue_service_->parked_claims(),
        "\n# HELP drover_rpc_work_queued RPC work items waiting for a "
        "thread.\n# TYPE drover_rpc_work_queued gauge\n"
        "drover_rpc_work_queued ",
        executor_.queued(), "\n");
    absl::StrAppend(out,
                    "# HELP drover_resolver_handled_total Rows handled by "
                    "each background resolver.\n"
                    "# TYPE drover_resolver_handled_total counter\n");
    auto stats = resolvers_.Stats();
    for (const auto& s : stats) {
      absl::StrAppend(out, "drover_resolver_handled_total{resolver=\"", s.name,
                      "\"} ", s.resolved, "\n");
    }
    absl::StrAppend(out,
                    "# HELP drover_resolver_errors_total Failed resolver "
                    "passes.\n# TYPE drover_resolver_errors_total counter\n");
    for (const auto& s : stats) {
      absl::StrAppend(out, "drover_resolver_errors_total{resolver=\"", s.name,
                      "\"} ", s.errors, "\n");
    }

    std::lock_guard<std::mutex> lock(queue_cache_mu_);
    auto now = std::chrono::steady_clock::now();
    if (queue_cache_text_.empty() ||
        now - queue_cache_time_ >=
            absl::ToChronoNanoseconds(options_.queue_metrics_ttl)) {
      std::string pending =
          "# HELP drover_queue_pending_tasks Pending runs per task queue.\n"
          "# TYPE drover_queue_pending_tasks gauge\n";
      std::string claimed =
          "# HELP drover_queue_claimed_tasks Claimed (running) runs per task "
          "queue.\n# TYPE drover_queue_claimed_tasks gauge\n";
      std::string token;
      bool ok = true;
      for (int page = 0; page < kMaxQueuePages; ++page) {
        auto listed = store_->ListTaskQueues(token, 1000);
        if (!listed.ok()) {
          spdlog::warn("metrics: listing task queues: {}",
                       listed.status().ToString());
          ok = false;
          break;
        }
        for (const auto& q : listed->items) {
          std::string label = EscapeLabelValue(q.task_queue_id);
          absl::StrAppend(&pending,
                          "drover_queue_pending_tasks{task_queue_id=\"", label,
                          "\"} ", q.pending, "\n");
          absl::StrAppend(&claimed,
                          "drover_queue_claimed_tasks{task_queue_id=\"", label,
                          "\"} ", q.claimed, "\n");
        }
        token = listed->continuation_token;
        if (token.empty()) break;
      }
      queue_cache_text_ =
          pending + claimed +
          "# HELP drover_queue_metrics_ok 1 when the per-queue counts above "
          "are fresh from the database.\n"
          "# TYPE drover_queue_metrics_ok gauge\n" +
          absl::StrCat("drover_queue_metrics_ok ", ok ? 1 : 0, "\n");
      queue_cache_time_ = now;
    }
    *out += queue_cache_text_;
  });
}

void QueueServer::AddHealthRoutes() {
  http_.server().Get(
      "/healthz", [this](const httplib::Request&, httplib::Response& res) {
        if (!serving_) {
          res.status = 503;
          res.set_content("shutting down\n", "text/plain");
          return;
        }
        // A cheap query proves the database answers.
        auto probe = store_->ListTaskQueues("", 1);
        if (!probe.ok()) {
          res.status = 503;
          res.set_content("unhealthy: " + probe.status().ToString() + "\n",
                          "text/plain");
          return;
        }
        res.set_content("ok\n", "text/plain");
      });
}

}  // namespace drover::queue::server
