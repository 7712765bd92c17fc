#include "plugins/livelog/livelog_plugin.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "spdlog/spdlog.h"

namespace drover::plugins::livelog {
namespace {

// Forwards to the real sink, then rings: the sender learns of new bytes
// without polling. The bytes are in the file by then (the worker's task
// log writes through to it).
class DoorbellSink final : public engines::LogSink {
 public:
  DoorbellSink(engines::LogSink* inner, std::function<void()> ring)
      : inner_(inner), ring_(std::move(ring)) {}
  void Write(std::string_view bytes) override {
    inner_->Write(bytes);
    ring_();
  }

 private:
  engines::LogSink* const inner_;
  const std::function<void()> ring_;
};

class LiveLogTaskPlugin final : public TaskPlugin {
 public:
  LiveLogTaskPlugin(const LiveLogOptions& options, TaskInfo info,
                    std::shared_ptr<client::ArtifactsClient> client)
      : options_(options), info_(std::move(info)), client_(std::move(client)) {}

  ~LiveLogTaskPlugin() override {
    StopSender();
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Prepare(engines::SandboxSpec& spec) override {
    path_ = options_.log_path(info_);
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      return MakeError(ErrorCode::kInternalError,
                       "the live log cannot read the task log file",
                       {{"path", path_.string()}});
    }
    sender_ = std::thread([this] { SendLoop(); });
    return absl::OkStatus();
  }

  absl::Status BuildSandbox(engines::SandboxSpec& spec) override {
    if (spec.log != nullptr) {
      doorbell_.emplace(spec.log, [this] { Ring(); });
      spec.log = &*doorbell_;
    }
    return absl::OkStatus();
  }

  absl::Status Finished(engines::Sandbox& sandbox,
                        const Outcome& outcome) override {
    StopSender();
    return UploadLog();
  }

  void Exception(const Outcome& outcome) override {
    StopSender();
    if (uploaded_) return;
    // The log explains the failure; publish it if the queue still takes
    // it (not when the claim was lost). An earlier plugin's failing
    // Prepare means ours never ran: the file is still there.
    if (path_.empty()) path_ = options_.log_path(info_);
    absl::Status status = UploadLog();
    if (!status.ok()) {
      spdlog::warn("task {} run {}: live log not uploaded: {}", info_.task_id,
                   info_.run_id, status.ToString());
    }
  }

  void Dispose() override { StopSender(); }

 private:
  void Ring() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      rung_ = true;
    }
    cv_.notify_one();
  }

  void StopSender() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    if (sender_.joinable()) sender_.join();
  }

  int64_t FileSize() const {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return sent_;
    return static_cast<int64_t>(st.st_size);
  }

  // Waits up to `d` for a ring or stop; returns stop_.
  bool WaitFor(absl::Duration d) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock,
                 absl::ToChronoNanoseconds(std::max(d, absl::ZeroDuration())),
                 [this] { return stop_ || rung_; });
    rung_ = false;
    return stop_;
  }

  void SendLoop() {
    std::vector<char> buffer(static_cast<size_t>(options_.flush_bytes));
    absl::Time last_send = absl::InfinitePast();
    bool stopping = false;
    while (!stopping) {
      stopping = WaitFor(options_.flush_interval);
      // Send everything available, paced: a full chunk goes at once, a
      // partial one no sooner than flush_interval after the last send.
      while (!stopping) {
        const int64_t pending = FileSize() - sent_;
        if (pending <= 0) break;
        const absl::Duration since = absl::Now() - last_send;
        if (pending < options_.flush_bytes && since < options_.flush_interval) {
          stopping = WaitFor(options_.flush_interval - since);
          continue;
        }
        const size_t want =
            static_cast<size_t>(std::min(pending, options_.flush_bytes));
        ssize_t got = ::pread(fd_, buffer.data(), want, sent_);
        if (got <= 0) break;
        if (!Append(
                std::string_view(buffer.data(), static_cast<size_t>(got)))) {
          return;  // streaming is over; the final upload still happens
        }
        sent_ += got;
        last_send = absl::Now();
      }
    }
  }

  // Sends one chunk, retrying transport failures for a while. False when
  // streaming should stop.
  bool Append(std::string_view bytes) {
    v1::AppendLogRequest request;
    request.set_task_id(info_.task_id);
    request.set_run_id(info_.run_id);
    request.set_offset(sent_);
    request.set_data(std::string(bytes));
    const absl::Time give_up = absl::Now() + options_.append_give_up;
    absl::Duration backoff = absl::Milliseconds(200);
    for (;;) {
      auto appended = client_->AppendLog(request);
      if (appended.ok()) return true;
      const absl::Status& status = appended.status();
      const bool transient =
          status.code() == absl::StatusCode::kUnavailable ||
          status.code() == absl::StatusCode::kDeadlineExceeded;
      if (!transient || absl::Now() + backoff > give_up) {
        spdlog::warn(
            "task {} run {}: live log streaming stopped at byte {}: {}",
            info_.task_id, info_.run_id, sent_, status.ToString());
        return false;
      }
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, absl::ToChronoNanoseconds(backoff),
                         [this] { return stop_; })) {
          return false;
        }
      }
      backoff = std::min(backoff * 2, absl::Seconds(5));
    }
  }

  absl::Status UploadLog() {
    if (uploaded_) return absl::OkStatus();
    // Upload a snapshot: the file may still grow (worker notes) while the
    // bytes are hashed and sent, and the hash must match what is sent.
    std::random_device rd;
    const std::filesystem::path snapshot =
        std::filesystem::temp_directory_path() /
        absl::StrCat("drover-livelog-", info_.task_id, "-", info_.run_id, "-",
                     rd(), ".log");
    std::error_code ec;
    std::filesystem::copy_file(
        path_, snapshot, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
      return MakeError(ErrorCode::kInternalError,
                       "cannot snapshot the task log: " + ec.message(),
                       {{"path", path_.string()}});
    }
    client::BlobArtifactUpload upload;
    upload.task_id = info_.task_id;
    upload.run_id = info_.run_id;
    upload.name = std::string(kLiveLogName);
    upload.content_type = options_.content_type;
    upload.file = snapshot;
    auto uploaded =
        client::UploadBlobArtifact(*client_, upload, options_.transfer);
    std::filesystem::remove(snapshot, ec);
    if (!uploaded.ok()) {
      ErrorInfo error = GetErrorInfo(uploaded.status());
      error.details["artifact"] = std::string(kLiveLogName);
      error.details["cause"] = std::string(ErrorCodeName(error.code));
      return MakeError(ErrorCode::kInternalError,
                       "uploading the task log as " +
                           std::string(kLiveLogName) +
                           " failed: " + error.message,
                       error.details);
    }
    uploaded_ = true;
    return absl::OkStatus();
  }

  const LiveLogOptions& options_;
  const TaskInfo info_;
  const std::shared_ptr<client::ArtifactsClient> client_;
  std::filesystem::path path_;
  int fd_ = -1;
  std::optional<DoorbellSink> doorbell_;
  std::thread sender_;
  int64_t sent_ = 0;  // Owned by the sender thread while it runs.
  bool uploaded_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  bool rung_ = false;  // Guarded by mu_.
  bool stop_ = false;  // Guarded by mu_.
};

}  // namespace

