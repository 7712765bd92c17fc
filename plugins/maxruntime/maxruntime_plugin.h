// The maxruntime plugin: every task declares how long it may run, and is
// killed when it runs longer.
//
// The payload's "maxRunTime" (whole seconds) is required and may not exceed
// the worker's configured maximum. When the sandbox has run that long
// after it started, the plugin writes the reason to the task log and aborts
// the sandbox (which kills everything the task started); the run then
// resolves failed, whatever the task's exit status says.
//
// Config ("plugins.maxruntime"): {"max": seconds} (default 86400).
#ifndef DROVER_PLUGINS_MAXRUNTIME_MAXRUNTIME_PLUGIN_H_
#define DROVER_PLUGINS_MAXRUNTIME_MAXRUNTIME_PLUGIN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "plugins/plugin.h"

namespace drover::plugins::maxruntime {

struct MaxRunTimeOptions {
  // The largest maxRunTime a payload may ask for, in seconds.
  int64_t max_seconds = 86400;
  // The length of one "second" of maxRunTime; only tests shorten it.
  absl::Duration unit = absl::Seconds(1);
};

// Reads the plugin's config. Errors: InputError naming the field below
// `field` ("plugins.maxruntime.max").
absl::StatusOr<MaxRunTimeOptions> ParseMaxRunTimeConfig(
    const nlohmann::json& config,
    std::string_view field = "plugins.maxruntime");

class MaxRunTimePlugin final : public Plugin {
 public:
  explicit MaxRunTimePlugin(MaxRunTimeOptions options) : options_(options) {}

  std::string_view Name() const override { return "maxruntime"; }
  std::vector<std::string> PayloadKeys() const override {
    return {"maxRunTime"};
  }
  // Errors: MalformedPayload naming "payload.maxRunTime" when it is
  // missing, not a whole number >= 1, or above the configured maximum.
  absl::Status ValidatePayload(const nlohmann::json& payload) const override;
  absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) override;

 private:
  const MaxRunTimeOptions options_;
};

// Parses the config and makes the plugin (for main's registration).
absl::StatusOr<std::unique_ptr<Plugin>> NewMaxRunTimePlugin(
    const nlohmann::json& config);

}  // namespace drover::plugins::maxruntime

#endif  // DROVER_PLUGINS_MAXRUNTIME_MAXRUNTIME_PLUGIN_H_
