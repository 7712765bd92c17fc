// drover-queue: the Drover queue server. Parses configuration and wires
// the objects; the work lives in queue/server/serve.h.
//
//   drover-queue [flags]          serve (prints where it listens)
//   drover-queue migrate [flags]  apply database migrations and exit
#include <csignal>
#include <iostream>

#include "CLI/CLI.hpp"
#include "common/clock.h"
#include "common/logging.h"
#include "common/status.h"
#include "queue/queue_service/authorizer.h"
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
  using namespace drover;
  using namespace drover::queue;

  CLI::App app{"drover-queue: the Drover task queue server"};
  server::ServerConfig config;
  server::ServerFlags flags(app, &config);
  CLI::App* migrate =
      app.add_subcommand("migrate", "Apply database migrations and exit");
  // Server flags may follow the subcommand name.
  migrate->fallthrough();
  CLI11_PARSE(app, argc, argv);
  if (absl::Status s = flags.Resolve(); !s.ok()) return Fail(s);
  if (absl::Status s = SetUpLogging(config.log); !s.ok()) return Fail(s);
  std::signal(SIGPIPE, SIG_IGN);

  if (migrate->parsed()) {
    absl::Status s = server::MigrateDatabase(config, std::cout);
    return s.ok() ? 0 : Fail(s);
  }

  server::ShutdownSignal signal;
  if (absl::Status s = signal.Install(); !s.ok()) return Fail(s);
  SystemClock clock;
  // Replaced by queue/auth's authorizer once it lands.
  queue_service::AllowAllAuthorizer authorizer;
  absl::Status s =
      server::Serve(config, &clock, &authorizer, &signal, std::cout);
  return s.ok() ? 0 : Fail(s);
}
