#include "engines/docker/docker_engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/config.h"
#include "common/slugid.h"
#include "common/status.h"
#include "engines/docker/image_reference.h"
#include "engines/docker/tar_extractor.h"
#include "spdlog/spdlog.h"

namespace drover::engines::docker {
namespace {

constexpr char kLabelTaskId[] = "drover.task-id";
constexpr char kLabelRunId[] = "drover.run-id";
constexpr char kLabelWorkerId[] = "drover.worker-id";
constexpr char kLabelWorkerGroup[] = "drover.worker-group";

// dockerd refuses memory limits below 6 MB.
constexpr int64_t kMinMemoryMb = 6;
constexpr int64_t kMaxMemoryMb = int64_t{1} << 24;  // 16 TiB
constexpr double kMaxCpus = 1024;
// Pull progress for one layer is written at most this often.
constexpr absl::Duration kPullProgressInterval = absl::Seconds(5);
// Once the container stopped, its output stream closes at once; this only
// bounds the wait if dockerd misbehaves.
constexpr absl::Duration kOutputDrainLimit = absl::Seconds(30);
constexpr absl::Duration kAttachLimit = absl::Seconds(60);
// dockerd learns of an OOM kill from an event of its own, which can reach
// it after the container's exit; how long Wait() keeps asking for it when
// a memory-limited container died of SIGKILL.
constexpr absl::Duration kOomEventGrace = absl::Seconds(2);
constexpr absl::Duration kOomEventPoll = absl::Milliseconds(50);
constexpr int kKilledExitCode = 128 + 9;
// What a shell reports for a command it cannot find; a container whose
// command does not exist fails the same way.
constexpr int kCommandNotFoundExit = 127;

std::string Truncated(const nlohmann::json& v) {
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

absl::Status Malformed(std::string_view field, std::string_view value,
                       std::string_view message, ErrorDetails extra = {}) {
  extra["field"] = std::string(field);
  extra["value"] = std::string(value);
  return MakeError(ErrorCode::kMalformedPayload, message, std::move(extra));
}

bool ScopeSatisfies(const std::string& held, const std::string& required) {
  if (held == required) return true;
  return !held.empty() && held.back() == '*' &&
         absl::StartsWith(required, held.substr(0, held.size() - 1));
}

std::string ErrorMessage(const absl::Status& s) {
  return std::string(s.message());
}

bool IsHttpError(const absl::Status& s) {
  return DockerErrorReason(s) == "http";
}

absl::Status AbortedError() {
  return MakeError(ErrorCode::kInternalError,
                   "the sandbox was aborted before the task started",
                   {{"reason", "aborted"}});
}

// The effective limits of one container after applying the worker's caps.
struct Limits {
  int64_t memory_mb = 0;
  double cpus = 0;
  std::vector<std::string> notes;  // for the task log
};

Limits ComputeLimits(const DockerEngineOptions& o,
                     const nlohmann::json& payload) {
  Limits l;
  const nlohmann::json* res =
      payload.contains("resources") ? &payload["resources"] : nullptr;
  int64_t asked_mb = 0;
  double asked_cpus = 0;
  if (res != nullptr && res->contains("memoryMB")) {
    asked_mb = static_cast<int64_t>((*res)["memoryMB"].get<double>());
  }
  if (res != nullptr && res->contains("cpus")) {
    asked_cpus = (*res)["cpus"].get<double>();
  }
  l.memory_mb = asked_mb > 0 ? asked_mb : o.default_memory_mb;
  if (o.max_memory_mb > 0 &&
      (l.memory_mb == 0 || l.memory_mb > o.max_memory_mb)) {
    if (asked_mb > o.max_memory_mb) {
      l.notes.push_back("resources.memoryMB " + std::to_string(asked_mb) +
                        " capped to " + std::to_string(o.max_memory_mb) +
                        " by the worker configuration");
    }
    l.memory_mb = o.max_memory_mb;
  }
  l.cpus = asked_cpus;
  if (o.max_cpus > 0 && (l.cpus == 0 || l.cpus > o.max_cpus)) {
    if (asked_cpus > o.max_cpus) {
      l.notes.push_back("resources.cpus " + std::to_string(asked_cpus) +
                        " capped to " + std::to_string(o.max_cpus) +
                        " by the worker configuration");
    }
    l.cpus = o.max_cpus;
  }
  // dockerd refuses more CPUs than the host has.
  double host = std::max(1u, std::thread::hardware_concurrency());
  if (l.cpus > host) {
    l.notes.push_back("resources.cpus " + std::to_string(l.cpus) +
                      " capped to the host's " + std::to_string(int(host)));
    l.cpus = host;
  }
  return l;
}

// Signals the thread that called Start() once the output stream is attached
// (or failed to attach).
class AttachGate {
 public:
  void Open(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!state_) state_ = std::move(s);
    cv_.notify_all();
  }
  std::optional<absl::Status> WaitFor(absl::Duration limit) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(limit),
                 [&] { return state_.has_value(); });
    return state_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<absl::Status> state_;
};

class DockerSandbox final : public Sandbox {
 public:
  DockerSandbox(DockerEngineOptions options, std::shared_ptr<DockerApi> api,
                SandboxSpec spec, ImageReference image, nlohmann::json body,
                std::vector<std::string> notes, int64_t memory_mb)
      : options_(std::move(options)),
        api_(std::move(api)),
        spec_(std::move(spec)),
        image_(std::move(image)),
        body_(std::move(body)),
        notes_(std::move(notes)),
        memory_mb_(memory_mb) {}

