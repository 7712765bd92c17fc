// The exit-status plugin: turns the task's exit code into the run's
// resolution.
//
//   exit 0                                   -> completed
//   a code listed in onExitStatus.retry       -> exception/intermittent-task
//                                              (the queue schedules a retry
//                                              while retries remain)
//   any other code, or death by a signal     -> failed
//
// An aborted run keeps the outcome others gave it (maxruntime, worker
// shutdown). Payload: "onExitStatus": {"retry": [codes 1..255]}.
#ifndef DROVER_PLUGINS_EXITSTATUS_EXITSTATUS_PLUGIN_H_
#define DROVER_PLUGINS_EXITSTATUS_EXITSTATUS_PLUGIN_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "plugins/plugin.h"

namespace drover::plugins::exitstatus {

class ExitStatusPlugin final : public Plugin {
 public:
  std::string_view Name() const override { return "exit-status"; }
  std::vector<std::string> PayloadKeys() const override {
    return {"onExitStatus"};
  }
  // Errors: MalformedPayload naming "payload.onExitStatus",
  // "payload.onExitStatus.retry", "payload.onExitStatus.retry[i]" or an
  // unknown "payload.onExitStatus.<key>".
  absl::Status ValidatePayload(const nlohmann::json& payload) const override;
  absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) override;
};

// Makes the plugin; it takes no configuration. Errors: InputError (field
// "plugins.exit-status") for a non-empty config.
absl::StatusOr<std::unique_ptr<Plugin>> NewExitStatusPlugin(
    const nlohmann::json& config);

}  // namespace drover::plugins::exitstatus

#endif  // DROVER_PLUGINS_EXITSTATUS_EXITSTATUS_PLUGIN_H_
