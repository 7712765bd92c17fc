// `drover task logs TASK [--run N] [-f]`: prints a run's log (the latest
// run by default). Without -f it prints what the log holds now; with -f it
// keeps following the live log until the run resolves, then prints the
// run's final state on stderr and exits 0.
#ifndef DROVER_CLI_COMMANDS_LOGS_H_
#define DROVER_CLI_COMMANDS_LOGS_H_

#include "CLI/CLI.hpp"
#include "cli/context.h"

namespace drover::cli::commands {

// Adds `logs` to the `task` command group `task_group`.
void AddTaskLogsCommand(CLI::App& task_group, Context& context);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_LOGS_H_
