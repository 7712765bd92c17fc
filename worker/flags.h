// Command-line flags and DROVER_* environment variables of drover-worker,
// and how they combine with the JSON config file.
//
// Precedence, highest first (as for every Drover binary, common/config.h):
// flags, the config file (--config, or DROVER_CONFIG), the environment
// (DROVER_QUEUE_URL, DROVER_CAPACITY, ... one per flag below), built-in
// defaults. The result is one config document, so ParseWorkerConfig and
// ValidateWorkerConfig see every source alike and name config fields in
// their errors.
#ifndef DROVER_WORKER_FLAGS_H_
#define DROVER_WORKER_FLAGS_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "client/environment.h"
#include "nlohmann/json.hpp"

namespace drover::worker {

// A config setting that has a flag of its own.
struct FlagSetting {
  // Flag name without dashes ("queue-url"); the config key replaces '-'
  // by '_' and the variable is EnvName(flag).
  std::string flag;
  enum class Kind { kString, kInteger, kNumber } kind = Kind::kString;
  std::string value;
  CLI::Option* option = nullptr;
};

struct WorkerFlags {
  std::string config_file;
  bool check_config = false;
  std::vector<FlagSetting> settings;
};

// Adds --config, --check-config and one flag per FlagSetting (queue-url,
// worker-pool-id, worker-group, worker-id, capacity, work-dir, engine,
// shutdown-grace-seconds, metrics-listen, log-format, log-level).
// `flags` must outlive `app`.
void AddWorkerFlags(CLI::App& app, WorkerFlags* flags);

// Builds the config document from the environment, the config file and
// the flags given (call after app.parse()). Errors: InputError naming the
// config file (unreadable, not JSON) or the variable/flag whose value has
// the wrong type ("DROVER_CAPACITY", "capacity").
absl::StatusOr<nlohmann::ordered_json> MergeConfigSources(
    const WorkerFlags& flags, const client::EnvLookup& env);

}  // namespace drover::worker

#endif  // DROVER_WORKER_FLAGS_H_
