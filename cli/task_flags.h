// `drover task create` flags and how they combine with a task JSON file.
//
// The file (or `{}` without one) is read first; then each flag given
// overrides its field (scalars) or adds to it (--dependency, --route,
// --scope, --tag, --env); finally the defaults below fill what is still
// missing. The result goes through client::TaskDefinitionFromJson, so flags
// and files are checked by the same code and give the same errors.
#ifndef DROVER_CLI_TASK_FLAGS_H_
#define DROVER_CLI_TASK_FLAGS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace drover::cli {

struct TaskFlags {
  std::optional<std::string> queue;          // taskQueueId
  std::optional<std::string> scheduler_id;   // schedulerId
  std::optional<std::string> task_group_id;  // taskGroupId
  std::vector<std::string> dependencies;     // appended
  std::optional<std::string> requires_rule;  // requires
  std::vector<std::string> routes;           // appended
  std::optional<std::string> priority;
  std::optional<int> retries;
  std::optional<std::string> created;
  std::optional<std::string> deadline;
  std::optional<std::string> expires;
  std::vector<std::string> scopes;          // appended
  std::optional<std::string> payload;       // JSON object text; replaces
  std::vector<std::string> commands;        // payload.command
  std::vector<std::string> env;             // NAME=VALUE into payload.env
  std::optional<std::string> max_run_time;  // payload.maxRunTime, seconds
  std::optional<std::string> name;          // metadata.*
  std::optional<std::string> description;
  std::optional<std::string> owner;
  std::optional<std::string> source;
  std::vector<std::string> tags;     // key=value, merged
  std::optional<std::string> extra;  // JSON object text; replaces
};

// Values used for fields still missing after the file and the flags.
struct TaskDefaults {
  std::string deadline = "+1 day";
  // metadata.description defaults to metadata.name.
  std::string owner;   // e.g. "alice@build-host"
  std::string source;  // e.g. "http://build-host/drover-cli"
};

// Defaults for this user and machine: owner $USER@<host name> (LOGNAME, then
// "drover" when unset), source http://<host name>/drover-cli.
TaskDefaults DefaultTaskDefaults(std::string_view user,
                                 std::string_view host_name);

// Applies flags, then defaults, to `doc` (a JSON object). Errors:
// InputError naming the flag (e.g. "--env", "--payload") for a malformed
// flag value, and "task" when `doc` is not an object.
absl::Status ApplyTaskFlags(const TaskFlags& flags,
                            const TaskDefaults& defaults, nlohmann::json* doc);

// Splits one --command value into argv like a POSIX shell would split a
// simple command: whitespace separates words, '...' is literal, "..."
// honours \" \\ \$ \`, and a backslash outside quotes escapes the next
// character. No expansion of any kind. Errors: InputError on `field` for
// an unterminated quote, a trailing backslash or an empty command.
absl::StatusOr<std::vector<std::string>> SplitCommandWords(
    std::string_view text, std::string_view field = "--command");

}  // namespace drover::cli

#endif  // DROVER_CLI_TASK_FLAGS_H_
