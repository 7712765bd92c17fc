// `drover task ...`: create, status, get, cancel, rerun, schedule.
#ifndef DROVER_CLI_COMMANDS_TASK_H_
#define DROVER_CLI_COMMANDS_TASK_H_

#include "CLI/CLI.hpp"
#include "cli/context.h"

namespace drover::cli::commands {

// Adds the `task` command group to `app`; commands run against `context`,
// which must outlive `app`'s parse.
void AddTaskCommands(CLI::App& app, Context& context);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_TASK_H_
