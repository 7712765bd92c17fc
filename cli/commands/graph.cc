#include "cli/commands/graph.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/output.h"
#include "cli/task_flags.h"
#include "client/graph_submit.h"
#include "client/task_json.h"
#include "common/status.h"

namespace drover::cli::commands {
namespace {

using nlohmann::json;

// The states a group's tasks can be in, in display order.
constexpr const char* kStates[] = {"unscheduled", "pending", "running",
                                   "completed",   "failed",  "exception"};

absl::StatusOr<json> ReadJsonFile(Context& ctx, const std::string& file) {
  std::string text;
  std::string name = file == "-" ? "stdin" : file;
  std::stringstream buffer;
  if (file == "-") {
    buffer << ctx.in().rdbuf();
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) return InputError("FILE", file, "cannot read the graph file");
    buffer << in.rdbuf();
  }
  try {
    return json::parse(buffer.str());
  } catch (const json::parse_error& e) {
    return InputError("FILE", name,
                      name + " is not valid JSON: " + std::string(e.what()));
  }
}

std::string CountsLine(const v1::TaskGroupInfo& info) {
  std::vector<std::string> parts;
  for (const char* state : kStates) {
    auto it = info.counts().find(state);
    parts.push_back(
        absl::StrCat(state, " ", it == info.counts().end() ? 0 : it->second));
  }
  return absl::StrCat(info.tasks(), " tasks: ", absl::StrJoin(parts, ", "),
                      info.resolved() ? " (resolved)" : "");
}

struct SubmitArgs {
  std::string file;
  bool dry_run = false;
  // Tasks per call; bigger graphs are staged (client/graph_submit.h).
  int batch = client::GraphSubmitOptions{}.batch;
};

int RunSubmit(Context& ctx, const SubmitArgs& args) {
  auto doc = ReadJsonFile(ctx, args.file);
  if (!doc.ok()) return ctx.LocalError(doc.status());
  std::string user;
  if (auto u = ctx.env()("USER")) {
    user = *u;
  } else if (auto l = ctx.env()("LOGNAME")) {
    user = *l;
  }
  TaskDefaults defaults = DefaultTaskDefaults(user, ctx.host_name());
  absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(ctx.Now()));
  auto graph = ParseGraphFile(
      *doc,
      [&](json* task) { return ApplyTaskFlags(TaskFlags{}, defaults, task); },
      now, [] { return client::NewTaskId(); });
  if (!graph.ok()) return ctx.LocalError(graph.status());

  json labels = json::object();
  for (const auto& [label, id] : graph->labels) labels[label] = id;
  auto print_labels = [&] {
    if (ctx.options().json) {
      ctx.out() << json{{"taskGroupId", graph->task_group_id},
                        {"tasks", labels}}
                       .dump(2)
                << "\n";
    } else {
      ctx.out() << "taskGroupId " << graph->task_group_id << "\n";
      for (const auto& [label, id] : graph->labels) {
        ctx.out() << label << " " << id << "\n";
      }
    }
  };
  if (args.dry_run) {
    print_labels();
    return kExitOk;
  }
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  // One call when it fits; otherwise staged batches under a graph id, two
  // at a time, then the commit (client/graph_submit.h).
  client::GraphSubmitOptions submit;
  submit.batch = args.batch;
  client::CallOptions options = (*queue)->defaults();
  options.timeout = std::max(options.timeout, absl::Minutes(10));
  submit.call = options;
  auto response = client::SubmitTaskGraph(**queue, std::move(graph->tasks),
                                          submit);
  if (!response.ok()) return ctx.RequestError(response.status());
  print_labels();
  if (!ctx.options().json) {
    ctx.err() << "created " << response->tasks() << " tasks, "
              << response->pending() << " pending\n";
  }
  return kExitOk;
}

struct StatusArgs {
  std::string task_group_id;
  bool once = false;
  double interval_seconds = 2;
};