  ~DockerSandbox() override {
    RemoveContainer();
    StopOutputThread(absl::ZeroDuration());
  }

  absl::Status Start() override {
    if (aborted_) return AbortedError();
    for (const std::string& note : notes_) Log(note);
    DROVER_RETURN_IF_ERROR(EnsureImage());
    if (aborted_) return AbortedError();

    std::string name = "drover-";
    if (!spec_.task_id.empty() && IsValidSlugId(spec_.task_id)) {
      name += spec_.task_id + "-" + std::to_string(spec_.run_id) + "-";
    }
    name += NewSlugId().substr(0, 8);
    absl::StatusOr<std::string> id = api_->CreateContainer(name, body_);
    if (!id.ok()) return CreateError(id.status());
    {
      std::lock_guard<std::mutex> lock(mu_);
      container_id_ = *id;
    }
    if (aborted_) {
      RemoveContainer();
      return AbortedError();
    }

    // Output is attached before the container starts so that nothing the
    // task prints early is lost.
    auto gate = std::make_shared<AttachGate>();
    output_thread_ = std::thread([this, gate, cid = *id] {
      absl::Status s = api_->AttachOutput(
          cid, [&] { gate->Open(absl::OkStatus()); },
          [this](StreamKind, std::string_view bytes) {
            spec_.log->Write(bytes);
          },
          [this] { return OutputCancelled(); });
      gate->Open(s.ok() ? InternalError("output stream ended before start")
                        : s);
      output_status_ = s;
    });
    std::optional<absl::Status> attached = gate->WaitFor(kAttachLimit);
    if (!attached || !attached->ok()) {
      absl::Status s = attached ? *attached
                                : InternalError(
                                      "attaching to the container's "
                                      "output timed out");
      RemoveContainer();
      StopOutputThread(absl::ZeroDuration());
      return MakeError(
          ErrorCode::kInternalError,
          "cannot attach to the container's output: " + ErrorMessage(s),
          {{"container", *id}});
    }

    start_time_ = absl::Now();
    absl::Status started = api_->StartContainer(*id);
    if (!started.ok()) {
      std::string message = ErrorMessage(started);
      RemoveContainer();
      StopOutputThread(absl::ZeroDuration());
      if (IsHttpError(started) &&
          (absl::StrContains(message, "executable file not found") ||
           absl::StrContains(message, "no such file or directory"))) {
        // The task's command does not exist in the image: the task failed,
        // as a shell would report it, rather than the worker.
        Log("cannot start the command: " + message);
        std::lock_guard<std::mutex> lock(mu_);
        start_failed_ = true;
        started_ = true;
        return absl::OkStatus();
      }
      Log("cannot start the container: " + message);
      return MakeError(ErrorCode::kInternalError,
                       "cannot start the container: " + message,
                       {{"container", *id}});
    }
    bool kill_now = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      started_ = true;
      kill_now = aborted_;
    }
    if (kill_now) (void)api_->KillContainer(*id);
    return absl::OkStatus();
  }

