#include "engines/native/process.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "engines/native/containment.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

namespace drover::engines::native {
namespace {

constexpr const char kDefaultPath[] = "/usr/local/bin:/usr/bin:/bin";

// What the child reports through the error pipe when it fails before exec.
enum ChildStep : int {
  kStepSetsid = 1,
  kStepCgroup,
  kStepStdio,
  kStepRlimit,
  kStepGroups,
  kStepSetgid,
  kStepSetuid,
  kStepChdir,
  kStepExec,
};

struct ChildFailure {
  int step;
  int error;
};

std::string_view StepName(int step) {
  switch (step) {
    case kStepSetsid:
      return "setsid";
    case kStepCgroup:
      return "joining the cgroup";
    case kStepStdio:
      return "redirecting stdio";
    case kStepRlimit:
      return "setrlimit";
    case kStepGroups:
      return "setgroups";
    case kStepSetgid:
      return "setgid";
    case kStepSetuid:
      return "setuid";
    case kStepChdir:
      return "chdir";
    case kStepExec:
      return "execve";
  }
  return "unknown step";
}

// Owns one descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~UniqueFd() { Reset(); }
  int get() const { return fd_; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// Moves `fd` above the standard descriptors (a worker started with a
// closed stdin would otherwise hand out 0..2 for pipes, and the child's
// dup2 onto 0..2 would clobber them).
absl::StatusOr<UniqueFd> AboveStdio(int fd) {
  if (fd > 2) return UniqueFd(fd);
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  ::close(fd);
  if (moved < 0) {
    return MakeError(ErrorCode::kInternalError, "fcntl(F_DUPFD) failed",
                     {{"errno", std::strerror(saved)}});
  }
  return UniqueFd(moved);
}

// Everything the child needs, prepared before fork so that the child only
// makes async-signal-safe calls (no allocation, no locks).
struct ChildPlan {
  const char* program = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* working_dir = nullptr;
  int devnull_fd = -1;
  int output_fd = -1;
  int cgroup_fd = -1;
  int error_fd = -1;
  bool switch_credentials = false;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t group_count = 0;
  struct Limit {
    int resource;
    rlim_t value;
  };
  Limit limits[3] = {};
  int limit_count = 0;
};

[[noreturn]] void ChildFail(int error_fd, int step) {
  ChildFailure failure{step, errno};
  ssize_t ignored = ::write(error_fd, &failure, sizeof(failure));
  (void)ignored;
  _exit(127);
}

[[noreturn]] void RunChild(const ChildPlan& plan) {
  if (setsid() < 0) ChildFail(plan.error_fd, kStepSetsid);
  // Joining the cgroup before anything else runs means no descendant can
  // ever exist outside it.
  if (plan.cgroup_fd >= 0 && ::write(plan.cgroup_fd, "0", 1) != 1) {
    ChildFail(plan.error_fd, kStepCgroup);
  }
  int out = plan.output_fd >= 0 ? plan.output_fd : plan.devnull_fd;
  if (dup2(plan.devnull_fd, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
      dup2(out, STDERR_FILENO) < 0) {
    ChildFail(plan.error_fd, kStepStdio);
  }
  // Ignored signals and the blocked mask survive exec; the worker's choices
  // (e.g. SIGPIPE ignored, SIGTERM blocked for sigwait) must not leak into
  // tasks.
  struct sigaction default_action;
  std::memset(&default_action, 0, sizeof(default_action));
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    sigaction(sig, &default_action, nullptr);  // EINVAL for reserved ones.
  }
  sigset_t empty;
  sigemptyset(&empty);
  sigprocmask(SIG_SETMASK, &empty, nullptr);

  for (int i = 0; i < plan.limit_count; ++i) {
    struct rlimit limit;
    limit.rlim_cur = plan.limits[i].value;
    limit.rlim_max = plan.limits[i].value;
    if (setrlimit(plan.limits[i].resource, &limit) < 0) {
      ChildFail(plan.error_fd, kStepRlimit);
    }
  }
  if (plan.switch_credentials) {
    if (setgroups(plan.group_count, plan.groups) < 0) {
      ChildFail(plan.error_fd, kStepGroups);
    }
    if (setgid(plan.gid) < 0) ChildFail(plan.error_fd, kStepSetgid);
    if (setuid(plan.uid) < 0) ChildFail(plan.error_fd, kStepSetuid);
  }
  // After the switch, so the task user's own permissions decide.
  if (chdir(plan.working_dir) < 0) ChildFail(plan.error_fd, kStepChdir);

  // Descriptors other threads opened without O_CLOEXEC must not reach the
  // task (a leaked pipe end would keep another sandbox's log open).
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
    struct rlimit files;
    rlim_t top = 65536;
    if (getrlimit(RLIMIT_NOFILE, &files) == 0 &&
        files.rlim_cur != RLIM_INFINITY && files.rlim_cur < top) {
      top = files.rlim_cur;
    }
    for (rlim_t fd = 3; fd < top; ++fd) {
      fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    }
  }
  execve(plan.program, plan.argv, plan.envp);
  ChildFail(plan.error_fd, kStepExec);
}

absl::Status ChildError(const ChildFailure& failure,
                        const LaunchOptions& options,
                        const std::string& program) {
  std::string reason = std::strerror(failure.error);
  ErrorDetails details = {{"step", std::string(StepName(failure.step))},
                          {"errno", reason}};
  switch (failure.step) {
    case kStepChdir:
      return MakeError(ErrorCode::kInputError,
                       absl::StrCat("cannot enter the working directory ",
                                    options.working_dir.string(), ": ", reason),
                       {{"field", "working_dir"},
                        {"value", options.working_dir.string()},
                        {"errno", reason}});
    case kStepExec:
      if (failure.error == ENOENT) {
        return MakeError(
            ErrorCode::kResourceNotFound,
            absl::StrCat("cannot run ", program, ": ", reason,
                         " (a missing program or script interpreter)"),
            {{"field", "argv[0]"}, {"value", options.argv[0]}});
      }
      if (failure.error == EACCES || failure.error == ENOEXEC ||
          failure.error == EISDIR || failure.error == ENOTDIR) {
        return MakeError(ErrorCode::kInputError,
                         absl::StrCat("cannot run ", program, ": ", reason),
                         {{"field", "argv[0]"}, {"value", options.argv[0]}});
      }
      break;
    default:
      break;
  }
  return MakeError(
      ErrorCode::kInternalError,
      absl::StrCat("starting ", options.argv[0], " failed at ",
                   std::string(StepName(failure.step)), ": ", reason),
      std::move(details));
}

bool ContainsNul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

class PosixProcess final : public Process {
 public:
  PosixProcess(pid_t pid, UniqueFd pidfd)
      : pid_(pid), pidfd_(std::move(pidfd)) {}