int RunGroupStatus(Context& ctx, const StatusArgs& args) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  v1::TaskGroupRequest request;
  request.set_task_group_id(args.task_group_id);
  std::string last;
  for (;;) {
    auto info = (*queue)->GetTaskGroup(request);
    if (!info.ok()) return ctx.RequestError(info.status());
    if (ctx.options().json) {
      ctx.PrintJson(*info);
    } else {
      std::string line = CountsLine(*info);
      // Live progress prints a line only when something changed.
      if (line != last) ctx.out() << line << "\n" << std::flush;
      last = line;
    }
    if (args.once || info->resolved()) return kExitOk;
    std::this_thread::sleep_for(std::chrono::milliseconds(
        static_cast<int64_t>(args.interval_seconds * 1000)));
  }
}

struct ListArgs {
  std::string task_group_id;
  int limit = 0;  // 0: every task.
};

int RunGroupList(Context& ctx, const ListArgs& args) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  v1::ListTaskGroupRequest request;
  request.set_task_group_id(args.task_group_id);
  request.set_limit(1000);
  int shown = 0;
  json all = json::array();
  do {
    auto page = (*queue)->ListTaskGroup(request);
    if (!page.ok()) return ctx.RequestError(page.status());
    for (const auto& status : page->tasks()) {
      if (args.limit > 0 && shown >= args.limit) break;
      ++shown;
      if (ctx.options().json) {
        all.push_back(
            {{"taskId", status.task_id()}, {"state", status.state()}});
      } else {
        ctx.out() << FormatTaskStatusLine(status);
      }
    }
    request.set_continuation_token(page->continuation_token());
  } while (!request.continuation_token().empty() &&
           (args.limit == 0 || shown < args.limit));
  if (ctx.options().json) ctx.out() << all.dump(2) << "\n";
  return kExitOk;
}

int RunGroupSeal(Context& ctx, const std::string& group) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  v1::TaskGroupRequest request;
  request.set_task_group_id(group);
  auto info = (*queue)->SealTaskGroup(request);
  if (!info.ok()) return ctx.RequestError(info.status());
  if (ctx.options().json) {
    ctx.PrintJson(*info);
  } else {
    ctx.out() << "sealed " << group << "; " << CountsLine(*info) << "\n";
  }
  return kExitOk;
}

int RunGroupCancel(Context& ctx, const std::string& group) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  v1::TaskGroupRequest request;
  request.set_task_group_id(group);
  client::CallOptions options = (*queue)->defaults();
  options.timeout = std::max(options.timeout, absl::Minutes(10));
  auto canceled = (*queue)->CancelTaskGroup(request, options);
  if (!canceled.ok()) return ctx.RequestError(canceled.status());
  if (ctx.options().json) {
    ctx.PrintJson(*canceled);
  } else {
    ctx.out() << "canceled " << canceled->canceled() << " tasks; "
              << CountsLine(canceled->group()) << "\n";
  }
  return kExitOk;
}

struct WatchArgs {
  std::optional<int64_t> from;
  std::string task_group_id;
  std::string task_queue_id;
  std::string route_prefix;
  std::vector<std::string> kinds;
  int count = 0;               // Stop after this many events (0: never).
  double timeout_seconds = 0;  // Stop after this long (0: never).
};

int RunWatch(Context& ctx, const WatchArgs& args) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  v1::WatchEventsRequest request;
  if (args.from.has_value()) request.set_after_event_id(*args.from);
  request.set_task_group_id(args.task_group_id);
  request.set_task_queue_id(args.task_queue_id);
  request.set_route_prefix(args.route_prefix);
  for (const auto& k : args.kinds) request.add_kinds(k);
  int seen = 0;
  absl::Duration timeout = args.timeout_seconds > 0
                               ? absl::Seconds(args.timeout_seconds)
                               : absl::Hours(24 * 365);
  absl::Status status = (*queue)->WatchEvents(
      request,
      [&](const v1::Event& e) {
        if (ctx.options().json) {
          ctx.PrintJson(e);
        } else {
          ctx.out() << e.event_id() << " " << e.kind() << " "
                    << (e.task_id().empty() ? e.task_group_id() : e.task_id())
                    << (e.run_id() >= 0 ? absl::StrCat("/", e.run_id()) : "")
                    << "\n";
        }
        ctx.out() << std::flush;
        return args.count == 0 || ++seen < args.count;
      },
      timeout);
  if (!status.ok()) return ctx.RequestError(status);
  return kExitOk;
}

