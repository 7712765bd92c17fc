#include "queue/store/process_launcher.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/status.h"

namespace drover::queue::store {
namespace {

// Exit status the child uses to report that exec itself failed.
constexpr int kExecFailed = 127;

struct Identity {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;
};

absl::StatusOr<Identity> LookUpUser(const std::string& user) {
  std::vector<char> buffer(16384);
  passwd pw;
  passwd* found = nullptr;
  if (getpwnam_r(user.c_str(), &pw, buffer.data(), buffer.size(), &found) !=
          0 ||
      found == nullptr) {
    return InputError("run_as_user", user, "no such system user");
  }
  Identity id{pw.pw_uid, pw.pw_gid, {}};
  int count = 64;
  id.groups.resize(count);
  if (getgrouplist(user.c_str(), pw.pw_gid, id.groups.data(), &count) < 0) {
    id.groups.resize(count);
    getgrouplist(user.c_str(), pw.pw_gid, id.groups.data(), &count);
  }
  id.groups.resize(count);
  return id;
}

}  // namespace

absl::StatusOr<ProcessOutcome> SubprocessLauncher::Run(
    const ProcessSpec& spec) {
  if (spec.argv.empty()) {
    return InputError("argv", "", "a command needs at least a program");
  }
  // Everything the child needs is prepared before fork: after fork in a
  // threaded process only async-signal-safe calls are allowed.
  std::optional<Identity> identity;
  if (!spec.run_as_user.empty()) {
    DROVER_ASSIGN_OR_RETURN(identity, LookUpUser(spec.run_as_user));
  }
  std::vector<char*> argv;
  for (const auto& arg : spec.argv)
    argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);

  std::error_code ec;
  std::string path =
      (std::filesystem::temp_directory_path(ec) / "drover-proc-XXXXXX")
          .string();
  if (ec) path = "/tmp/drover-proc-XXXXXX";
  int out_fd = mkostemp(path.data(), O_CLOEXEC);
  if (out_fd < 0) {
    return InternalError(std::string("cannot create an output file: ") +
                         std::strerror(errno));
  }
  unlink(path.c_str());
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(out_fd);
    if (null_fd >= 0) close(null_fd);
    return InternalError(std::string("fork failed: ") + std::strerror(err));
  }
  if (pid == 0) {
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    if (chdir("/") != 0) _exit(kExecFailed);
    if (identity.has_value()) {
      if (setgroups(identity->groups.size(), identity->groups.data()) != 0 ||
          setgid(identity->gid) != 0 || setuid(identity->uid) != 0) {
        static const char kMsg[] = "drover: cannot switch user\n";
        (void)!write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
        _exit(kExecFailed);
      }
    }
    execvp(argv[0], argv.data());
    const char* reason = std::strerror(errno);
    static const char kMsg[] = "drover: exec failed: ";
    (void)!write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    (void)!write(STDERR_FILENO, reason, std::strlen(reason));
    _exit(kExecFailed);
  }
  if (null_fd >= 0) close(null_fd);

  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0) {
    if (errno != EINTR) {
      int err = errno;
      close(out_fd);
      return InternalError(std::string("waitpid failed: ") +
                           std::strerror(err));
    }
  }
  ProcessOutcome outcome;
  if (WIFEXITED(wstatus)) {
    outcome.exit_code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    outcome.exit_code = 128 + WTERMSIG(wstatus);
  }
  lseek(out_fd, 0, SEEK_SET);
  char buffer[8192];
  for (;;) {
    ssize_t n = read(out_fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    outcome.output.append(buffer, static_cast<size_t>(n));
  }
  close(out_fd);
  if (outcome.exit_code == kExecFailed &&
      outcome.output.find("drover: exec failed") != std::string::npos) {
    return MakeError(ErrorCode::kResourceNotFound,
                     "cannot run " + spec.argv[0] + ": " + outcome.output,
                     {{"program", spec.argv[0]}});
  }
  return outcome;
}

}  // namespace drover::queue::store