  ~PosixProcess() override {
    // Background members of the group die with it: nothing a task started
    // outlives it.
    ::kill(-pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }

  pid_t pid() const override { return pid_; }

  void SignalGroup(int signal) override {
    // The leader is reaped only by the destructor, so -pid_ still names
    // this group (or nothing) here, never a recycled one.
    ::kill(-pid_, signal);
  }

  std::optional<ExitStatus> WaitUntil(absl::Time deadline,
                                      int wake_fd) override {
    if (auto status = Check()) return status;
    while (true) {
      absl::Time now = absl::Now();
      if (now >= deadline) return Check();
      int timeout_ms = -1;
      if (deadline != absl::InfiniteFuture()) {
        timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(
            absl::Ceil(deadline - now, absl::Milliseconds(1))));
      }
      // Without a pidfd, poll for the exit every 10 ms.
      if (pidfd_.get() < 0 && (timeout_ms < 0 || timeout_ms > 10)) {
        timeout_ms = 10;
      }
      struct pollfd fds[2];
      int count = 0;
      if (pidfd_.get() >= 0) fds[count++] = {pidfd_.get(), POLLIN, 0};
      int wake_index = -1;
      if (wake_fd >= 0) {
        wake_index = count;
        fds[count++] = {wake_fd, POLLIN, 0};
      }
      int ready = ::poll(fds, count, timeout_ms);
      if (ready < 0 && errno != EINTR) return Check();
      if (auto status = Check()) return status;
      if (wake_index >= 0 && ready > 0 && (fds[wake_index].revents != 0)) {
        return std::nullopt;
      }
    }
  }

 private:
  // Observes the exit without reaping (WNOWAIT).
  std::optional<ExitStatus> Check() {
    std::lock_guard<std::mutex> lock(mu_);
    if (exited_) return exited_;
    siginfo_t info;
    std::memset(&info, 0, sizeof(info));
    if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) < 0 ||
        info.si_pid != pid_) {
      return std::nullopt;
    }
    ExitStatus status;
    if (info.si_code == CLD_EXITED) {
      status.exit_code = info.si_status;
    } else {
      status.signal = info.si_status;
      status.exit_code = 128 + info.si_status;
    }
    exited_ = status;
    return status;
  }

  const pid_t pid_;
  const UniqueFd pidfd_;
  std::mutex mu_;
  std::optional<ExitStatus> exited_;  // guarded by mu_
};

}  // namespace

