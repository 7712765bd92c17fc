#include "plugins/exitstatus/exitstatus_plugin.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace drover::plugins::exitstatus {
namespace {

absl::Status Malformed(const std::string& field, const nlohmann::json& value,
                       const std::string& message) {
  return MakeError(ErrorCode::kMalformedPayload,
                   absl::StrCat(field, ": ", message),
                   {{"field", field}, {"value", value.dump()}});
}

class ExitStatusTaskPlugin final : public TaskPlugin {
 public:
  ExitStatusTaskPlugin(std::vector<int> retry, engines::LogSink* log)
      : retry_(std::move(retry)), log_(log) {}

  absl::Status Stopped(engines::Sandbox& sandbox, const engines::Result& result,
                       Outcome& outcome) override {
    if (result.aborted) return absl::OkStatus();
    if (result.signal || result.out_of_memory) {
      outcome = {Outcome::State::kFailed, ""};
      return absl::OkStatus();
    }
    if (result.exit_code == 0) {
      outcome = {Outcome::State::kCompleted, ""};
    } else if (std::find(retry_.begin(), retry_.end(), result.exit_code) !=
               retry_.end()) {
      outcome = {Outcome::State::kException, "intermittent-task"};
      Note(absl::StrCat("exit code ", result.exit_code,
                        " is listed in onExitStatus.retry: resolving "
                        "exception/intermittent-task so the task is retried"));
    } else {
      outcome = {Outcome::State::kFailed, ""};
      Note(absl::StrCat("exit code ", result.exit_code, ": the task failed"));
    }
    return absl::OkStatus();
  }

 private:
  void Note(const std::string& line) {
    if (log_ != nullptr) log_->Write(absl::StrCat("[drover] ", line, "\n"));
  }

  const std::vector<int> retry_;
  engines::LogSink* const log_;
};

}  // namespace

absl::Status ExitStatusPlugin::ValidatePayload(
    const nlohmann::json& payload) const {
  if (!payload.is_object()) return absl::OkStatus();  // the engine says so
  auto on_exit = payload.find("onExitStatus");
  if (on_exit == payload.end()) return absl::OkStatus();
  if (!on_exit->is_object()) {
    return Malformed("payload.onExitStatus", *on_exit,
                     "onExitStatus is an object such as {\"retry\": [42]}");
  }
  for (const auto& [key, value] : on_exit->items()) {
    std::string field = absl::StrCat("payload.onExitStatus.", key);
    if (key != "retry") {
      return Malformed(field, value, "unknown key (retry)");
    }
    if (!value.is_array()) {
      return Malformed(field, value, "retry is an array of exit codes");
    }
    for (size_t i = 0; i < value.size(); ++i) {
      const auto& code = value[i];
      if (!code.is_number_integer() || code.get<int64_t>() < 1 ||
          code.get<int64_t>() > 255) {
        return Malformed(absl::StrCat(field, "[", i, "]"), code,
                         "exit codes to retry are whole numbers 1..255");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TaskPlugin>> ExitStatusPlugin::NewTaskPlugin(
    const TaskInfo& info) {
  DROVER_RETURN_IF_ERROR(ValidatePayload(info.payload));
  std::vector<int> retry;
  if (info.payload.is_object()) {
    if (auto on_exit = info.payload.find("onExitStatus");
        on_exit != info.payload.end()) {
      if (auto codes = on_exit->find("retry"); codes != on_exit->end()) {
        for (const auto& code : *codes) retry.push_back(code.get<int>());
      }
    }
  }
  return std::unique_ptr<TaskPlugin>(
      new ExitStatusTaskPlugin(std::move(retry), info.log));
}

absl::StatusOr<std::unique_ptr<Plugin>> NewExitStatusPlugin(
    const nlohmann::json& config) {
  if (!config.is_null() && !(config.is_object() && config.empty())) {
    return InputError("plugins.exit-status", config.dump(),
                      "the exit-status plugin takes no options");
  }
  return std::unique_ptr<Plugin>(new ExitStatusPlugin());
}

}  // namespace drover::plugins::exitstatus