  absl::StatusOr<Result> Wait() override {
    std::string id;
    bool start_failed = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!started_) {
        return MakeError(ErrorCode::kInternalError,
                         "Wait() needs a successful Start()");
      }
      id = container_id_;
      start_failed = start_failed_;
    }
    Result result;
    if (start_failed) {
      result.exit_code = kCommandNotFoundExit;
      result.aborted = aborted_;
      result.duration = absl::Now() - start_time_;
      Finished();
      return result;
    }

    absl::StatusOr<int64_t> exit_status = api_->WaitContainer(id, nullptr);
    result.duration = absl::Now() - start_time_;
    StopOutputThread(kOutputDrainLimit);
    absl::StatusOr<nlohmann::json> info = api_->InspectContainer(id);
    result.aborted = aborted_;
    if (!exit_status.ok() && !result.aborted) {
      Finished();
      Log("lost track of the container: " + ErrorMessage(exit_status.status()));
      return MakeError(ErrorCode::kInternalError,
                       "waiting for the container failed: " +
                           ErrorMessage(exit_status.status()),
                       {{"container", id}});
    }
    result.exit_code = exit_status.ok() ? static_cast<int>(*exit_status) : -1;
    auto read_state = [&](const nlohmann::json& container) {
      const nlohmann::json& state = container["State"];
      if (!state.is_object()) return;
      if (state.contains("OOMKilled") && state["OOMKilled"].is_boolean()) {
        result.out_of_memory = state["OOMKilled"].get<bool>();
      }
      if (!exit_status.ok() && state.contains("ExitCode") &&
          state["ExitCode"].is_number_integer()) {
        result.exit_code = state["ExitCode"].get<int>();
      }
    };
    if (info.ok()) read_state(*info);
    // A memory-limited container killed by SIGKILL may be an OOM kill whose
    // event dockerd has not processed yet: ask again for a moment rather
    // than report an ordinary failure. dockerd can also miss the event for
    // good (the container's first process was the one killed and its
    // cgroup was gone before containerd read the event); the kill is then
    // reported as what dockerd says it was, an exit by SIGKILL.
    if (info.ok() && !result.out_of_memory && memory_mb_ > 0 &&
        result.exit_code == kKilledExitCode && !result.aborted) {
      absl::Time give_up = absl::Now() + kOomEventGrace;
      while (!result.out_of_memory && absl::Now() < give_up) {
        absl::SleepFor(kOomEventPoll);
        absl::StatusOr<nlohmann::json> again = api_->InspectContainer(id);
        if (!again.ok()) break;
        read_state(*again);
      }
    }
    if (!output_status_.ok() && !result.aborted &&
        DockerErrorReason(output_status_) != "cancelled") {
      Log("the task's output stream failed; the log may be incomplete: " +
          ErrorMessage(output_status_));
    }
    if (result.out_of_memory) {
      Log("killed: out of memory" +
          (memory_mb_ > 0
               ? " (memory limit " + std::to_string(memory_mb_) + " MB)"
               : std::string()));
    } else if (memory_mb_ > 0 && result.exit_code == kKilledExitCode &&
               !result.aborted) {
      // dockerd may have missed the OOM event (above), and the task's
      // author only sees exit code 137; point at the likely cause without
      // claiming it, since the task could also have killed itself.
      Log("killed by SIGKILL (exit code 137); dockerd reported no "
          "out-of-memory kill, but it can miss one: compare the task's "
          "memory use with its limit of " +
          std::to_string(memory_mb_) + " MB");
    }
    Finished();
    return result;
  }

  void Abort() override {
    aborted_ = true;
    std::string id;
    bool started = false;
    bool waited = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = container_id_;
      started = started_;
      waited = waited_;
    }
    // The container stays until the sandbox is destroyed: the worker may
    // still extract from it (logs of what happened, partial artifacts).
    if (id.empty() || waited) return;  // Start() notices the flag
    if (started) {
      // Killing ends the output stream and the wait in Wait().
      if (absl::Status s = api_->KillContainer(id); !s.ok()) {
        spdlog::warn("docker: killing container {} failed: {}", id,
                     ErrorMessage(s));
      }
    }
  }

  absl::Status Extract(const std::string& sandbox_path,
                       const std::filesystem::path& host_path) override {
    std::string id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (container_id_.empty() || removed_) {
        return MakeError(ErrorCode::kInternalError,
                         "the container no longer exists",
                         {{"sandbox_path", sandbox_path}});
      }
      id = container_id_;
    }
    DROVER_ASSIGN_OR_RETURN(std::string source,
                            ResolveInContainer(id, sandbox_path));
    std::error_code ec;
    bool existed = std::filesystem::exists(host_path, ec);
    TarExtractor extractor(host_path,
                           std::filesystem::path(source).filename().string());
    absl::Status s = api_->GetArchive(id, source, [&](std::string_view chunk) {
      return extractor.Feed(chunk);
    });
    if (s.ok()) s = extractor.Finish();
    if (!s.ok()) {
      // Leave nothing half-copied behind (but never delete what was there).
      if (!existed) std::filesystem::remove_all(host_path, ec);
      if (HasErrorCode(s, ErrorCode::kResourceNotFound) && IsHttpError(s)) {
        return MakeError(
            ErrorCode::kResourceNotFound,
            "no such file or directory in the container: " + sandbox_path,
            {{"field", "sandbox_path"}, {"value", sandbox_path}});
      }
      return s;
    }
    for (const std::string& skipped : extractor.skipped()) {
      Log("extract " + sandbox_path + ": skipped " + skipped);
    }
    return absl::OkStatus();
  }

 private:
  // Maps a path relative to the working directory to the container path to
  // archive, refusing anything that leaves the working directory: absolute
  // paths, ".." components, and symbolic links (at any component) that
  // resolve outside it. A final link that stays inside is followed.
  // Errors: InputError (field "sandbox_path"); ResourceNotFound when a
  // component does not exist.
  absl::StatusOr<std::string> ResolveInContainer(const std::string& id,
                                                 const std::string& path) {
    auto refuse = [&](std::string_view why) {
      return InputError("sandbox_path", path,
                        "path " + std::string(why) +
                            " (paths are relative to the working directory " +
                            options_.working_dir + ")");
    };
    if (path.empty()) return refuse("is empty");
    if (path.front() == '/') return refuse("is absolute");
    std::string wd =
        std::filesystem::path(options_.working_dir).lexically_normal().string();
    while (wd.size() > 1 && wd.back() == '/') wd.pop_back();
    auto inside = [&](const std::string& p) {
      return p == wd || absl::StartsWith(p, wd == "/" ? "/" : wd + "/");
    };
    std::vector<std::string> parts;
    for (absl::string_view part : absl::StrSplit(path, '/')) {
      if (part.empty() || part == ".") continue;
      if (part == "..") return refuse("contains '..'");
      parts.emplace_back(part.data(), part.size());
    }
    std::string current = wd;
    for (const std::string& part : parts) {
      current += (current == "/" ? "" : "/") + part;
      absl::StatusOr<PathStat> stat = api_->StatPath(id, current);
      if (!stat.ok()) {
        if (HasErrorCode(stat.status(), ErrorCode::kResourceNotFound)) {
          return MakeError(
              ErrorCode::kResourceNotFound,
              "no such file or directory in the container: " + path,
              {{"field", "sandbox_path"}, {"value", path}});
        }
        return stat.status();
      }
      if (stat->is_symlink()) {
        std::string target = std::filesystem::path(stat->link_target)
                                 .lexically_normal()
                                 .string();
        if (target.empty() || !inside(target)) {
          return refuse(
              "leads outside the working directory through a "
              "symbolic link to " +
              (target.empty() ? std::string("?") : target));
        }
        current = target;
      }
    }
    return current;
  }

  void Log(const std::string& line) {
    spec_.log->Write("[docker] " + line + "\n");
  }

  bool OutputCancelled() const {
    int64_t deadline = output_deadline_ms_.load();
    return deadline != 0 && absl::ToUnixMillis(absl::Now()) >= deadline;
  }

  // Lets the output stream drain for up to `limit`, then cancels and joins
  // it.
  void StopOutputThread(absl::Duration limit) {
    if (!output_thread_.joinable()) return;
    int64_t deadline = absl::ToUnixMillis(absl::Now() + limit);
    if (deadline == 0) deadline = 1;
    output_deadline_ms_ = deadline;
    output_thread_.join();
  }

  // Wait() is done; the container stays for Extract() until the sandbox is
  // destroyed.
  void Finished() {
    std::lock_guard<std::mutex> lock(mu_);
    waited_ = true;
  }

  void RemoveContainer() {
    std::string id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (container_id_.empty() || removed_) return;
      removed_ = true;
      id = container_id_;
    }
    if (absl::Status s = api_->RemoveContainer(id); !s.ok()) {
      // CleanUpLeftovers at the next worker start removes it.
      spdlog::warn("docker: removing container {} failed: {}", id,
                   ErrorMessage(s));
      Log("could not remove the container: " + ErrorMessage(s));
    }
  }

  absl::Status EnsureImage() {
    const std::string canonical = image_.Canonical();
    absl::StatusOr<nlohmann::json> found = api_->InspectImage(canonical);
    if (found.ok()) return absl::OkStatus();
    if (!HasErrorCode(found.status(), ErrorCode::kResourceNotFound)) {
      Log("cannot look up image " + canonical + ": " +
          ErrorMessage(found.status()));
      return MakeError(ErrorCode::kInternalError,
                       "cannot look up image: " + ErrorMessage(found.status()),
                       {{"image", canonical}});
    }
    Log("pulling image " + canonical);
    std::string auth;
    if (auto it = options_.registry_credentials.find(image_.Registry());
        it != options_.registry_credentials.end()) {
      auth = RegistryAuthHeader(image_.Registry(), it->second);
      Log("using the configured credentials for " + image_.Registry());
    }
    std::map<std::string, absl::Time> last_progress;
    auto on_message = [&](const nlohmann::json& msg) {
      if (msg.contains("error")) return;  // reported below
      std::string status =
          msg.contains("status") ? Truncated(msg["status"]) : "";
      if (status.empty()) return;
      std::string id = msg.contains("id") ? Truncated(msg["id"]) : "";
      bool in_progress = msg.contains("progressDetail") &&
                         msg["progressDetail"].is_object() &&
                         msg["progressDetail"].contains("current");
      if (in_progress) {
        absl::Time now = absl::Now();
        auto [it, fresh] = last_progress.try_emplace(id, now);
        if (!fresh && now - it->second < kPullProgressInterval) return;
        it->second = now;
      }
      std::string line = id.empty() ? status : id + ": " + status;
      if (in_progress && msg.contains("progress")) {
        line += " " + Truncated(msg["progress"]);
      }
      Log(line);
    };
    absl::Status pulled = api_->PullImage(
        image_.Repository(), image_.PullTag(), auth, options_.pull_timeout,
        on_message, [this] { return aborted_.load(); });
    if (pulled.ok()) {
      Log("pulled image " + canonical);
      return absl::OkStatus();
    }
    std::string reason = DockerErrorReason(pulled);
    if (reason == "cancelled" || aborted_) return AbortedError();
    if (reason != "http" && reason != "timeout") {
      // dockerd went away or broke the connection: a worker problem, not
      // the image's.
      Log("lost dockerd while pulling " + canonical + ": " +
          ErrorMessage(pulled));
      return MakeError(
          ErrorCode::kInternalError,
          "lost dockerd while pulling the image: " + ErrorMessage(pulled),
          {{"image", canonical}, {"reason", reason}});
    }
    std::string why = reason == "timeout"
                          ? "the pull did not finish within " +
                                absl::FormatDuration(options_.pull_timeout)
                          : ErrorMessage(pulled);
    if (absl::StrContains(why, "invalid reference format")) {
      Log("image " + canonical + " is not a valid reference: " + why);
      return Malformed("payload.image", spec_.payload.value("image", ""),
                       "invalid image reference: " + why);
    }
    Log("image " + canonical + " cannot be pulled: " + why);
    return MakeError(ErrorCode::kResourceNotFound,
                     "image " + canonical + " cannot be pulled: " + why,
                     {{"field", "payload.image"},
                      {"value", spec_.payload.value("image", "")},
                      {"reason", reason}});
  }

  absl::Status CreateError(const absl::Status& s) {
    std::string message = ErrorMessage(s);
    Log("cannot create the container: " + message);
    if (IsHttpError(s) && HasErrorCode(s, ErrorCode::kInputError)) {
      // dockerd refused the configuration the payload asked for.
      return Malformed("payload", "",
                       "dockerd refused the container: " + message);
    }
    if (IsHttpError(s) && HasErrorCode(s, ErrorCode::kResourceNotFound)) {
      return MakeError(
          ErrorCode::kResourceNotFound,
          "image vanished before the container was created: " + message,
          {{"field", "payload.image"}, {"value", image_.Canonical()}});
    }
    return MakeError(ErrorCode::kInternalError,
                     "cannot create the container: " + message);
  }

  const DockerEngineOptions options_;
  const std::shared_ptr<DockerApi> api_;
  const SandboxSpec spec_;
  const ImageReference image_;
  const nlohmann::json body_;
  const std::vector<std::string> notes_;
  const int64_t memory_mb_;

  std::atomic<bool> aborted_{false};
  std::mutex mu_;
  std::string container_id_;   // guarded by mu_
  bool started_ = false;       // guarded by mu_
  bool start_failed_ = false;  // guarded by mu_
  bool waited_ = false;        // guarded by mu_
  bool removed_ = false;       // guarded by mu_

  std::thread output_thread_;
  // Written by the output thread before it ends; read after join.
  absl::Status output_status_;
  // Unix millis after which the output stream is cancelled; 0: never.
  std::atomic<int64_t> output_deadline_ms_{0};
  absl::Time start_time_ = absl::Now();
};

}  // namespace

