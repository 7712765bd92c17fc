#include "engines/native/native_engine.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/slugid.h"
#include "common/status.h"
#include "engines/native/extract.h"
#include "engines/native/output_pump.h"
#include "engines/native/payload.h"
#include "spdlog/spdlog.h"

namespace drover::engines::native {

namespace fs = std::filesystem;

struct NativeEngine::Shared {
  NativeEngineOptions options;
  std::unique_ptr<ProcessLauncher> owned_launcher;
  ProcessLauncher* launcher = nullptr;
  std::unique_ptr<ContainmentProvider> containment;
  std::unique_ptr<TaskUserProvider> owned_users;

  fs::path StateDir() const { return options.work_dir / "native" / "state"; }
  fs::path OwnTasksDir() const { return options.work_dir / "native" / "tasks"; }
};

namespace {

// Keeps engines with different work directories on one host apart (their
// containments and leftovers), stable across restarts of one worker.
std::string NamespaceFor(const fs::path& work_dir) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : work_dir.string()) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(hash));
  return absl::StrCat("native-", hex);
}

absl::Status ChownTree(const fs::path& root, uid_t uid, gid_t gid) {
  auto chown_one = [&](const fs::path& p) -> absl::Status {
    if (::lchown(p.c_str(), uid, gid) != 0) {
      return MakeError(
          ErrorCode::kInternalError,
          absl::StrCat("cannot hand ", p.string(),
                       " to the task user: ", std::strerror(errno)),
          {{"path", p.string()}});
    }
    return absl::OkStatus();
  };
  DROVER_RETURN_IF_ERROR(chown_one(root));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    DROVER_RETURN_IF_ERROR(chown_one(it->path()));
  }
  if (ec) {
    return MakeError(
        ErrorCode::kInternalError,
        absl::StrCat("cannot walk ", root.string(), ": ", ec.message()),
        {{"path", root.string()}});
  }
  return absl::OkStatus();
}

class NativeSandbox final : public Sandbox {
 public:
  NativeSandbox(std::shared_ptr<NativeEngine::Shared> shared, SandboxSpec spec,
                NativePayload payload, int wake_fd)
      : shared_(std::move(shared)),
        spec_(std::move(spec)),
        commands_(std::move(payload.commands)),
        id_(NewSlugId()),
        wake_fd_(wake_fd) {
    owns_dir_ = spec_.task_dir.empty();
    working_dir_ = owns_dir_ ? shared_->OwnTasksDir() / id_ : spec_.task_dir;
    state_file_ = shared_->StateDir() / id_;
  }

  ~NativeSandbox() override {
    Abort();
    if (runner_.joinable()) runner_.join();
    containment_.reset();
    pump_.reset();
    if (user_) {
      if (auto s = shared_->options.user_provider->Release(*user_); !s.ok()) {
        spdlog::error("native engine: releasing task user {} failed: {}",
                      user_->name, s.ToString());
      }
    }
    std::error_code ec;
    if (owns_dir_) fs::remove_all(working_dir_, ec);
    fs::remove(state_file_, ec);
    ::close(wake_fd_);
  }

