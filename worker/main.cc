// drover-worker: the Drover worker daemon. Parses configuration, registers
// the built-in engines and plugins, and wires the objects; the work lives
// in worker/worker.h.
//
//   drover-worker --config /etc/drover/worker.json
//   drover-worker --config worker.json --check-config   (exit 0 ok, 2 bad)
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "client/connection.h"
#include "client/environment.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/rpc/process_defaults.h"
#include "common/status.h"
#include "spdlog/spdlog.h"
#include "worker/components.h"
#include "worker/config.h"
#include "worker/flags.h"
#include "worker/grpc_queue_api.h"
#include "worker/metrics.h"
#include "worker/metrics_server.h"
#include "worker/registration.h"
#include "worker/registry.h"
#include "worker/worker.h"

namespace {

constexpr int kExitConfigError = 2;

std::string Explain(const absl::Status& status) {
  drover::ErrorInfo info = drover::GetErrorInfo(status);
  std::string text =
      std::string(drover::ErrorCodeName(info.code)) + ": " + info.message;
  for (const auto& [key, value] : info.details) {
    text += " [" + key + "=" + value + "]";
  }
  return text;
}

int ConfigError(const absl::Status& status) {
  std::cerr << "drover-worker: invalid configuration: " << Explain(status)
            << std::endl;
  return kExitConfigError;
}

}  // namespace

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  using namespace drover;
  using namespace drover::worker;

  CLI::App app{"drover-worker: runs tasks claimed from a Drover queue"};
  WorkerFlags flags;
  AddWorkerFlags(app, &flags);
  CLI11_PARSE(app, argc, argv);

  // Signals are taken by one thread with sigwait(); every thread created
  // from here on inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto doc = MergeConfigSources(flags, client::ProcessEnvironment());
  if (!doc.ok()) return ConfigError(doc.status());
  auto parsed = ParseWorkerConfig(*doc);
  if (!parsed.ok()) return ConfigError(parsed.status());
  const WorkerConfig& config = *parsed;

  Registry registry;
  registry.AddEngine("native", MakeNativeEngine, CheckNativeEngineConfig);
  registry.AddEngine("docker", MakeDockerEngine, CheckDockerEngineConfig);
  registry.AddEngine("macos", MakeMacosEngine, CheckMacosEngineConfig);
  registry.AddPlugin("logprefix", MakeLogPrefixPlugin);
  registry.AddPlugin("env", MakeEnvPlugin);
  registry.AddPlugin("maxruntime", MakeMaxRunTimePlugin);
  registry.AddPlugin("exit-status", MakeExitStatusPlugin);
  registry.AddPlugin("mounts", MakeMountsPlugin);
  registry.AddPlugin("artifacts", MakeArtifactsPlugin);
  registry.AddPlugin("livelog", MakeLiveLogPlugin);

  SystemClock clock;
  if (absl::Status s = registry.CheckConfig(config, clock); !s.ok()) {
    return ConfigError(s);
  }
  std::vector<std::string> plugin_names;
  for (const auto& [name, section] : config.plugins) {
    plugin_names.push_back(name);
  }
  // Hooks run in the listed order; a livelog before artifacts would upload
  // the log without the artifact upload's lines.
  auto listed = [&plugin_names](const char* name) {
    return std::find(plugin_names.begin(), plugin_names.end(), name) -
           plugin_names.begin();
  };
  if (listed("livelog") < listed("artifacts") &&
      listed("artifacts") < static_cast<long>(plugin_names.size())) {
    std::cerr << "drover-worker: note: plugin livelog is listed before "
                 "artifacts; the uploaded live log will miss the artifact "
                 "upload's lines (list livelog last)"
              << std::endl;
  }
  if (flags.check_config) {
    std::cout << "configuration is valid: worker " << config.worker_group << "/"
              << config.worker_id << " in pool " << config.worker_pool_id
              << ", queue " << absl::StrJoin(config.queue_urls, ", ")
              << ", engine " << config.engine << ", plugins "
              << absl::StrJoin(plugin_names, ", ") << ", capacity "
              << config.capacity << std::endl;
    if (!config.registration_secret_file.empty()) {
      std::cout << "registers with the worker manager using "
                << config.registration_secret_file << std::endl;
    }
    return 0;
  }

  LogOptions log_options;
  log_options.level = config.log_level;
  if (absl::Status s =
          ParseLogFormat(config.log_format, "log_format", &log_options.format);
      !s.ok()) {
    return ConfigError(s);
  }
  if (absl::Status s = SetUpLogging(log_options); !s.ok()) {
    return ConfigError(s);
  }
  std::error_code ec;
  std::filesystem::create_directories(config.work_dir, ec);
  if (ec) {
    return ConfigError(InputError("work_dir", config.work_dir.string(),
                                  "cannot create it: " + ec.message()));
  }

  auto components = registry.Build(config, clock);
  if (!components.ok()) {
    std::cerr << "drover-worker: " << Explain(components.status()) << std::endl;
    return 1;
  }
  std::vector<std::shared_ptr<const client::Connection>> connections;
  for (const std::string& url : config.queue_urls) {
    client::ConnectionOptions options;
    options.url = url;
    options.ca_file = config.tls_ca_file;
    options.credentials.client_id = config.client_id;
    options.credentials.access_token = config.access_token;
    options.credentials.source = "worker config";
    auto connection = client::Connection::Create(options);
    if (!connection.ok()) return ConfigError(connection.status());
    connections.push_back(*connection);
  }
  GrpcQueueApi grpc_api(std::move(connections));
  QueueApi* api_in_use = &grpc_api;

  // Registration mode: temporary credentials from the worker manager,
  // renewed by the Registrar; claims that fail authentication ask it to
  // re-register at once.
  std::unique_ptr<Registrar> registrar;
  std::unique_ptr<ReregisteringQueueApi> reregistering_api;
  if (!config.registration_secret_file.empty()) {
    auto proof = ReadRegistrationProof(config);
    if (!proof.ok()) return ConfigError(proof.status());
    RegistrarOptions r;
    r.queue_urls = config.queue_urls;
    r.tls_ca_file = config.tls_ca_file;
    r.worker_pool_id = config.worker_pool_id;
    r.worker_group = config.worker_group;
    r.worker_id = config.worker_id;
    r.capacity = config.capacity;
    r.proof = *proof;
    r.state_file = config.registration_state_file.empty()
                       ? (config.work_dir / "registration-state.json").string()
                       : config.registration_state_file;
    r.reregister_fraction = config.reregister_fraction;
    r.heartbeat_interval = config.heartbeat_interval;
    r.facts = HostFacts(config.engine);
    registrar = std::make_unique<Registrar>(std::move(r));
    reregistering_api =
        std::make_unique<ReregisteringQueueApi>(&grpc_api, registrar.get());
    api_in_use = reregistering_api.get();
  }
  QueueApi& api = *api_in_use;
  // New credentials replace the connections of every queue address.
  auto use_credentials = [&config, &grpc_api](
                             const client::Credentials& credentials) {
    std::vector<std::shared_ptr<const client::Connection>> fresh;
    for (const std::string& url : config.queue_urls) {
      client::ConnectionOptions options;
      options.url = url;
      options.ca_file = config.tls_ca_file;
      options.credentials = credentials;
      auto connection = client::Connection::Create(options);
      if (!connection.ok()) {
        spdlog::error("new credentials: {}", connection.status().ToString());
        return;
      }
      fresh.push_back(*connection);
    }
    grpc_api.SetConnections(std::move(fresh));
  };

  WorkerOptions options;
  options.run.worker = WorkerIdentity{config.worker_pool_id,
                                      config.worker_group, config.worker_id};
  options.run.work_dir = config.work_dir;
  options.run.queue_address = config.queue_urls.front();
  options.run.reclaim_fraction = config.reclaim_fraction;
  options.capacity = config.capacity;
  options.shutdown_grace = config.shutdown_grace;
  options.log_retention = config.log_retention;
  Worker worker(api, *components->engine, components->PluginPointers(), options,
                clock);
  WorkerMetrics metrics;
  worker.SetRunObserver(
      [&metrics](const TaskRunSummary& summary) { metrics.Observe(summary); });

  std::unique_ptr<MetricsServer> metrics_server;
  if (!config.metrics_listen.empty()) {
    auto started = MetricsServer::Start(
        config.metrics_listen,
        [&metrics, &worker] { return metrics.Render(worker.Stats()); });
    if (!started.ok()) {
      std::cerr << "drover-worker: " << Explain(started.status()) << std::endl;
      return 1;
    }
    metrics_server = std::move(*started);
    std::cout << "metrics on http://" << metrics_server->address() << "/metrics"
              << std::endl;
  }

  std::atomic<bool> exiting{false};
  std::atomic<bool> registered{false};
  std::thread signal_thread([&] {
    int received = 0;
    while (sigwait(&signals, &received) == 0) {
      if (exiting.load()) return;
      spdlog::info(
          "received {}: stopping (no new claims; running tasks get "
          "{:.0f} s)",
          received == SIGTERM ? "SIGTERM" : "SIGINT",
          absl::ToDoubleSeconds(config.shutdown_grace));
      worker.Shutdown();
      // Still registering: give up (the worker has not started).
      if (registrar != nullptr && !registered.load()) registrar->Stop(false);
    }
  });

  if (registrar != nullptr) {
    auto credentials = registrar->RegisterAtStart();
    if (!credentials.ok()) {
      std::cout << "drover-worker stopped before registering" << std::endl;
      exiting.store(true);
      kill(getpid(), SIGTERM);
      signal_thread.join();
      return 0;
    }
    use_credentials(*credentials);
    registered.store(true);
    registrar->Start(use_credentials, [&worker] { worker.Shutdown(); });
  }

  std::cout << "drover-worker " << config.worker_group << "/"
            << config.worker_id << " serving " << config.worker_pool_id
            << " from " << config.queue_urls.front() << " with engine "
            << config.engine << " (plugins "
            << absl::StrJoin(plugin_names, ", ") << "), capacity "
            << config.capacity << std::endl;
  worker.Run();
  // Tell the worker manager, so anything still claimed is retried at once.
  if (registrar != nullptr) registrar->Stop(/*announce=*/true);
  std::cout << "drover-worker stopped" << std::endl;

  exiting.store(true);
  kill(getpid(), SIGTERM);  // wakes the signal thread so it can end
  signal_thread.join();
  return 0;
}
