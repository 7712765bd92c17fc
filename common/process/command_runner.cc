#include "common/process/command_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace drover::process {
namespace {

// Error text of a command kept in error details; enough to diagnose, small
// enough for a log line.
constexpr size_t kMaxErrInDetails = 2000;

// Owns a file descriptor; closing twice is a bug that hits unrelated files
// in a multithreaded process, so every fd lives in one of these.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Both ends close-on-exec, so that a command started concurrently from
// another thread does not inherit them and keep our reads from seeing EOF.
absl::Status MakePipe(Fd& read_end, Fd& write_end) {
  int fds[2];
#ifdef __linux__
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
#else
  if (::pipe(fds) != 0) {
    return InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);
  ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
#endif
  read_end = Fd(fds[0]);
  write_end = Fd(fds[1]);
  return absl::OkStatus();
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         ::access(path.c_str(), X_OK) == 0;
}

// The lookup happens in the parent: between fork and exec a multithreaded
// process may only call async-signal-safe functions, which rules out
// building strings.
absl::StatusOr<std::string> ResolveProgram(const std::string& name,
                                           const std::string& path) {
  if (name.find('/') != std::string::npos) {
    if (IsExecutableFile(name)) return name;
  } else {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      std::string candidate = absl::StrCat(dir, "/", name);
      if (IsExecutableFile(candidate)) return candidate;
    }
  }
  return MakeError(
      ErrorCode::kResourceNotFound,
      absl::StrCat("program ", name, " not found or not executable"),
      {{"field", "argv[0]"}, {"value", name}, {"path", path}});
}

CommandResult DecodeWaitStatus(int wait_status) {
  CommandResult result;
  if (WIFEXITED(wait_status)) {
    result.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    result.exit_code = -1;
    result.signal = WTERMSIG(wait_status);
  }
  return result;
}

int WaitForPid(pid_t pid) {
  int wait_status = 0;
  while (::waitpid(pid, &wait_status, 0) < 0 && errno == EINTR) {
  }
  return wait_status;
}

}  // namespace

std::string FormatCommand(const std::vector<std::string>& argv) {
  std::vector<std::string> parts;
  parts.reserve(argv.size());
  for (const std::string& arg : argv) {
    bool needs_quotes =
        arg.empty() || arg.find_first_of(" \t\n'\"\\") != std::string::npos;
    if (!needs_quotes) {
      parts.push_back(arg);
      continue;
    }
    std::string quoted = "'";
    for (char c : arg) {
      if (c == '\'') {
        quoted += "'\\''";
      } else {
        quoted += c;
      }
    }
    quoted += "'";
    parts.push_back(std::move(quoted));
  }
  return absl::StrJoin(parts, " ");
}

absl::Status CommandFailedError(const std::vector<std::string>& argv,
                                const CommandResult& result) {
  std::string how = result.signal.has_value()
                        ? absl::StrCat("signal ", *result.signal)
                        : absl::StrCat("exit status ", result.exit_code);
  std::string err = result.err.substr(0, kMaxErrInDetails);
  return MakeError(
      ErrorCode::kInternalError,
      absl::StrCat("command failed (", how, "): ", FormatCommand(argv)),
      {{"command", FormatCommand(argv)},
       {"exit_code", absl::StrCat(result.exit_code)},
       {"stderr", err}});
}

absl::StatusOr<CommandResult> RunChecked(CommandRunner& runner,
                                         const std::vector<std::string>& argv) {
  DROVER_ASSIGN_OR_RETURN(CommandResult result, runner.Run(argv));
  if (result.ok()) return result;
  return CommandFailedError(argv, result);
}

SubprocessCommandRunner::SubprocessCommandRunner(Options options)
    : options_(std::move(options)) {}

