// WorkerConfig: everything an operator sets for drover-worker, read from a
// JSON file and overridden by flags, validated with errors that name the
// offending field.
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
//     "plugins": {"env": {}, "maxruntime": {"max": 86400}, ...},
//     "work_dir": "/var/lib/drover-worker",
//     "shutdown_grace_seconds": 300
//   }
#ifndef DROVER_WORKER_CONFIG_H_
#define DROVER_WORKER_CONFIG_H_

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace drover::worker {

struct WorkerConfig {
  // One or more queue addresses, tried in order.
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
  // Registration with the worker manager: the static secret proving this
  // worker's identity.
  std::string registration_secret_file;
  std::string engine = "native";
  nlohmann::json engine_config = nlohmann::json::object();
  // Enabled plugins, in hook order, each with its configuration.
  std::vector<std::pair<std::string, nlohmann::json>> plugins;
  std::filesystem::path work_dir = "/var/lib/drover-worker";
  absl::Duration shutdown_grace = absl::Minutes(5);
  double reclaim_fraction = 0.5;
  std::string log_format = "text";
  std::string log_level = "info";
};

// Host name of this machine, the default worker id and group.
std::string HostName();

// Parses and validates a config document. Errors: InputError naming the
// field ("capacity", "engine.name", "plugins.maxruntime").
absl::StatusOr<WorkerConfig> ParseWorkerConfig(const nlohmann::json& doc);

// Reads `path` as JSON and parses it. Errors: InputError for unreadable or
// invalid JSON (with the line and column), then as ParseWorkerConfig.
absl::StatusOr<WorkerConfig> LoadWorkerConfig(const std::filesystem::path& path);

// Checks the settings that depend on each other and on the machine (known
// engine and plugins, work dir writable). `known_engines` and
// `known_plugins` are the names registered in main.
absl::Status ValidateWorkerConfig(const WorkerConfig& config,
                                  const std::vector<std::string>& known_engines,
                                  const std::vector<std::string>& known_plugins);

}  // namespace drover::worker

#endif  // DROVER_WORKER_CONFIG_H_
