#include "cli/app.h"

#include <ostream>
#include <utility>

#include "CLI/CLI.hpp"
#include "cli/commands/artifacts.h"
#include "cli/commands/auth.h"
#include "cli/commands/graph.h"
#include "cli/commands/logs.h"
#include "cli/commands/queue.h"
#include "cli/commands/secrets.h"
#include "cli/commands/workers.h"
#include "cli/commands/slugid.h"
#include "cli/commands/task.h"

namespace drover::cli {

int RunCli(const std::vector<std::string>& args, Streams streams,
           client::EnvLookup env, const Clock& clock,
           const std::string& host_name) {
  Context context(streams, std::move(env), clock, host_name);
  GlobalOptions& options = context.options();

  CLI::App app("drover: the command line for the Drover task queue", "drover");
  app.set_version_flag("--version", "drover 0.1.0");
  app.require_subcommand(1);
  // Global options may follow the subcommand: `drover task status ID --json`.
  // Set before adding subcommands, which inherit it.
  app.fallthrough();
  // DROVER_URL and DROVER_CA_FILE are resolved by Context through `env`,
  // not by CLI11's getenv, so tests can run with a fixed environment.
  app.add_option("--url", options.url,
                 "Server: host:port, http://host:port or https://host:port "
                 "(default: $DROVER_URL, else 127.0.0.1:50051)");
  app.add_option("--ca-file", options.ca_file,
                 "PEM CA certificates for an https:// server "
                 "(default: $DROVER_CA_FILE, else the system's)");
  app.add_option("--credentials", options.credentials_file,
                 "Credentials JSON file (default: $DROVER_CLIENT_ID/"
                 "$DROVER_ACCESS_TOKEN or $DROVER_CERTIFICATE, then "
                 "$DROVER_CREDENTIALS_FILE, then "
                 "~/.config/drover/credentials.json)");
  app.add_flag("--json", options.json,
               "Print responses as JSON (protobuf JSON mapping)");
  app.add_option("--timeout", options.timeout,
                 "Per-request timeout: 30s, 2m, 500ms or seconds")
      ->capture_default_str();

  commands::AddTaskCommands(app, context);
  commands::AddGraphCommands(app, context);
  commands::AddTaskLogsCommand(*app.get_subcommand("task"), context);
  commands::AddArtifactCommands(app, context);
  commands::AddQueueCommands(app, context);
  commands::AddSlugIdCommand(app, context);
  commands::AddAuthCommands(app, context);
  commands::AddSecretsCommands(app, context);
  commands::AddWorkerManagerCommands(app, context);

  // CLI11 consumes arguments from the back.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, streams.out, streams.err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, streams.out, streams.err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, streams.out, streams.err);
  } catch (const CLI::ParseError& e) {
    // Same shape as every other error, so scripts and people read one format.
    streams.err << "error: Usage: " << e.what() << "\n"
                << "  help: drover [COMMAND...] --help\n";
    return kExitUsage;
  }
  return context.exit_code();
}

}  // namespace drover::cli