absl::StatusOr<CommandResult> SubprocessCommandRunner::Run(
    const std::vector<std::string>& argv) {
  if (argv.empty()) return InputError("argv", "", "empty command");
  for (const std::string& arg : argv) {
    if (arg.find('\0') != std::string::npos) {
      return InputError("argv", FormatCommand(argv),
                        "command arguments may not contain NUL bytes");
    }
  }
  DROVER_ASSIGN_OR_RETURN(std::string program,
                          ResolveProgram(argv[0], options_.path));

  std::vector<char*> child_argv;
  for (const std::string& arg : argv) {
    child_argv.push_back(const_cast<char*>(arg.c_str()));
  }
  child_argv.push_back(nullptr);
  std::vector<std::string> env_strings = {absl::StrCat("PATH=", options_.path)};
  for (const auto& [key, value] : options_.env) {
    if (key != "PATH") env_strings.push_back(absl::StrCat(key, "=", value));
  }
  std::vector<char*> child_env;
  for (std::string& entry : env_strings) child_env.push_back(entry.data());
  child_env.push_back(nullptr);

  Fd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (dev_null.get() < 0) {
    return InternalError(
        absl::StrCat("open /dev/null: ", std::strerror(errno)));
  }
  Fd out_read, out_write, err_read, err_write, exec_read, exec_write;
  DROVER_RETURN_IF_ERROR(MakePipe(out_read, out_write));
  DROVER_RETURN_IF_ERROR(MakePipe(err_read, err_write));
  // Carries errno from a failed execve; closes silently (close-on-exec)
  // when execve succeeds.
  DROVER_RETURN_IF_ERROR(MakePipe(exec_read, exec_write));

  pid_t pid = ::fork();
  if (pid < 0) {
    return InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  if (pid == 0) {
    // Child: async-signal-safe calls only. Its own process group lets a
    // timeout kill whatever the command started.
    ::setpgid(0, 0);
    // Ignored signals and the mask survive exec; a worker that ignores
    // SIGPIPE must not pass that on.
    struct sigaction default_action;
    std::memset(&default_action, 0, sizeof(default_action));
    default_action.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &default_action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(dev_null.get(), STDIN_FILENO);
    ::dup2(out_write.get(), STDOUT_FILENO);
    ::dup2(err_write.get(), STDERR_FILENO);
    ::execve(program.c_str(), child_argv.data(), child_env.data());
    int error = errno;
    ssize_t ignored = ::write(exec_write.get(), &error, sizeof(error));
    (void)ignored;
    ::_exit(127);
  }

  out_write.Reset();
  err_write.Reset();
  exec_write.Reset();
  dev_null.Reset();

  int exec_errno = 0;
  ssize_t got;
  while ((got = ::read(exec_read.get(), &exec_errno, sizeof(exec_errno))) < 0 &&
         errno == EINTR) {
  }
  if (got == static_cast<ssize_t>(sizeof(exec_errno))) {
    WaitForPid(pid);
    return MakeError(ErrorCode::kResourceNotFound,
                     absl::StrCat("cannot execute ", program, ": ",
                                  std::strerror(exec_errno)),
                     {{"field", "argv[0]"}, {"value", program}});
  }

  CommandResult captured;
  absl::Time deadline = absl::Now() + options_.timeout;
  Fd* sources[2] = {&out_read, &err_read};
  std::string* sinks[2] = {&captured.out, &captured.err};
  char buffer[8192];
  while (out_read.get() >= 0 || err_read.get() >= 0) {
    pollfd fds[2];
    int count = 0;
    int which[2];
    for (int i = 0; i < 2; ++i) {
      if (sources[i]->get() < 0) continue;
      fds[count] = {sources[i]->get(), POLLIN, 0};
      which[count++] = i;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      WaitForPid(pid);
      return MakeError(ErrorCode::kInternalError,
                       absl::StrCat("command timed out after ",
                                    absl::FormatDuration(options_.timeout),
                                    ": ", FormatCommand(argv)),
                       {{"command", FormatCommand(argv)}});
    }
    int timeout_ms = static_cast<int>(
        std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 60'000));
    int ready = ::poll(fds, count, timeout_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return InternalError(absl::StrCat("poll: ", std::strerror(errno)));
    }
    for (int k = 0; k < count; ++k) {
      if (fds[k].revents == 0) continue;
      int i = which[k];
      ssize_t n = ::read(sources[i]->get(), buffer, sizeof(buffer));
      if (n > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        sources[i]->Reset();
      }
    }
  }

  CommandResult result = DecodeWaitStatus(WaitForPid(pid));
  result.out = std::move(captured.out);
  result.err = std::move(captured.err);
  return result;
}

void RecordingCommandRunner::Respond(std::vector<std::string> prefix,
                                     CommandResult result, int times) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{std::move(prefix), std::move(result), times});
}

void RecordingCommandRunner::RespondSequence(
    const std::vector<std::string>& prefix,
    const std::vector<CommandResult>& results) {
  // The latest rule wins, so the first result goes in last.
  for (auto it = results.rbegin(); it != results.rend(); ++it) {
    Respond(prefix, *it, /*times=*/1);
  }
}

void RecordingCommandRunner::Fail(std::vector<std::string> prefix,
                                  int exit_code, std::string err, int times) {
  CommandResult result;
  result.exit_code = exit_code;
  result.err = std::move(err);
  Respond(std::move(prefix), std::move(result), times);
}

void RecordingCommandRunner::FailToStart(std::vector<std::string> prefix,
                                         absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  rules_.push_back(Rule{std::move(prefix), std::move(status), 0});
}

absl::StatusOr<CommandResult> RecordingCommandRunner::Run(
    const std::vector<std::string>& argv) {
  std::lock_guard<std::mutex> lock(mu_);
  commands_.push_back(argv);
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    const std::vector<std::string>& prefix = it->prefix;
    if (prefix.size() > argv.size() ||
        !std::equal(prefix.begin(), prefix.end(), argv.begin())) {
      continue;
    }
    absl::StatusOr<CommandResult> result = it->result;
    if (it->remaining > 0 && --it->remaining == 0) {
      rules_.erase(std::next(it).base());
    }
    return result;
  }
  return CommandResult{};
}

std::vector<std::vector<std::string>> RecordingCommandRunner::commands() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commands_;
}

void RecordingCommandRunner::ClearCommands() {
  std::lock_guard<std::mutex> lock(mu_);
  commands_.clear();
}

}  // namespace drover::process
