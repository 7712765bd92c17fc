#include "cli/commands/slugid.h"

#include <memory>
#include <ostream>

#include "client/task_json.h"

namespace drover::cli::commands {

void AddSlugIdCommand(CLI::App& app, Context& context) {
  auto count = std::make_shared<int>(1);
  CLI::App* cmd = app.add_subcommand(
      "slugid", "Print a fresh task id (22-character URL-safe slug)");
  cmd->add_option("-n,--count", *count, "How many ids to print")
      ->check(CLI::Range(1, 10000));
  cmd->callback([&context, count] {
    for (int i = 0; i < *count; ++i) {
      context.out() << client::NewTaskId() << "\n";
    }
    context.set_exit_code(kExitOk);
  });
}

}  // namespace drover::cli::commands