std::string RegistryAuthHeader(const std::string& registry,
                               const RegistryCredential& credential) {
  nlohmann::json auth = {{"username", credential.username},
                         {"password", credential.password},
                         {"serveraddress", registry}};
  std::string encoded;
  absl::WebSafeBase64Escape(auth.dump(), &encoded);
  // dockerd decodes with padded URL-safe base64.
  while (encoded.size() % 4 != 0) encoded += '=';
  return encoded;
}

DockerEngine::DockerEngine(DockerEngineOptions options,
                           std::shared_ptr<DockerApi> api)
    : options_(std::move(options)), api_(std::move(api)) {}

std::vector<std::string> DockerEngine::PayloadKeys() const {
  return {"image",     "command",      "env",       "maxRunTime",
          "artifacts", "onExitStatus", "resources", "privileged"};
}

absl::Status DockerEngine::ValidatePayload(
    const nlohmann::json& payload) const {
  if (!payload.is_object()) {
    return Malformed("payload", Truncated(payload),
                     "the payload must be a JSON object");
  }
  if (!payload.contains("image")) {
    return Malformed("payload.image", "", "image is required");
  }
  const nlohmann::json& image = payload["image"];
  if (!image.is_string()) {
    return Malformed("payload.image", Truncated(image),
                     "image must be a string such as \"name:tag\"");
  }
  DROVER_RETURN_IF_ERROR(
      ParseImageReference(image.get<std::string>(), "payload.image").status());

  if (payload.contains("command")) {
    const nlohmann::json& command = payload["command"];
    if (!command.is_array() || command.empty()) {
      return Malformed("payload.command", Truncated(command),
                       "command must be a non-empty array of strings (argv)");
    }
    for (size_t i = 0; i < command.size(); ++i) {
      std::string field = "payload.command[" + std::to_string(i) + "]";
      if (!command[i].is_string()) {
        return Malformed(field, Truncated(command[i]),
                         "command arguments must be strings");
      }
      if (command[i].get<std::string>().find('\0') != std::string::npos) {
        return Malformed(field, Truncated(command[i]),
                         "command arguments must not contain NUL");
      }
      if (i == 0 && command[i].get<std::string>().empty()) {
        return Malformed(field, "", "the program name cannot be empty");
      }
    }
  }

  if (payload.contains("resources")) {
    const nlohmann::json& res = payload["resources"];
    if (!res.is_object()) {
      return Malformed("payload.resources", Truncated(res),
                       "resources must be an object {memoryMB, cpus}");
    }
    for (const auto& [key, value] : res.items()) {
      std::string field = "payload.resources." + key;
      if (key == "memoryMB") {
        if (!value.is_number() ||
            value.get<double>() != std::floor(value.get<double>()) ||
            value.get<double>() < kMinMemoryMb ||
            value.get<double>() > kMaxMemoryMb) {
          return Malformed(field, Truncated(value),
                           "memoryMB must be a whole number from " +
                               std::to_string(kMinMemoryMb) + " to " +
                               std::to_string(kMaxMemoryMb));
        }
      } else if (key == "cpus") {
        if (!value.is_number() || value.get<double>() < 0.01 ||
            value.get<double>() > kMaxCpus) {
          return Malformed(field, Truncated(value),
                           "cpus must be a number from 0.01 to 1024");
        }
      } else {
        return Malformed(field, Truncated(value),
                         "unknown resource; use memoryMB or cpus");
      }
    }
  }

  // The keys below are applied by plugins (env, maxruntime, artifacts,
  // exit-status); their shape is checked here so a bad payload fails before
  // anything runs, with the field named.
  if (payload.contains("env")) {
    const nlohmann::json& env = payload["env"];
    if (!env.is_object()) {
      return Malformed("payload.env", Truncated(env),
                       "env must be an object of strings");
    }
    for (const auto& [name, value] : env.items()) {
      std::string field = "payload.env." + name;
      if (name.empty() || name.find('=') != std::string::npos ||
          name.find('\0') != std::string::npos) {
        return Malformed(field, name,
                         "variable names are non-empty, without '=' or NUL");
      }
      if (!value.is_string() ||
          value.get<std::string>().find('\0') != std::string::npos) {
        return Malformed(field, Truncated(value),
                         "environment values are strings without NUL");
      }
    }
  }
  if (payload.contains("maxRunTime")) {
    const nlohmann::json& max = payload["maxRunTime"];
    if (!max.is_number_integer() || max.get<int64_t>() < 1) {
      return Malformed("payload.maxRunTime", Truncated(max),
                       "maxRunTime is a whole number of seconds >= 1");
    }
  }
  if (payload.contains("artifacts")) {
    const nlohmann::json& artifacts = payload["artifacts"];
    if (!artifacts.is_array()) {
      return Malformed("payload.artifacts", Truncated(artifacts),
                       "artifacts is an array of objects");
    }
    for (size_t i = 0; i < artifacts.size(); ++i) {
      if (!artifacts[i].is_object()) {
        return Malformed("payload.artifacts[" + std::to_string(i) + "]",
                         Truncated(artifacts[i]),
                         "artifacts entries are objects");
      }
    }
  }
  if (payload.contains("onExitStatus")) {
    const nlohmann::json& on_exit = payload["onExitStatus"];
    if (!on_exit.is_object()) {
      return Malformed("payload.onExitStatus", Truncated(on_exit),
                       "onExitStatus is an object");
    }
    if (on_exit.contains("retry")) {
      const nlohmann::json& retry = on_exit["retry"];
      if (!retry.is_array()) {
        return Malformed("payload.onExitStatus.retry", Truncated(retry),
                         "retry is an array of exit codes");
      }
      for (size_t i = 0; i < retry.size(); ++i) {
        if (!retry[i].is_number_integer() || retry[i].get<int64_t>() < 1 ||
            retry[i].get<int64_t>() > 255) {
          return Malformed(
              "payload.onExitStatus.retry[" + std::to_string(i) + "]",
              Truncated(retry[i]), "exit codes to retry are integers 1..255");
        }
      }
    }
  }

  if (payload.contains("privileged") && !payload["privileged"].is_boolean()) {
    return Malformed("payload.privileged", Truncated(payload["privileged"]),
                     "privileged must be true or false");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Sandbox>> DockerEngine::NewSandbox(
    SandboxSpec spec) {
  if (spec.log == nullptr) {
    return InputError("spec.log", "", "a sandbox needs a log sink");
  }
  DROVER_RETURN_IF_ERROR(ValidatePayload(spec.payload));
  const nlohmann::json& payload = spec.payload;
  DROVER_ASSIGN_OR_RETURN(
      ImageReference image,
      ParseImageReference(payload["image"].get<std::string>(),
                          "payload.image"));

  bool privileged = payload.value("privileged", false);
  if (privileged) {
    if (!options_.allow_privileged || options_.privileged_scope.empty()) {
      return Malformed("payload.privileged", "true",
                       "this worker does not run privileged containers");
    }
    bool held = std::any_of(
        spec.scopes.begin(), spec.scopes.end(), [&](const std::string& s) {
          return ScopeSatisfies(s, options_.privileged_scope);
        });
    if (!held) {
      return Malformed("payload.privileged", "true",
                       "privileged containers need the task scope " +
                           options_.privileged_scope,
                       {{"required_scope", options_.privileged_scope}});
    }
  }

  Limits limits = ComputeLimits(options_, payload);
  // The engine's own identity wins: CleanUpLeftovers finds containers by it.
  std::string worker_id =
      options_.worker_id.empty() ? spec.worker_id : options_.worker_id;
  std::string worker_group =
      options_.worker_group.empty() ? spec.worker_group : options_.worker_group;

  nlohmann::json env = nlohmann::json::array();
  for (const auto& [key, value] : spec.env) env.push_back(key + "=" + value);
  nlohmann::json host_config = {
      {"NetworkMode", options_.network_mode},
      {"Privileged", privileged},
      // The output is read through attach; a log driver would also copy
      // every line into a file (measured: 8 minutes and 1.8 GB for 50 MB of
      // short lines, against 3 s without).
      {"LogConfig", {{"Type", "none"}, {"Config", nlohmann::json::object()}}},
      {"AutoRemove", false},
  };
  if (limits.memory_mb > 0) {
    host_config["Memory"] = limits.memory_mb << 20;
    // Equal to Memory: no swap beyond the limit, so the limit is real.
    host_config["MemorySwap"] = limits.memory_mb << 20;
  }
  if (limits.cpus > 0) {
    host_config["NanoCpus"] = std::llround(limits.cpus * 1e9);
  }
  nlohmann::json body = {
      {"Image", image.Canonical()},
      {"Env", env},
      {"WorkingDir", options_.working_dir},
      {"Labels",
       {{kLabelTaskId, spec.task_id},
        {kLabelRunId, std::to_string(spec.run_id)},
        {kLabelWorkerId, worker_id},
        {kLabelWorkerGroup, worker_group}}},
      {"AttachStdin", false},
      {"AttachStdout", true},
      {"AttachStderr", true},
      {"Tty", false},
      {"OpenStdin", false},
      {"HostConfig", host_config},
  };
  if (payload.contains("command")) body["Cmd"] = payload["command"];

  return std::unique_ptr<Sandbox>(std::make_unique<DockerSandbox>(
      options_, api_, std::move(spec), std::move(image), std::move(body),
      std::move(limits.notes), limits.memory_mb));
}

absl::Status DockerEngine::CleanUpLeftovers() {
  if (options_.worker_id.empty()) {
    return InputError("worker_id", "",
                      "the docker engine needs the worker id to find its "
                      "leftover containers");
  }
  std::vector<std::string> labels = {std::string(kLabelWorkerId) + "=" +
                                     options_.worker_id};
  if (!options_.worker_group.empty()) {
    labels.push_back(std::string(kLabelWorkerGroup) + "=" +
                     options_.worker_group);
  }
  DROVER_ASSIGN_OR_RETURN(std::vector<nlohmann::json> containers,
                          api_->ListContainers(labels));
  absl::Status first_error;
  int removed = 0;
  for (const nlohmann::json& c : containers) {
    if (!c.contains("Id") || !c["Id"].is_string()) continue;
    std::string id = c["Id"].get<std::string>();
    absl::Status s = api_->RemoveContainer(id);
    if (s.ok()) {
      ++removed;
    } else if (first_error.ok()) {
      first_error = s;
    }
  }
  if (removed > 0) {
    spdlog::info("docker: removed {} leftover container(s) of worker {}",
                 removed, options_.worker_id);
  }
  return first_error;
}

absl::Status DockerEngine::CheckHealth() {
  absl::Status s = api_->Ping(absl::Seconds(5));
  if (s.ok()) return s;
  ErrorInfo info = GetErrorInfo(s);
  info.details["check"] = "dockerd /_ping";
  return MakeError(ErrorCode::kInternalError,
                   "dockerd is not healthy: " + ErrorMessage(s),
                   std::move(info.details));
}

void AddDockerEngineFlags(CLI::App& app, DockerEngineFlags* flags) {
  auto opt = [&](const std::string& name, auto* value,
                 const std::string& help) {
    app.add_option("--" + name, *value, help)
        ->envname(EnvName(name))
        ->capture_default_str();
  };
  opt("docker-socket", &flags->socket, "dockerd's unix socket");
  opt("docker-working-dir", &flags->working_dir,
      "working directory of task containers");
  opt("docker-network-mode", &flags->network_mode,
      "container network mode (bridge, none, host or a network name)");
  opt("docker-default-memory-mb", &flags->default_memory_mb,
      "memory limit when the payload sets none (0: unlimited)");
  opt("docker-max-memory-mb", &flags->max_memory_mb,
      "cap on resources.memoryMB (0: no cap)");
  opt("docker-max-cpus", &flags->max_cpus, "cap on resources.cpus (0: no cap)");
  app.add_flag("--docker-allow-privileged", flags->allow_privileged,
               "allow privileged containers for tasks with the privileged "
               "scope")
      ->envname(EnvName("docker-allow-privileged"));
  opt("docker-privileged-scope", &flags->privileged_scope,
      "task scope that allows privileged: true");
  opt("docker-pull-timeout-seconds", &flags->pull_timeout_seconds,
      "longest time an image pull may take");
  opt("docker-registry-auth", &flags->registry_auth,
      "registry credentials as registry=username:password (repeatable; "
      "prefer the config file or environment over the command line)");
}

absl::StatusOr<DockerEngineOptions> DockerEngineOptionsFromFlags(
    const DockerEngineFlags& flags, std::string worker_group,
    std::string worker_id) {
  DockerEngineOptions o;
  o.worker_group = std::move(worker_group);
  o.worker_id = std::move(worker_id);
  if (flags.working_dir.empty() || flags.working_dir.front() != '/') {
    return InputError("docker-working-dir", flags.working_dir,
                      "must be an absolute path");
  }
  o.working_dir = flags.working_dir;
  if (flags.network_mode.empty()) {
    return InputError("docker-network-mode", "", "must not be empty");
  }
  o.network_mode = flags.network_mode;
  if (flags.default_memory_mb < 0 ||
      (flags.default_memory_mb > 0 && flags.default_memory_mb < kMinMemoryMb)) {
    return InputError("docker-default-memory-mb",
                      std::to_string(flags.default_memory_mb),
                      "must be 0 or at least 6");
  }
  if (flags.max_memory_mb < 0 ||
      (flags.max_memory_mb > 0 && flags.max_memory_mb < kMinMemoryMb)) {
    return InputError("docker-max-memory-mb",
                      std::to_string(flags.max_memory_mb),
                      "must be 0 or at least 6");
  }
  if (flags.max_cpus < 0) {
    return InputError("docker-max-cpus", std::to_string(flags.max_cpus),
                      "must not be negative");
  }
  o.default_memory_mb = flags.default_memory_mb;
  o.max_memory_mb = flags.max_memory_mb;
  o.max_cpus = flags.max_cpus;
  if (flags.allow_privileged && flags.privileged_scope.empty()) {
    return InputError("docker-privileged-scope", "",
                      "required with --docker-allow-privileged");
  }
  o.allow_privileged = flags.allow_privileged;
  o.privileged_scope = flags.privileged_scope;
  if (flags.pull_timeout_seconds <= 0) {
    return InputError("docker-pull-timeout-seconds",
                      std::to_string(flags.pull_timeout_seconds),
                      "must be positive");
  }
  o.pull_timeout = absl::Seconds(flags.pull_timeout_seconds);
  for (const std::string& entry : flags.registry_auth) {
    size_t eq = entry.find('=');
    size_t colon =
        eq == std::string::npos ? std::string::npos : entry.find(':', eq + 1);
    // Only the registry part is echoed: the rest holds a password.
    std::string shown = entry.substr(0, std::min(eq, entry.size()));
    if (eq == 0 || eq == std::string::npos || colon == std::string::npos ||
        colon == eq + 1) {
      return InputError("docker-registry-auth", shown,
                        "must be registry=username:password");
    }
    o.registry_credentials[entry.substr(0, eq)] = RegistryCredential{
        entry.substr(eq + 1, colon - eq - 1), entry.substr(colon + 1)};
  }
  return o;
}

}  // namespace drover::engines::docker
