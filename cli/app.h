// The drover command line: builds the CLI11 application with its global
// options and command groups, parses arguments and runs the chosen command.
#ifndef DROVER_CLI_APP_H_
#define DROVER_CLI_APP_H_

#include <string>
#include <vector>

#include "cli/context.h"
#include "client/environment.h"
#include "common/clock.h"

namespace drover::cli {

// Runs `drover` with `args` (without the program name) and returns the exit
// code (see cli/context.h). Reads DROVER_* settings through `env` only.
int RunCli(const std::vector<std::string>& args, Streams streams,
           client::EnvLookup env, const Clock& clock,
           const std::string& host_name);

}  // namespace drover::cli

#endif  // DROVER_CLI_APP_H_