  absl::Status Start() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kNew) {
        return ConflictError("the sandbox was already started");
      }
      if (aborted_) {
        // Aborted before it ran: as if killed at once.
        result_.aborted = true;
        result_.signal = SIGKILL;
        result_.exit_code = 128 + SIGKILL;
        state_ = State::kDone;
        return absl::OkStatus();
      }
    }
    DROVER_RETURN_IF_ERROR(Prepare());
    started_at_ = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    state_ = State::kRunning;
    runner_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  absl::StatusOr<Result> Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ == State::kNew) {
      return ConflictError("Wait() before a successful Start()");
    }
    cv_.wait(lock, [this] { return state_ == State::kDone; });
    if (!run_status_.ok()) return run_status_;
    return result_;
  }

  void Abort() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_ || state_ == State::kDone) return;
    aborted_ = true;
    kill_at_ = absl::Now() + shared_->options.kill_grace;
    if (current_ != nullptr) current_->SignalGroup(SIGTERM);
    uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }

  absl::Status Extract(const std::string& sandbox_path,
                       const fs::path& host_path) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kDone) {
        return ConflictError("Extract() before the task ended",
                             {{"path", sandbox_path}});
      }
    }
    std::error_code ec;
    if (!fs::is_directory(working_dir_, ec)) {
      return NotFoundError("path", sandbox_path);
    }
    return ExtractFromDirectory(working_dir_, sandbox_path, host_path);
  }

 private:
  enum class State { kNew, kRunning, kDone };

  absl::Status Prepare() {
    const NativeEngineOptions& options = shared_->options;
    std::error_code ec;
    fs::create_directories(working_dir_, ec);
    if (ec) {
      return MakeError(ErrorCode::kInternalError,
                       absl::StrCat("cannot create the task directory ",
                                    working_dir_.string(), ": ", ec.message()),
                       {{"path", working_dir_.string()}});
    }
    // A record of the directory, so a worker that crashes mid-task finds
    // and removes it at its next start.
    fs::create_directories(shared_->StateDir(), ec);
    {
      std::ofstream record(state_file_, std::ios::trunc);
      record << working_dir_.string() << "\n";
      if (!record) {
        return MakeError(ErrorCode::kInternalError,
                         absl::StrCat("cannot write ", state_file_.string()),
                         {{"path", state_file_.string()}});
      }
    }
    if (options.user_provider != nullptr) {
      DROVER_ASSIGN_OR_RETURN(TaskUser user, options.user_provider->Acquire(
                                                 spec_.task_id, spec_.run_id));
      user_ = std::move(user);
      DROVER_RETURN_IF_ERROR(ChownTree(working_dir_, user_->uid, user_->gid));
    }
    DROVER_ASSIGN_OR_RETURN(containment_, shared_->containment->Create(id_));
    LogSink* log = spec_.log;
    DROVER_ASSIGN_OR_RETURN(
        pump_, OutputPump::Start(
                   [log](std::string_view bytes) { log->Write(bytes); }));

    env_ = spec_.env;
    for (const auto& name : options.inherit_env) {
      if (env_.count(name) != 0) continue;
      if (const char* value = std::getenv(name.c_str())) env_[name] = value;
    }
    if (user_) {
      env_.try_emplace("HOME", user_->home.string());
      env_.try_emplace("USER", user_->name);
      env_.try_emplace("LOGNAME", user_->name);
    }
    return absl::OkStatus();
  }

  void Note(std::string_view line) {
    spec_.log->Write("[drover] " + std::string(line) + "\n");
  }

  // Runs the commands in order on the runner thread.
  void Run() {
    const NativeEngineOptions& options = shared_->options;
    ExitStatus last;
    absl::Status failure;
    for (size_t i = 0; i < commands_.size(); ++i) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (aborted_) break;
      }
      LaunchOptions launch;
      launch.argv = commands_[i];
      launch.env = env_;
      launch.working_dir = working_dir_;
      if (user_) {
        launch.credentials =
            ProcessCredentials{user_->uid, user_->gid, user_->groups};
      }
      launch.limits = options.limits;
      launch.output_fd = pump_->write_fd();
      launch.containment = containment_.get();
      auto launched = shared_->launcher->Launch(launch);
      if (!launched.ok()) {
        // A missing or unrunnable program is the task's fault: it fails
        // like a shell would (127), with the reason in its log.
        if (HasErrorCode(launched.status(), ErrorCode::kResourceNotFound) ||
            HasErrorCode(launched.status(), ErrorCode::kInputError)) {
          Note(absl::StrCat("command ", i + 1,
                            " could not start: ", launched.status().message()));
          last = ExitStatus{127, std::nullopt};
        } else {
          failure = launched.status();
        }
        break;
      }
      Process* process = launched->get();
      {
        std::lock_guard<std::mutex> lock(mu_);
        processes_.push_back(std::move(*launched));
        current_ = process;
        // An Abort() that came while launching found nothing to signal.
        if (aborted_) process->SignalGroup(SIGTERM);
      }
      last = WaitFor(*process);
      {
        std::lock_guard<std::mutex> lock(mu_);
        current_ = nullptr;
      }
      if (last.exit_code != 0 || last.signal) break;
    }
    Finish(last, failure);
  }

  // Waits for `process`, escalating an abort to SIGKILL after the grace.
  ExitStatus WaitFor(Process& process) {
    bool killed = false;
    while (true) {
      absl::Time deadline = absl::InfiniteFuture();
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (aborted_ && !killed) deadline = kill_at_;
      }
      if (auto status = process.WaitUntil(deadline, wake_fd_)) return *status;
      uint64_t drained;
      while (::read(wake_fd_, &drained, sizeof(drained)) > 0) {
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (aborted_ && !killed && absl::Now() >= kill_at_) {
        process.SignalGroup(SIGKILL);
        killed = true;
      }
    }
  }

  // Ends the run: nothing the task started may outlive it.
  void Finish(const ExitStatus& last, absl::Status failure) {
    const NativeEngineOptions& options = shared_->options;
    pump_->CloseWriteEnd();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& process : processes_) process->SignalGroup(SIGKILL);
    }
    if (auto s = containment_->KillAll(absl::Seconds(10)); !s.ok()) {
      Note(absl::StrCat("some task processes could not be killed: ",
                        s.message()));
      spdlog::error("native engine: task {}/{}: {}", spec_.task_id,
                    spec_.run_id, s.ToString());
    }
    if (!pump_->Finish(options.output_drain_timeout)) {
      Note(
          "the task's output was still open after it ended; the rest is "
          "dropped");
    }
    std::vector<std::unique_ptr<Process>> reaped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reaped.swap(processes_);
    }
    reaped.clear();
    std::lock_guard<std::mutex> lock(mu_);
    result_.exit_code = last.exit_code;
    result_.signal = last.signal;
    result_.aborted = aborted_;
    result_.duration =
        absl::FromChrono(std::chrono::steady_clock::now() - started_at_);
    run_status_ = std::move(failure);
    state_ = State::kDone;
    cv_.notify_all();
  }

  const std::shared_ptr<NativeEngine::Shared> shared_;
  const SandboxSpec spec_;
  const std::vector<std::vector<std::string>> commands_;
  const std::string id_;
  const int wake_fd_;
  bool owns_dir_ = false;
  fs::path working_dir_;
  fs::path state_file_;

  // Set up by Start(), then read by the runner thread.
  std::optional<TaskUser> user_;
  std::unique_ptr<Containment> containment_;
  std::unique_ptr<OutputPump> pump_;
  std::map<std::string, std::string> env_;
  std::chrono::steady_clock::time_point started_at_;
  std::thread runner_;

  std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kNew;                        // guarded by mu_
  bool aborted_ = false;                             // guarded by mu_
  absl::Time kill_at_ = absl::InfiniteFuture();      // guarded by mu_
  Process* current_ = nullptr;                       // guarded by mu_
  std::vector<std::unique_ptr<Process>> processes_;  // guarded by mu_
  Result result_;                                    // guarded by mu_
  absl::Status run_status_;                          // guarded by mu_
};

