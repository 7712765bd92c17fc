// ProcessLauncher: runs a program to completion (initdb, pg_ctl, pg_config)
// and hands back its exit status and combined output, optionally as another
// system user. EmbeddedPostgres takes one so tests can check the exact
// commands without starting PostgreSQL.
#ifndef DROVER_QUEUE_STORE_PROCESS_LAUNCHER_H_
#define DROVER_QUEUE_STORE_PROCESS_LAUNCHER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace drover::queue::store {

struct ProcessSpec {
  // argv[0] is a path or a program looked up in PATH.
  std::vector<std::string> argv;
  // Run as this system user (needs root); empty: as the current user.
  std::string run_as_user;
};

struct ProcessOutcome {
  // Exit status; 128 + signal number when ended by a signal.
  int exit_code = 0;
  // stdout and stderr interleaved.
  std::string output;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Runs the program and waits for it. A program that runs and exits
  // non-zero is not an error (see ProcessOutcome). Thread-safe. Errors:
  // InputError (field "argv") for an empty argv; ResourceNotFound when the
  // program cannot be executed; InputError (field "run_as_user") for an
  // unknown user; InternalError when the process cannot be started.
  virtual absl::StatusOr<ProcessOutcome> Run(const ProcessSpec& spec) = 0;
};

// fork/exec with the output captured in an anonymous temporary file (not a
// pipe: pg_ctl's server keeps inherited descriptors open long after pg_ctl
// has exited). The child runs in "/" so a user without access to the
// caller's working directory can still start.
class SubprocessLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<ProcessOutcome> Run(const ProcessSpec& spec) override;
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_PROCESS_LAUNCHER_H_
