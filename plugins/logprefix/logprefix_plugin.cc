#include "plugins/logprefix/logprefix_plugin.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "plugins/logprefix/timestamping_log_sink.h"

namespace drover::plugins::logprefix {
namespace {

class LogPrefixTaskPlugin final : public TaskPlugin {
 public:
  LogPrefixTaskPlugin(const LogPrefixOptions& options, const Clock& clock,
                      const TaskInfo& info)
      : options_(options), clock_(clock), info_(info) {}

  // The header goes out first, before other plugins' Prepare output.
  absl::Status Prepare(engines::SandboxSpec& spec) override {
    engines::LogSink* log = spec.log != nullptr ? spec.log : info_.log;
    if (log == nullptr) return absl::OkStatus();
    log->Write(absl::StrCat(
        "[drover] worker: ", info_.worker_group, "/", info_.worker_id, "\n",
        "[drover] task: ", info_.task_id, " run ", info_.run_id,
        " (task queue ", info_.task_queue_id, ")\n",
        "[drover] engine: ", info_.engine, "\n",
        "[drover] started: ", FormatLogTime(clock_.Now()), "\n"));
    return absl::OkStatus();
  }

  absl::Status BuildSandbox(engines::SandboxSpec& spec) override {
    if (options_.timestamps && spec.log != nullptr) {
      // Lives as long as this TaskPlugin, which the worker keeps until
      // after the sandbox is gone.
      stamper_.emplace(spec.log, clock_);
      spec.log = &*stamper_;
    }
    return absl::OkStatus();
  }

 private:
  const LogPrefixOptions& options_;
  const Clock& clock_;
  const TaskInfo info_;
  std::optional<TimestampingLogSink> stamper_;
};

}  // namespace

absl::StatusOr<LogPrefixOptions> ParseLogPrefixConfig(
    const nlohmann::json& config, std::string_view field) {
  std::string prefix(field);
  LogPrefixOptions options;
  if (config.is_null()) return options;
  if (!config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  for (const auto& [key, value] : config.items()) {
    std::string key_field = absl::StrCat(prefix, ".", key);
    if (key != "timestamps") {
      return InputError(key_field, key,
                        "unknown logprefix option (timestamps)");
    }
    if (!value.is_boolean()) {
      return InputError(key_field, value.dump(), "expected true or false");
    }
    options.timestamps = value.get<bool>();
  }
  return options;
}

absl::StatusOr<std::unique_ptr<TaskPlugin>> LogPrefixPlugin::NewTaskPlugin(
    const TaskInfo& info) {
  return std::unique_ptr<TaskPlugin>(
      new LogPrefixTaskPlugin(options_, clock_, info));
}

absl::StatusOr<std::unique_ptr<Plugin>> NewLogPrefixPlugin(
    const nlohmann::json& config, const Clock& clock) {
  DROVER_ASSIGN_OR_RETURN(LogPrefixOptions options,
                          ParseLogPrefixConfig(config));
  return std::unique_ptr<Plugin>(new LogPrefixPlugin(options, clock));
}

}  // namespace drover::plugins::logprefix
