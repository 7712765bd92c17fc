// `drover slugid`: prints fresh task ids.
#ifndef DROVER_CLI_COMMANDS_SLUGID_H_
#define DROVER_CLI_COMMANDS_SLUGID_H_

#include "CLI/CLI.hpp"
#include "cli/context.h"

namespace drover::cli::commands {

// Adds the `slugid` command to `app`.
void AddSlugIdCommand(CLI::App& app, Context& context);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_SLUGID_H_
