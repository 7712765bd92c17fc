// The env plugin: assembles the environment a task runs with.
//
// In increasing precedence: what earlier plugins put in SandboxSpec::env,
// the operator's configured extras, the payload's "env", and the variables
// the worker sets, which tasks cannot override:
//   TASK_ID, RUN_ID, DROVER_TASK_QUEUE_ID, DROVER_WORKER_GROUP,
//   DROVER_WORKER_ID, DROVER_QUEUE_URL and DROVER_URL (the queue address,
//   the latter read by the drover CLI), and the task credentials
//   DROVER_CLIENT_ID, DROVER_ACCESS_TOKEN, DROVER_CERTIFICATE (each only
//   when the claim carries it), so a task can call the queue (e.g. schedule
//   tasks) with its own scopes.
// The credentials are those of the claim when the task starts; a task that
// outlives them must not rely on them (reclaims renew only the worker's
// copy).
//
// Config ("plugins.env"): {"extra": {"NAME": "value", ...}}.
// Payload: "env": {"NAME": "value", ...}.
#ifndef DROVER_PLUGINS_ENV_ENV_PLUGIN_H_
#define DROVER_PLUGINS_ENV_ENV_PLUGIN_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "plugins/plugin.h"

namespace drover::plugins::env {

struct EnvPluginOptions {
  std::map<std::string, std::string> extra;
};

// The names the worker sets (see above).
const std::vector<std::string>& ReservedVariables();

// Reads the plugin's config. Errors: InputError naming the field below
// `field` (e.g. "plugins.env.extra.TASK_ID").
absl::StatusOr<EnvPluginOptions> ParseEnvPluginConfig(
    const nlohmann::json& config, std::string_view field = "plugins.env");

class EnvPlugin final : public Plugin {
 public:
  explicit EnvPlugin(EnvPluginOptions options) : options_(std::move(options)) {}

  std::string_view Name() const override { return "env"; }
  std::vector<std::string> PayloadKeys() const override { return {"env"}; }
  // Errors: MalformedPayload naming "payload.env" or "payload.env.<NAME>"
  // for a non-object, a non-string value, a bad name or a reserved name.
  absl::Status ValidatePayload(const nlohmann::json& payload) const override;
  absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) override;

 private:
  const EnvPluginOptions options_;
};

// Parses the config and makes the plugin (for main's registration).
absl::StatusOr<std::unique_ptr<Plugin>> NewEnvPlugin(
    const nlohmann::json& config);

}  // namespace drover::plugins::env

#endif  // DROVER_PLUGINS_ENV_ENV_PLUGIN_H_