void AddGroupIdCommand(CLI::App& group, Context& ctx, const std::string& name,
                       const std::string& description,
                       int (*run)(Context&, const std::string&)) {
  auto id = std::make_shared<std::string>();
  CLI::App* cmd = group.add_subcommand(name, description);
  cmd->add_option("TASK_GROUP_ID", *id, "The task group's id")->required();
  cmd->callback([&ctx, id, run] { ctx.set_exit_code(run(ctx, *id)); });
}

}  // namespace

absl::StatusOr<ParsedGraph> ParseGraphFile(
    const json& doc, const std::function<absl::Status(json*)>& complete,
    absl::Time now, const std::function<std::string()>& new_id) {
  if (!doc.is_object()) {
    return InputError("graph", doc.dump().substr(0, 40),
                      "a graph file is a JSON object with \"tasks\"");
  }
  for (const auto& item : doc.items()) {
    if (item.key() != "tasks" && item.key() != "defaults" &&
        item.key() != "taskGroupId") {
      return InputError(item.key(), "",
                        "unknown key; a graph file has taskGroupId, "
                        "defaults and tasks");
    }
  }
  ParsedGraph graph;
  if (doc.contains("taskGroupId")) {
    if (!doc["taskGroupId"].is_string()) {
      return InputError("taskGroupId", doc["taskGroupId"].dump(),
                        "must be a string");
    }
    graph.task_group_id = doc["taskGroupId"].get<std::string>();
  } else {
    graph.task_group_id = new_id();
  }
  json defaults = doc.value("defaults", json::object());
  if (!defaults.is_object()) {
    return InputError("defaults", defaults.dump(), "must be a task object");
  }
  if (!doc.contains("tasks") || !doc["tasks"].is_array() ||
      doc["tasks"].empty()) {
    return InputError("tasks", doc.value("tasks", json()).dump(),
                      "must be a non-empty array of tasks");
  }
  const json& tasks = doc["tasks"];
  std::map<std::string, std::string> ids;
  for (size_t i = 0; i < tasks.size(); ++i) {
    std::string path = absl::StrCat("tasks[", i, "]");
    const json& t = tasks[i];
    if (!t.is_object() || !t.contains("label") || !t["label"].is_string() ||
        t["label"].get<std::string>().empty()) {
      return InputError(
          path + ".label",
          t.is_object() ? t.value("label", json()).dump() : t.dump(),
          "every task needs a non-empty string label");
    }
    std::string label = t["label"].get<std::string>();
    if (!ids.emplace(label, new_id()).second) {
      return InputError(path + ".label", label,
                        "labels must be unique within the graph");
    }
    graph.labels.emplace_back(label, ids[label]);
  }
  for (size_t i = 0; i < tasks.size(); ++i) {
    std::string path = absl::StrCat("tasks[", i, "]");
    json task = defaults;
    for (const auto& item : tasks[i].items()) {
      if (item.key() != "label") task[item.key()] = item.value();
    }
    if (!task.contains("taskGroupId"))
      task["taskGroupId"] = graph.task_group_id;
    if (task.contains("dependencies") && task["dependencies"].is_array()) {
      for (auto& dep : task["dependencies"]) {
        if (!dep.is_string()) continue;  // TaskDefinitionFromJson reports it.
        auto it = ids.find(dep.get<std::string>());
        if (it != ids.end()) dep = it->second;
      }
    }
    if (!task.contains("metadata") || !task["metadata"].is_object() ||
        !task["metadata"].contains("name")) {
      task["metadata"]["name"] = tasks[i]["label"];
    }
    absl::Status completed = complete(&task);
    if (!completed.ok()) return completed;
    auto definition = client::TaskDefinitionFromJson(task, now);
    if (!definition.ok()) {
      ErrorInfo info = GetErrorInfo(definition.status());
      auto field = info.details.find("field");
      if (field != info.details.end()) {
        field->second = absl::StrCat(path, ".", field->second);
      }
      return MakeError(info.code, absl::StrCat(path, ": ", info.message),
                       info.details);
    }
    v1::GraphTask out;
    out.set_task_id(graph.labels[i].second);
    *out.mutable_task() = std::move(definition).value();
    graph.tasks.push_back(std::move(out));
  }
  return graph;
}

