// `drover queue ...`: counts, list.
#ifndef DROVER_CLI_COMMANDS_QUEUE_H_
#define DROVER_CLI_COMMANDS_QUEUE_H_

#include "CLI/CLI.hpp"
#include "cli/context.h"

namespace drover::cli::commands {

// Adds the `queue` command group to `app`.
void AddQueueCommands(CLI::App& app, Context& context);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_QUEUE_H_
