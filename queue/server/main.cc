// drover-queue: the Drover queue server. Parses configuration and wires
// the objects; the work lives in queue/server/serve.h.
//
//   drover-queue [flags]          serve (prints where it listens)
//   drover-queue migrate [flags]  apply database migrations and exit
//   drover-queue rotate-keys      re-encrypt encrypted columns under the
//                                 newest configured key
#include <csignal>
#include <iostream>

#include "CLI/CLI.hpp"
#include "common/clock.h"
#include "common/logging.h"
#include "common/rpc/process_defaults.h"
#include "common/status.h"
#include "queue/server/serve.h"
#include "queue/server/server_config.h"
#include "queue/server/shutdown_signal.h"

namespace {

int Fail(const absl::Status& status) {
  drover::ErrorInfo info = drover::GetErrorInfo(status);
  std::cerr << "drover-queue: " << drover::ErrorCodeName(info.code) << ": "
            << info.message;
  for (const auto& [key, value] : info.details) {
    std::cerr << " [" << key << "=" << value << "]";
  }
  std::cerr << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  using namespace drover;
  using namespace drover::queue;

  CLI::App app{"drover-queue: the Drover task queue server"};
  server::ServerConfig config;
  server::ServerFlags flags(app, &config);
  CLI::App* migrate =
      app.add_subcommand("migrate", "Apply database migrations and exit");
  // Server flags may follow the subcommand name.
  migrate->fallthrough();
  CLI::App* rotate_keys = app.add_subcommand(
      "rotate-keys",
      "Re-encrypt every encrypted value under the newest configured key "
      "(resumable; the server may keep running)");
  rotate_keys->fallthrough();
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = flags.Resolve(); !s.ok()) return Fail(s);
  if (absl::Status s = SetUpLogging(config.log); !s.ok()) return Fail(s);
  std::signal(SIGPIPE, SIG_IGN);

  if (migrate->parsed()) {
    absl::Status s = server::MigrateDatabase(config, std::cout);
    return s.ok() ? 0 : Fail(s);
  }

  if (rotate_keys->parsed()) {
    SystemClock clock;
    absl::Status s = server::RotateKeys(config, &clock, std::cout);
    return s.ok() ? 0 : Fail(s);
  }

  server::ShutdownSignal signal;
  if (absl::Status s = signal.Install(); !s.ok()) return Fail(s);
  SystemClock clock;
  // Null: every service uses the server's own ScopeAuthorizer.
  absl::Status s = server::Serve(config, &clock, /*authorizer=*/nullptr,
                                 &signal, std::cout);
  return s.ok() ? 0 : Fail(s);
}
