// `drover graph submit`, `drover group status|list|seal|cancel` and
// `drover events watch`: task graphs, task groups and the event log
// (docs/cli.md, "Task graphs").
#ifndef DROVER_CLI_COMMANDS_GRAPH_H_
#define DROVER_CLI_COMMANDS_GRAPH_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/context.h"
#include "drover/v1/queue.pb.h"
#include "nlohmann/json.hpp"

namespace drover::cli::commands {

void AddGraphCommands(CLI::App& app, Context& context);

// A graph file turned into requests: tasks named by label get fresh ids,
// dependencies naming a label are replaced by its id (others are taken as
// existing task ids). The file's "defaults" (task JSON) fill every task,
// then `complete` (the CLI's own defaults: owner, source, deadline) runs on
// each; `new_id` makes ids. Errors: InputError naming the JSON path
// ("tasks[2].label").
struct ParsedGraph {
  std::string task_group_id;
  std::vector<v1::GraphTask> tasks;
  // label -> task id, in file order.
  std::vector<std::pair<std::string, std::string>> labels;
};
absl::StatusOr<ParsedGraph> ParseGraphFile(
    const nlohmann::json& doc,
    const std::function<absl::Status(nlohmann::json*)>& complete,
    absl::Time now, const std::function<std::string()>& new_id);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_GRAPH_H_