absl::StatusOr<std::string> ResolveProgram(
    const std::string& argv0, const std::map<std::string, std::string>& env,
    const std::filesystem::path& working_dir) {
  auto absolute = [&](const std::filesystem::path& p) {
    return p.is_absolute() ? p : working_dir / p;
  };
  if (argv0.find('/') != std::string::npos) {
    return absolute(argv0).string();
  }
  std::string path = kDefaultPath;
  if (auto it = env.find("PATH"); it != env.end()) path = it->second;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::filesystem::path candidate =
        absolute(dir.empty() ? std::filesystem::path(".")
                             : std::filesystem::path(std::string(dir))) /
        argv0;
    struct stat st;
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate.string();
    }
  }
  return MakeError(ErrorCode::kResourceNotFound,
                   absl::StrCat("program ", argv0, " not found in PATH=", path),
                   {{"field", "argv[0]"}, {"value", argv0}});
}

absl::StatusOr<std::unique_ptr<Process>> PosixProcessLauncher::Launch(
    const LaunchOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return InputError("argv", "", "the command is empty");
  }
  for (size_t i = 0; i < options.argv.size(); ++i) {
    if (ContainsNul(options.argv[i])) {
      return InputError(absl::StrCat("argv[", i, "]"), options.argv[i],
                        "arguments cannot contain NUL bytes");
    }
  }
  if (options.working_dir.empty()) {
    return InputError("working_dir", "", "a working directory is required");
  }
  DROVER_ASSIGN_OR_RETURN(
      std::string program,
      ResolveProgram(options.argv[0], options.env, options.working_dir));

  // argv and envp storage; the child only reads these arrays.
  std::vector<char*> argv;
  for (const auto& arg : options.argv)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  ContainmentJoin join;
  if (options.containment != nullptr) join = options.containment->Join();
  for (const auto& [name, value] : options.env) {
    if (name.empty() || name.find('=') != std::string::npos ||
        ContainsNul(name) || ContainsNul(value)) {
      return InputError("env", name,
                        "variable names must be non-empty without '=' and "
                        "names and values without NUL bytes");
    }
    bool replaced_by_join = false;
    for (const auto& [join_name, join_value] : join.env) {
      if (join_name == name) replaced_by_join = true;
    }
    if (!replaced_by_join)
      env_storage.push_back(absl::StrCat(name, "=", value));
  }
  for (const auto& [name, value] : join.env) {
    env_storage.push_back(absl::StrCat(name, "=", value));
  }
  std::vector<char*> envp;
  for (auto& entry : env_storage) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string working_dir = options.working_dir.string();

  int devnull_raw = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull_raw < 0) {
    return MakeError(ErrorCode::kInternalError, "cannot open /dev/null",
                     {{"errno", std::strerror(errno)}});
  }
  DROVER_ASSIGN_OR_RETURN(UniqueFd devnull, AboveStdio(devnull_raw));
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
    return MakeError(ErrorCode::kInternalError, "pipe2 failed",
                     {{"errno", std::strerror(errno)}});
  }
  UniqueFd error_read(pipe_fds[0]);
  DROVER_ASSIGN_OR_RETURN(UniqueFd error_write, AboveStdio(pipe_fds[1]));
  UniqueFd output;
  if (options.output_fd >= 0 && options.output_fd <= 2) {
    DROVER_ASSIGN_OR_RETURN(
        output, AboveStdio(fcntl(options.output_fd, F_DUPFD_CLOEXEC, 3)));
  }

  ChildPlan plan;
  plan.program = program.c_str();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.working_dir = working_dir.c_str();
  plan.devnull_fd = devnull.get();
  plan.output_fd = output.get() >= 0 ? output.get() : options.output_fd;
  plan.cgroup_fd = join.cgroup_procs_fd;
  plan.error_fd = error_write.get();
  if (options.credentials) {
    plan.switch_credentials = true;
    plan.uid = options.credentials->uid;
    plan.gid = options.credentials->gid;
    plan.groups = options.credentials->groups.data();
    plan.group_count = options.credentials->groups.size();
  }
  auto add_limit = [&plan](int resource, const std::optional<uint64_t>& v) {
    if (v)
      plan.limits[plan.limit_count++] = {resource, static_cast<rlim_t>(*v)};
  };
  add_limit(RLIMIT_AS, options.limits.memory_bytes);
  add_limit(RLIMIT_CPU, options.limits.cpu_seconds);
  add_limit(RLIMIT_NOFILE, options.limits.open_files);

  pid_t pid = fork();
  if (pid < 0) {
    return MakeError(ErrorCode::kInternalError, "fork failed",
                     {{"errno", std::strerror(errno)}});
  }
  if (pid == 0) RunChild(plan);

  error_write.Reset();
  ChildFailure failure{};
  ssize_t got;
  while ((got = ::read(error_read.get(), &failure, sizeof(failure))) < 0 &&
         errno == EINTR) {
  }
  if (got == static_cast<ssize_t>(sizeof(failure))) {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return ChildError(failure, options, program);
  }
  // A pidfd lets WaitUntil sleep in poll() instead of polling; kernels
  // before 5.3 lack it.
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  return std::unique_ptr<Process>(new PosixProcess(pid, std::move(pidfd)));
}

}  // namespace drover::engines::native
