// The logprefix plugin: opens every task log with a header naming the
// worker, task, run, engine and start time, and optionally stamps each log
// line with the worker's time (through a TimestampingLogSink wrapped around
// SandboxSpec::log).
//
//   [drover] worker: <worker group>/<worker id>
//   [drover] task: <task id> run <run id> (task queue <task queue id>)
//   [drover] engine: <engine>
//   [drover] started: 2024-05-01T12:00:00.000Z
//
// Config ("plugins.logprefix"): {"timestamps": false}.
#ifndef DROVER_PLUGINS_LOGPREFIX_LOGPREFIX_PLUGIN_H_
#define DROVER_PLUGINS_LOGPREFIX_LOGPREFIX_PLUGIN_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "nlohmann/json.hpp"
#include "plugins/plugin.h"

namespace drover::plugins::logprefix {

struct LogPrefixOptions {
  bool timestamps = false;
};

// Reads the plugin's config. Errors: InputError naming the field below
// `field` ("plugins.logprefix.timestamps").
absl::StatusOr<LogPrefixOptions> ParseLogPrefixConfig(
    const nlohmann::json& config, std::string_view field = "plugins.logprefix");

class LogPrefixPlugin final : public Plugin {
 public:
  // `clock` is not owned and outlives the plugin.
  LogPrefixPlugin(LogPrefixOptions options, const Clock& clock)
      : options_(options), clock_(clock) {}

  std::string_view Name() const override { return "logprefix"; }
  absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) override;

 private:
  const LogPrefixOptions options_;
  const Clock& clock_;
};

// Parses the config and makes the plugin (for main's registration).
absl::StatusOr<std::unique_ptr<Plugin>> NewLogPrefixPlugin(
    const nlohmann::json& config, const Clock& clock);

}  // namespace drover::plugins::logprefix

#endif  // DROVER_PLUGINS_LOGPREFIX_LOGPREFIX_PLUGIN_H_