absl::StatusOr<uint64_t> PositiveInteger(const nlohmann::json& config,
                                         const char* key,
                                         const std::string& field) {
  const auto& value = config.at(key);
  if (!value.is_number_integer() || value.get<int64_t>() < 1) {
    return InputError(field, value.dump(), "expected a whole number >= 1");
  }
  return value.get<uint64_t>();
}

}  // namespace

absl::StatusOr<NativeEngineOptions> ParseNativeEngineConfig(
    const nlohmann::json& config, const fs::path& work_dir,
    std::string_view field) {
  std::string prefix(field);
  NativeEngineOptions options;
  options.work_dir = work_dir;
  if (config.is_null()) return options;
  if (!config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  for (const auto& [key, value] : config.items()) {
    std::string key_field = absl::StrCat(prefix, ".", key);
    if (key == "containment") {
      if (!value.is_string()) {
        return InputError(key_field, value.dump(), "expected a string");
      }
      DROVER_ASSIGN_OR_RETURN(
          options.containment,
          ParseContainmentMode(value.get<std::string>(), key_field));
    } else if (key == "cgroup_parent") {
      if (!value.is_string() ||
          !fs::path(value.get<std::string>()).is_absolute()) {
        return InputError(key_field, value.dump(), "expected an absolute path");
      }
      options.cgroup_parent = value.get<std::string>();
    } else if (key == "inherit_env") {
      if (!value.is_array()) {
        return InputError(key_field, value.dump(),
                          "expected an array of variable names");
      }
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string() || value[i].get<std::string>().empty()) {
          return InputError(absl::StrCat(key_field, "[", i, "]"),
                            value[i].dump(), "expected a variable name");
        }
        options.inherit_env.push_back(value[i].get<std::string>());
      }
    } else if (key == "limits") {
      if (!value.is_object()) {
        return InputError(key_field, value.dump(), "expected an object");
      }
      for (const auto& [limit, ignored] : value.items()) {
        std::string limit_field = absl::StrCat(key_field, ".", limit);
        if (limit == "memory_mb") {
          DROVER_ASSIGN_OR_RETURN(
              uint64_t mb, PositiveInteger(value, "memory_mb", limit_field));
          options.limits.memory_bytes = mb * 1024 * 1024;
        } else if (limit == "cpu_seconds") {
          DROVER_ASSIGN_OR_RETURN(
              options.limits.cpu_seconds,
              PositiveInteger(value, "cpu_seconds", limit_field));
        } else if (limit == "open_files") {
          DROVER_ASSIGN_OR_RETURN(
              options.limits.open_files,
              PositiveInteger(value, "open_files", limit_field));
        } else {
          return InputError(
              limit_field, limit,
              "unknown limit (memory_mb, cpu_seconds, open_files)");
        }
      }
    } else if (key == "kill_grace_seconds") {
      if (!value.is_number() || value.get<double>() < 0) {
        return InputError(key_field, value.dump(),
                          "expected a number of seconds >= 0");
      }
      options.kill_grace = absl::Seconds(value.get<double>());
    } else if (key == "run_as") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        return InputError(key_field, value.dump(), "expected a user name");
      }
      options.run_as = value.get<std::string>();
    } else if (key == "per_task_user") {
      if (!value.is_boolean()) {
        return InputError(key_field, value.dump(), "expected true or false");
      }
      options.per_task_user = value.get<bool>();
    } else {
      return InputError(key_field, key, "unknown native engine option");
    }
  }
  return options;
}

