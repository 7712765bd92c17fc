// CommandRunner: runs a short-lived administrative command (dscl, useradd,
// pkill, ...) to completion and hands back its exit status and output.
//
// Code that manages the host through command-line tools takes a
// CommandRunner so that tests can check the exact command sequences against
// RecordingCommandRunner, while production uses SubprocessCommandRunner
// (fork/exec). It is not meant for task processes: those need process
// groups, streaming logs and abort, which the engines provide.
#ifndef DROVER_COMMON_PROCESS_COMMAND_RUNNER_H_
#define DROVER_COMMON_PROCESS_COMMAND_RUNNER_H_

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace drover::process {

// How a command ended.
struct CommandResult {
  // The exit status; -1 when the command was ended by a signal.
  int exit_code = 0;
  // The signal that ended the command, if any.
  std::optional<int> signal;
  // Everything the command wrote to stdout and stderr.
  std::string out;
  std::string err;

  bool ok() const { return exit_code == 0 && !signal.has_value(); }
};

class CommandRunner {
 public:
  virtual ~CommandRunner() = default;

  // Runs `argv` (argv[0] is a program name looked up in the runner's PATH,
  // or a path) with stdin at /dev/null and waits for it to end. A command
  // that runs and exits non-zero is NOT an error: its CommandResult says so.
  // Thread-safe. Errors: InputError (field "argv") when argv is empty or
  // holds a NUL byte; ResourceNotFound when the program does not exist or
  // cannot be executed; InternalError when the process cannot be started or
  // exceeds the runner's time limit (it is killed then).
  virtual absl::StatusOr<CommandResult> Run(
      const std::vector<std::string>& argv) = 0;
};

// Runs `argv` and turns anything but a clean exit 0 into InternalError whose
// details carry the command, its exit status and its stderr. Thread-safe
// when `runner` is.
absl::StatusOr<CommandResult> RunChecked(CommandRunner& runner,
                                         const std::vector<std::string>& argv);

// The InternalError RunChecked returns for a command that ran but failed:
// details carry the command, its exit status and its stderr.
absl::Status CommandFailedError(const std::vector<std::string>& argv,
                                const CommandResult& result);

// "dscl . -create /Users/x": argv joined with spaces, each argument quoted
// when it is empty or holds whitespace or quotes. For logs and errors.
std::string FormatCommand(const std::vector<std::string>& argv);

// The real thing: fork/exec, output captured through pipes.
class SubprocessCommandRunner final : public CommandRunner {
 public:
  struct Options {
    // Searched for programs named without a '/'; also the PATH the command
    // sees.
    std::string path = "/usr/sbin:/usr/bin:/sbin:/bin";
    // The command's complete environment besides PATH. The worker's own
    // environment (credentials, DROVER_*) is never passed on.
    std::map<std::string, std::string> env = {{"LC_ALL", "C"}};
    // A command still running after this long is killed (with its process
    // group) and reported as InternalError.
    absl::Duration timeout = absl::Minutes(2);
  };

  SubprocessCommandRunner() : SubprocessCommandRunner(Options{}) {}
  explicit SubprocessCommandRunner(Options options);

  absl::StatusOr<CommandResult> Run(
      const std::vector<std::string>& argv) override;

 private:
  Options options_;
};

// A fake for tests: records every command and answers from scripted
// responses instead of running anything. Thread-safe.
class RecordingCommandRunner final : public CommandRunner {
 public:
  // Commands whose argv starts with `prefix` get `result` (the latest
  // matching rule wins). With `times` > 0 the rule applies that many times
  // and is then dropped. Commands matching no rule succeed with no output.
  void Respond(std::vector<std::string> prefix, CommandResult result,
               int times = 0);

  // The next results.size() commands starting with `prefix` get these
  // results in order; after that, earlier rules apply again.
  void RespondSequence(const std::vector<std::string>& prefix,
                       const std::vector<CommandResult>& results);

  // Shorthand: commands starting with `prefix` exit with `exit_code` and
  // print `err` on stderr.
  void Fail(std::vector<std::string> prefix, int exit_code = 1,
            std::string err = "failed", int times = 0);

  // Commands starting with `prefix` make Run() itself fail with `status`
  // (as when the program is missing).
  void FailToStart(std::vector<std::string> prefix, absl::Status status);

  absl::StatusOr<CommandResult> Run(
      const std::vector<std::string>& argv) override;

  // Every command run so far, in order.
  std::vector<std::vector<std::string>> commands() const;
  // Forgets the recorded commands (the rules stay).
  void ClearCommands();

 private:
  struct Rule {
    std::vector<std::string> prefix;
    absl::StatusOr<CommandResult> result;
    int remaining = 0;  // 0: unlimited.
  };

  mutable std::mutex mu_;
  std::vector<Rule> rules_;
  std::vector<std::vector<std::string>> commands_;
};

}  // namespace drover::process

#endif  // DROVER_COMMON_PROCESS_COMMAND_RUNNER_H_
