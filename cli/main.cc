// drover: the command-line client. Wiring only; see cli/app.h.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/app.h"
#include "client/environment.h"
#include "common/clock.h"
#include "common/rpc/process_defaults.h"

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  std::vector<std::string> args(argv + 1, argv + argc);
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  drover::SystemClock clock;
  return drover::cli::RunCli(
      args, drover::cli::Streams{std::cin, std::cout, std::cerr},
      drover::client::ProcessEnvironment(), clock, host);
}