absl::StatusOr<std::unique_ptr<NativeEngine>> NativeEngine::Create(
    NativeEngineOptions options, ProcessLauncher* launcher) {
  if (options.work_dir.empty() || !options.work_dir.is_absolute()) {
    return InputError("work_dir", options.work_dir.string(),
                      "the work directory must be an absolute path");
  }
  if (options.per_task_user && options.user_provider == nullptr) {
    return InputError("per_task_user", "true",
                      "per-task users need a user provider (and root)");
  }
  if (options.per_task_user && !options.run_as.empty()) {
    return InputError("run_as", options.run_as,
                      "run_as and per_task_user exclude each other");
  }
  std::unique_ptr<TaskUserProvider> owned_users;
  if (!options.run_as.empty()) {
    DROVER_ASSIGN_OR_RETURN(owned_users,
                            ExistingUserProvider::Lookup(options.run_as));
    options.user_provider = owned_users.get();
  }
  if (options.user_provider != nullptr && ::geteuid() != 0) {
    return InputError("per_task_user", "true",
                      "running tasks as other users needs a worker running "
                      "as root");
  }
  std::error_code ec;
  fs::create_directories(options.work_dir / "native", ec);
  if (ec) {
    return InputError("work_dir", options.work_dir.string(),
                      absl::StrCat("cannot create ", ec.message()));
  }
  auto shared = std::make_shared<Shared>();
  DROVER_ASSIGN_OR_RETURN(
      shared->containment,
      MakeContainmentProvider(options.containment,
                              NamespaceFor(options.work_dir),
                              options.cgroup_parent));
  shared->options = std::move(options);
  shared->owned_users = std::move(owned_users);
  if (launcher == nullptr) {
    shared->owned_launcher = std::make_unique<PosixProcessLauncher>();
    launcher = shared->owned_launcher.get();
  }
  shared->launcher = launcher;
  return std::unique_ptr<NativeEngine>(new NativeEngine(std::move(shared)));
}

NativeEngine::NativeEngine(std::shared_ptr<Shared> shared)
    : shared_(std::move(shared)) {}

NativeEngine::~NativeEngine() = default;

std::string_view NativeEngine::containment_kind() const {
  return shared_->containment->Kind();
}

std::vector<std::string> NativeEngine::PayloadKeys() const {
  return NativePayloadKeys();
}

absl::Status NativeEngine::ValidatePayload(
    const nlohmann::json& payload) const {
  return ParseNativePayload(payload).status();
}

absl::StatusOr<std::unique_ptr<Sandbox>> NativeEngine::NewSandbox(
    SandboxSpec spec) {
  if (spec.log == nullptr) {
    return InputError("log", "", "a sandbox needs a log sink");
  }
  DROVER_ASSIGN_OR_RETURN(NativePayload payload,
                          ParseNativePayload(spec.payload));
  int wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    return MakeError(ErrorCode::kInternalError, "eventfd failed",
                     {{"errno", std::strerror(errno)}});
  }
  return std::unique_ptr<Sandbox>(
      new NativeSandbox(shared_, std::move(spec), std::move(payload), wake_fd));
}

absl::Status NativeEngine::CleanUpLeftovers() {
  absl::Status status = shared_->containment->CleanUpLeftovers();
  std::error_code ec;
  const fs::path state_dir = shared_->StateDir();
  if (fs::is_directory(state_dir, ec)) {
    for (const auto& entry : fs::directory_iterator(state_dir, ec)) {
      std::ifstream record(entry.path());
      std::string dir;
      std::getline(record, dir);
      fs::path task_dir(dir);
      // Only plausible task directories: never the root or the work dir.
      if (task_dir.is_absolute() && task_dir.has_relative_path() &&
          task_dir != shared_->options.work_dir &&
          std::distance(task_dir.begin(), task_dir.end()) > 2) {
        std::error_code remove_ec;
        fs::remove_all(task_dir, remove_ec);
        if (remove_ec) {
          status.Update(
              MakeError(ErrorCode::kInternalError,
                        absl::StrCat("cannot remove stale task directory ", dir,
                                     ": ", remove_ec.message()),
                        {{"path", dir}}));
          continue;
        }
      }
      fs::remove(entry.path(), ec);
    }
  }
  fs::remove_all(shared_->OwnTasksDir(), ec);
  return status;
}

}  // namespace drover::engines::native
