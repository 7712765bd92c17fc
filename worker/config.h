// WorkerConfig: everything an operator sets for drover-worker, read from a
// JSON file and overridden by flags (worker/flags.h), validated with errors
// that name the offending field.
//
// Example (docs/worker.md has the full reference):
//   {
//     "queue_url": "127.0.0.1:50051",
//     "worker_pool_id": "proj/linux",
//     "worker_group": "rack-1",
//     "worker_id": "host-17",
//     "capacity": 4,
//     "credentials": {"client_id": "...", "access_token_file": "..."},
//     "engine": {"name": "native", "config": {}},
//     "plugins": {"logprefix": {}, "env": {}, "maxruntime": {"max": 86400},
//                 "exit-status": {}},
//     "work_dir": "/var/lib/drover-worker",
//     "shutdown_grace_seconds": 300,
//     "metrics_listen": "127.0.0.1:9102"
//   }
//
// Plugins run their hooks in the order the config lists them, so the
// parser keeps the document's key order.
#ifndef DROVER_WORKER_CONFIG_H_
#define DROVER_WORKER_CONFIG_H_

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace drover::worker {

struct WorkerConfig {
  // One or more queue addresses (client/endpoint.h forms); the worker uses
  // the first and moves to the next when one is unreachable.
  std::vector<std::string> queue_urls;
  // PEM file of the CA that signed the queue's certificate (https URLs).
  std::string tls_ca_file;
  // "<provisioner>/<worker-type>": the pool and the task queue it serves.
  std::string worker_pool_id;
  std::string worker_group;
  std::string worker_id;
  int capacity = 1;
  // Static client credentials (until registration with the worker manager
  // provides temporary ones).
  std::string client_id;
  std::string access_token;
  // Registration with the worker manager (instead of static credentials):
  // the file holding the proof (the worker's static secret or the pool's
  // registration secret).
  std::string registration_secret_file;
  // Where the single-use re-registration secret and the current
  // credentials are kept across restarts (written atomically, mode 0600).
  // Empty: <work_dir>/registration-state.json.
  std::string registration_state_file;
  // Re-register when this fraction of the credentials' lifetime has passed.
  double reregister_fraction = 0.75;
  // WorkerHeartbeat period (liveness; learns of removal and quarantine).
  absl::Duration heartbeat_interval = absl::Seconds(60);
  std::string engine = "native";
  nlohmann::json engine_config = nlohmann::json::object();
  // Enabled plugins, in hook order, each with its configuration. When the
  // config names none: DefaultPlugins().
  std::vector<std::pair<std::string, nlohmann::json>> plugins;
  std::filesystem::path work_dir = "/var/lib/drover-worker";
  absl::Duration shutdown_grace = absl::Minutes(5);
  double reclaim_fraction = 0.5;
  // Task logs older than this are deleted from <work_dir>/logs.
  absl::Duration log_retention = absl::Hours(24 * 7);
  // host:port for Prometheus text on /metrics; empty: no listener.
  std::string metrics_listen;
  std::string log_format = "text";
  std::string log_level = "info";
};

// Host name of this machine, the default worker id and group.
std::string HostName();

// The registration proof: registration.secret_file's contents without
// trailing whitespace. Errors: InputError("registration.secret_file") when
// it cannot be read or is empty.
absl::StatusOr<std::string> ReadRegistrationProof(const WorkerConfig& config);

// The plugins a config without "plugins" gets, in this order: logprefix,
// env, maxruntime, exit-status.
std::vector<std::pair<std::string, nlohmann::json>> DefaultPlugins();

// Parses a config document (shapes and types). Errors: InputError naming
// the field ("capacity", "engine.name", "plugins.maxruntime") and value.
absl::StatusOr<WorkerConfig> ParseWorkerConfig(
    const nlohmann::ordered_json& doc);
// Same, for a document whose key order is already lost (plugins then run
// in the order of their names).
absl::StatusOr<WorkerConfig> ParseWorkerConfig(const nlohmann::json& doc);

// Reads `path` as a JSON document (keeping key order). Errors: InputError
// on "config" for an unreadable file or invalid JSON (with the position).
absl::StatusOr<nlohmann::ordered_json> ReadConfigDocument(
    const std::filesystem::path& path);

// ReadConfigDocument, then ParseWorkerConfig.
absl::StatusOr<WorkerConfig> LoadWorkerConfig(
    const std::filesystem::path& path);

// Checks the settings that depend on each other and on the machine (queue
// URLs parse, known engine and plugins, work dir creatable). Changes
// nothing on disk. `known_engines` and `known_plugins` are the names
// registered in main. Errors: InputError naming the field.
absl::Status ValidateWorkerConfig(
    const WorkerConfig& config, const std::vector<std::string>& known_engines,
    const std::vector<std::string>& known_plugins);

}  // namespace drover::worker

#endif  // DROVER_WORKER_CONFIG_H_