void AddGraphCommands(CLI::App& app, Context& ctx) {
  CLI::App* graph =
      app.add_subcommand("graph", "Submit task graphs")->require_subcommand(1);
  {
    auto args = std::make_shared<SubmitArgs>();
    CLI::App* cmd = graph->add_subcommand(
        "submit",
        "Create every task of a graph file atomically (tasks name each "
        "other by label); prints the label -> task id map");
    cmd->add_option("FILE", args->file, "Graph JSON file, or - for stdin")
        ->required();
    cmd->add_flag("--dry-run", args->dry_run,
                  "Check the file and print the ids it would get; send "
                  "nothing");
    cmd->add_option("--batch", args->batch,
                    "Tasks per call: a bigger graph is staged in batches of "
                    "this size, two at a time, and committed at once")
        ->check(CLI::Range(1, client::kMaxGraphBatch))
        ->capture_default_str();
    cmd->callback([&ctx, args] { ctx.set_exit_code(RunSubmit(ctx, *args)); });
  }

  CLI::App* group =
      app.add_subcommand("group", "Inspect and manage task groups")
          ->require_subcommand(1);
  {
    auto args = std::make_shared<StatusArgs>();
    CLI::App* cmd = group->add_subcommand(
        "status",
        "Tasks per state, updated until the group resolves (--once: one "
        "look)");
    cmd->add_option("TASK_GROUP_ID", args->task_group_id, "The task group's id")
        ->required();
    cmd->add_flag("--once", args->once, "Print the counts once and exit");
    cmd->add_option("--interval", args->interval_seconds,
                    "Seconds between updates (default 2)");
    cmd->callback(
        [&ctx, args] { ctx.set_exit_code(RunGroupStatus(ctx, *args)); });
  }
  {
    auto args = std::make_shared<ListArgs>();
    CLI::App* cmd =
        group->add_subcommand("list", "One line per task of the group");
    cmd->add_option("TASK_GROUP_ID", args->task_group_id, "The task group's id")
        ->required();
    cmd->add_option("--limit", args->limit, "Show at most this many tasks");
    cmd->callback(
        [&ctx, args] { ctx.set_exit_code(RunGroupList(ctx, *args)); });
  }
  AddGroupIdCommand(*group, ctx, "seal",
                    "Seal the group: no task may join it any more",
                    RunGroupSeal);
  AddGroupIdCommand(*group, ctx, "cancel",
                    "Cancel every unresolved task of a sealed group",
                    RunGroupCancel);

  CLI::App* events =
      app.add_subcommand("events", "The event log")->require_subcommand(1);
  {
    auto args = std::make_shared<WatchArgs>();
    CLI::App* cmd = events->add_subcommand(
        "watch",
        "Print events as they are committed (--from ID: replay from after "
        "that id first)");
    cmd->add_option("--from", args->from,
                    "Replay events after this id (0: from the oldest kept)");
    cmd->add_option("--task-group-id", args->task_group_id,
                    "Only this group's events");
    cmd->add_option("-q,--queue", args->task_queue_id,
                    "Only this task queue's events");
    cmd->add_option("--route-prefix", args->route_prefix,
                    "Only events of tasks with a route starting so");
    cmd->add_option("--kind", args->kinds,
                    "Only events of this kind (repeatable), e.g. "
                    "task-completed");
    cmd->add_option("--count", args->count, "Exit after this many events");
    cmd->add_option("--timeout", args->timeout_seconds,
                    "Exit after this many seconds");
    cmd->callback([&ctx, args] { ctx.set_exit_code(RunWatch(ctx, *args)); });
  }
}

}  // namespace drover::cli::commands
