// Task processes: launching one command in its own session and process
// group, with an exact environment, a working directory, optional uid/gid,
// resource limits and stdout+stderr on one descriptor; signalling its whole
// process group; waiting for its exit.
//
// Used by the native engine (and open to other engines that run host
// processes, e.g. macos). The launcher forks and performs only
// async-signal-safe calls in the child, so it is safe in a multi-threaded
// worker. Everything a task starts is further tracked by a Containment
// (containment.h), since a daemon that calls setsid() leaves the group.
#ifndef DROVER_ENGINES_NATIVE_PROCESS_H_
#define DROVER_ENGINES_NATIVE_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace drover::engines::native {

class Containment;

// Kernel resource limits (setrlimit) applied to the process and inherited
// by everything it starts. Unset fields keep the worker's limits.
struct ResourceLimits {
  // RLIMIT_AS: address space, bytes.
  std::optional<uint64_t> memory_bytes;
  // RLIMIT_CPU: CPU time, seconds (SIGXCPU, then SIGKILL).
  std::optional<uint64_t> cpu_seconds;
  // RLIMIT_NOFILE: open file descriptors.
  std::optional<uint64_t> open_files;
};

// Who the process runs as. Switching needs root (CAP_SETUID/CAP_SETGID).
struct ProcessCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  // Supplementary groups; empty clears them.
  std::vector<gid_t> groups;
};

// How a process ended.
struct ExitStatus {
  // The exit code; 128 + signal when a signal ended it (as shells report).
  int exit_code = 0;
  std::optional<int> signal;
};

struct LaunchOptions {
  // argv[0] is a path (relative ones resolve against working_dir) or a
  // program name looked up in env's PATH (or /usr/local/bin:/usr/bin:/bin
  // when env has none).
  std::vector<std::string> argv;
  // The complete environment; nothing is inherited from the worker.
  std::map<std::string, std::string> env;
  // Required; the process starts there.
  std::filesystem::path working_dir;
  std::optional<ProcessCredentials> credentials;
  ResourceLimits limits;
  // Receives both stdout and stderr; -1 sends them to /dev/null. The
  // descriptor may (and should) be close-on-exec; the child gets a copy.
  int output_fd = -1;
  // When set, the process joins it before exec (not owned).
  Containment* containment = nullptr;
};

// One launched process, the leader of its own session and process group.
// Its exit is observed without reaping, so the pid (and process-group id)
// cannot be reused while this object lives; the destructor SIGKILLs
// whatever is left in the process group and then reaps the leader. The
// worker must not reap children itself (waitpid(-1), SIGCHLD ignored).
class Process {
 public:
  virtual ~Process() = default;

  virtual pid_t pid() const = 0;

  // Sends `signal` to the process group. Thread-safe; does nothing once the
  // process has been reaped.
  virtual void SignalGroup(int signal) = 0;

  // Blocks until the process exits (returns its status), `deadline` passes
  // or `wake_fd` (if >= 0) becomes readable (both return nullopt). The
  // caller drains `wake_fd`. One waiting thread at a time.
  virtual std::optional<ExitStatus> WaitUntil(absl::Time deadline,
                                              int wake_fd = -1) = 0;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;

  // Starts a process; returns once it has exec'd. Thread-safe.
  // Errors: InputError (field "argv", "env" or "working_dir") for an empty
  // argv or NUL bytes; ResourceNotFound when the program cannot be found;
  // InputError (field "argv[0]") when it exists but cannot be executed;
  // InputError (field "working_dir") when the child cannot enter it;
  // InternalError when fork, the containment, limits or the credential
  // switch fail (details name the step and errno).
  virtual absl::StatusOr<std::unique_ptr<Process>> Launch(
      const LaunchOptions& options) = 0;
};

// fork/exec on Linux (pidfd for waiting where the kernel has it).
class PosixProcessLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<std::unique_ptr<Process>> Launch(
      const LaunchOptions& options) override;
};

// Where argv0 resolves given the PATH in `env`; relative results are made
// absolute against `working_dir`. Errors: ResourceNotFound.
absl::StatusOr<std::string> ResolveProgram(
    const std::string& argv0, const std::map<std::string, std::string>& env,
    const std::filesystem::path& working_dir);

}  // namespace drover::engines::native

#endif  // DROVER_ENGINES_NATIVE_PROCESS_H_