std::filesystem::path WorkerTaskLogPath(const std::filesystem::path& work_dir,
                                        const TaskInfo& info) {
  return work_dir / "logs" /
         absl::StrCat(info.task_id, "_", info.run_id, ".log");
}

absl::StatusOr<LiveLogOptions> ParseLiveLogConfig(
    const nlohmann::json& config, const std::filesystem::path& work_dir,
    std::string_view field) {
  const std::string prefix(field);
  LiveLogOptions options;
  options.log_path = [work_dir](const TaskInfo& info) {
    return WorkerTaskLogPath(work_dir, info);
  };
  if (config.is_null()) return options;
  if (!config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  for (const auto& [key, value] : config.items()) {
    const std::string key_field = absl::StrCat(prefix, ".", key);
    if (key == "flush_bytes") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1024 ||
          value.get<int64_t>() > (1 << 20)) {
        return InputError(key_field, value.dump(),
                          "expected a whole number of bytes, 1024..1048576");
      }
      options.flush_bytes = value.get<int64_t>();
    } else if (key == "flush_interval_ms") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 ||
          value.get<int64_t>() > 60000) {
        return InputError(key_field, value.dump(),
                          "expected milliseconds, 1..60000");
      }
      options.flush_interval = absl::Milliseconds(value.get<int64_t>());
    } else if (key == "ca_file") {
      if (!value.is_string()) {
        return InputError(key_field, value.dump(), "expected a file path");
      }
      options.ca_file = value.get<std::string>();
      options.transfer.ca_file = options.ca_file;
    } else {
      return InputError(key_field, key,
                        "unknown livelog option (flush_bytes, "
                        "flush_interval_ms, ca_file)");
    }
  }
  return options;
}

LiveLogPlugin::LiveLogPlugin(LiveLogOptions options,
                             artifacts::ArtifactsClientFactory clients)
    : options_(std::move(options)),
      clients_(clients
                   ? std::move(clients)
                   : artifacts::TaskArtifactsClientFactory(options_.ca_file)) {}

absl::StatusOr<std::unique_ptr<TaskPlugin>> LiveLogPlugin::NewTaskPlugin(
    const TaskInfo& info) {
  if (!options_.log_path) {
    return InternalError("the livelog plugin has no task log path");
  }
  DROVER_ASSIGN_OR_RETURN(auto client, clients_(info));
  return std::unique_ptr<TaskPlugin>(
      new LiveLogTaskPlugin(options_, info, std::move(client)));
}

absl::StatusOr<std::unique_ptr<Plugin>> NewLiveLogPlugin(
    const nlohmann::json& config, const std::filesystem::path& work_dir,
    std::string_view field) {
  DROVER_ASSIGN_OR_RETURN(LiveLogOptions options,
                          ParseLiveLogConfig(config, work_dir, field));
  return std::unique_ptr<Plugin>(new LiveLogPlugin(std::move(options)));
}

}  // namespace drover::plugins::livelog
