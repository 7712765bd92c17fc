#include "plugins/maxruntime/maxruntime_plugin.h"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace drover::plugins::maxruntime {
namespace {

absl::Status Malformed(const nlohmann::json& value,
                       const std::string& message) {
  std::string shown = value.is_null() ? "" : value.dump();
  return MakeError(ErrorCode::kMalformedPayload,
                   absl::StrCat("payload.maxRunTime: ", message),
                   {{"field", "payload.maxRunTime"}, {"value", shown}});
}

class MaxRunTimeTaskPlugin final : public TaskPlugin {
 public:
  MaxRunTimeTaskPlugin(int64_t seconds, absl::Duration limit,
                       engines::LogSink* log)
      : seconds_(seconds), limit_(limit), log_(log) {}

  ~MaxRunTimeTaskPlugin() override { StopTimer(); }

  absl::Status Started(engines::Sandbox& sandbox) override {
    // The timer thread sleeps on a condition variable: no polling, and
    // Stopped() ends it at once.
    timer_ = std::thread([this, &sandbox] {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, absl::ToChronoNanoseconds(limit_),
                       [this] { return stop_; })) {
        return;
      }
      fired_ = true;
      lock.unlock();
      if (log_ != nullptr) {
        log_->Write(absl::StrCat("[drover] maxRunTime of ", seconds_,
                                 " s exceeded: aborting the task\n"));
      }
      sandbox.Abort();
    });
    return absl::OkStatus();
  }

  absl::Status Stopped(engines::Sandbox& sandbox, const engines::Result& result,
                       Outcome& outcome) override {
    StopTimer();
    // A task that ended on its own just before the timer fired keeps its
    // own outcome; one the timer aborted failed.
    if (fired_ && result.aborted) {
      outcome = {Outcome::State::kFailed, ""};
      if (log_ != nullptr) {
        log_->Write(
            absl::StrCat("[drover] the task ran longer than its "
                         "maxRunTime of ",
                         seconds_, " s: resolving it failed\n"));
      }
    }
    return absl::OkStatus();
  }

  void Dispose() override { StopTimer(); }

 private:
  void StopTimer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (timer_.joinable()) timer_.join();
  }

  const int64_t seconds_;
  const absl::Duration limit_;
  engines::LogSink* const log_;
  std::thread timer_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // guarded by mu_
  bool fired_ = false;  // written by the timer before Abort(), read after join
};

}  // namespace

absl::StatusOr<MaxRunTimeOptions> ParseMaxRunTimeConfig(
    const nlohmann::json& config, std::string_view field) {
  std::string prefix(field);
  MaxRunTimeOptions options;
  if (config.is_null()) return options;
  if (!config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  for (const auto& [key, value] : config.items()) {
    std::string key_field = absl::StrCat(prefix, ".", key);
    if (key != "max") {
      return InputError(key_field, key, "unknown maxruntime option (max)");
    }
    if (!value.is_number_integer() || value.get<int64_t>() < 1) {
      return InputError(key_field, value.dump(),
                        "expected a whole number of seconds >= 1");
    }
    options.max_seconds = value.get<int64_t>();
  }
  return options;
}

absl::Status MaxRunTimePlugin::ValidatePayload(
    const nlohmann::json& payload) const {
  if (!payload.is_object()) return absl::OkStatus();  // the engine says so
  auto value = payload.find("maxRunTime");
  if (value == payload.end()) {
    return Malformed(nullptr,
                     absl::StrCat("maxRunTime (seconds, at most ",
                                  options_.max_seconds, ") is required"));
  }
  if (!value->is_number_integer() || value->get<int64_t>() < 1) {
    return Malformed(*value, "maxRunTime is a whole number of seconds >= 1");
  }
  if (value->get<int64_t>() > options_.max_seconds) {
    return Malformed(*value, absl::StrCat("maxRunTime exceeds this worker's "
                                          "maximum of ",
                                          options_.max_seconds, " s"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TaskPlugin>> MaxRunTimePlugin::NewTaskPlugin(
    const TaskInfo& info) {
  // The worker validated the payload; check again rather than trust it.
  DROVER_RETURN_IF_ERROR(ValidatePayload(info.payload));
  int64_t seconds = info.payload.at("maxRunTime").get<int64_t>();
  return std::unique_ptr<TaskPlugin>(
      new MaxRunTimeTaskPlugin(seconds, options_.unit * seconds, info.log));
}

absl::StatusOr<std::unique_ptr<Plugin>> NewMaxRunTimePlugin(
    const nlohmann::json& config) {
  DROVER_ASSIGN_OR_RETURN(MaxRunTimeOptions options,
                          ParseMaxRunTimeConfig(config));
  return std::unique_ptr<Plugin>(new MaxRunTimePlugin(options));
}

}  // namespace drover::plugins::maxruntime
