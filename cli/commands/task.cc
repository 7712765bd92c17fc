#include "cli/commands/task.h"

#include <fstream>
#include <functional>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>

#include "cli/output.h"
#include "cli/task_flags.h"
#include "client/task_json.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace drover::cli::commands {
namespace {

using nlohmann::json;

struct CreateArgs {
  std::string file;
  std::string task_id;
  bool dry_run = false;
  TaskFlags flags;
};

absl::StatusOr<json> ReadTaskDocument(Context& ctx, const std::string& file) {
  if (file.empty()) return json::object();
  std::string text;
  std::string name = file == "-" ? "stdin" : file;
  if (file == "-") {
    std::stringstream buffer;
    buffer << ctx.in().rdbuf();
    text = buffer.str();
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) return InputError("FILE", file, "cannot read the task file");
    std::stringstream buffer;
    buffer << in.rdbuf();
    text = buffer.str();
  }
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    return InputError("FILE", name,
                      name + " is not valid JSON: " + std::string(e.what()));
  }
}

int RunCreate(Context& ctx, const CreateArgs& args) {
  auto doc = ReadTaskDocument(ctx, args.file);
  if (!doc.ok()) return ctx.LocalError(doc.status());
  std::string user;
  if (auto u = ctx.env()("USER")) {
    user = *u;
  } else if (auto l = ctx.env()("LOGNAME")) {
    user = *l;
  }
  absl::Status applied = ApplyTaskFlags(
      args.flags, DefaultTaskDefaults(user, ctx.host_name()), &*doc);
  if (!applied.ok()) return ctx.LocalError(applied);
  // Whole seconds: the server keeps microseconds, but nobody reads those,
  // and a definition re-created within the same second stays identical.
  absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(ctx.Now()));
  auto task = client::TaskDefinitionFromJson(*doc, now);
  if (!task.ok()) return ctx.LocalError(task.status());

  v1::CreateTaskRequest request;
  request.set_task_id(args.task_id.empty() ? client::NewTaskId()
                                           : args.task_id);
  *request.mutable_task() = std::move(*task);
  if (args.dry_run) {
    if (ctx.options().json) {
      ctx.PrintJson(request);
    } else {
      ctx.out() << client::TaskDefinitionToJson(request.task()).dump(2) << "\n";
    }
    return kExitOk;
  }

  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  auto created = (*queue)->CreateTask(request);
  if (!created.ok()) return ctx.RequestError(created.status());
  if (ctx.options().json) {
    ctx.PrintJson(*created);
  } else {
    // Only the id, so scripts can write ID=$(drover task create ...).
    ctx.out() << request.task_id() << "\n";
  }
  return kExitOk;
}

int RunGet(Context& ctx, const std::string& task_id) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  v1::TaskIdRequest request;
  request.set_task_id(task_id);
  auto got = (*queue)->GetTask(request);
  if (!got.ok()) return ctx.RequestError(got.status());
  if (ctx.options().json) {
    ctx.PrintJson(*got);
  } else {
    // The task JSON form, so the output can be edited and created again.
    ctx.out() << client::TaskDefinitionToJson(got->task()).dump(2) << "\n";
  }
  return kExitOk;
}

using StatusCall = absl::StatusOr<v1::TaskStatusResponse> (
    client::QueueClient::*)(const v1::TaskIdRequest&,
                            client::QueueClient::Options) const;

// status, cancel, rerun and schedule share everything but the RPC and how
// much they print.
int RunStatusCall(Context& ctx, const std::string& task_id, StatusCall call,
                  bool full_status) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  v1::TaskIdRequest request;
  request.set_task_id(task_id);
  auto response = ((*queue)->*call)(request, std::nullopt);
  if (!response.ok()) return ctx.RequestError(response.status());
  if (ctx.options().json) {
    ctx.PrintJson(*response);
  } else if (full_status) {
    ctx.out() << FormatTaskStatus(response->status());
  } else {
    ctx.out() << FormatTaskStatusLine(response->status());
  }
  return kExitOk;
}

void AddCreate(CLI::App& group, Context& ctx) {
  auto args = std::make_shared<CreateArgs>();
  TaskFlags& f = args->flags;
  CLI::App* cmd = group.add_subcommand(
      "create",
      "Create a task from a task JSON file (- for stdin) and/or flags; "
      "prints the task id");
  cmd->add_option("FILE", args->file, "Task JSON file, or - for stdin");
  cmd->add_option("--task-id", args->task_id,
                  "Task id to use (default: a fresh slug id); reusing an id "
                  "with the same definition is a no-op");
  cmd->add_flag("--dry-run", args->dry_run,
                "Print the task that would be created and send nothing");
  cmd->add_option("-q,--queue", f.queue, "taskQueueId (provisioner/type)");
  cmd->add_option("--scheduler-id", f.scheduler_id, "schedulerId");
  cmd->add_option("--task-group-id", f.task_group_id,
                  "taskGroupId (default: the task id)");
  cmd->add_option("--dependency", f.dependencies,
                  "A task this one depends on (repeatable)");
  cmd->add_option("--requires", f.requires_rule,
                  "all-completed (default) or all-resolved");
  cmd->add_option("--route", f.routes, "A route (repeatable)");
  cmd->add_option("-p,--priority", f.priority,
                  "highest, very-high, high, medium, low, very-low, lowest");
  cmd->add_option("--retries", f.retries, "Retries, 0..49 (default 5)");
  cmd->add_option("--created", f.created, "RFC 3339 or relative (\"-5m\")");
  cmd->add_option("--deadline", f.deadline,
                  "RFC 3339 or relative to created (default \"+1 day\")");
  cmd->add_option("--expires", f.expires,
                  "RFC 3339 or relative to created (default deadline + 1y)");
  cmd->add_option("--scope", f.scopes, "A scope for the task (repeatable)");
  cmd->add_option("--payload", f.payload, "The payload as a JSON object");
  cmd->add_option("-c,--command", f.commands,
                  "payload.command, split like a shell would; repeat for "
                  "several commands run in order");
  cmd->add_option("-e,--env", f.env,
                  "NAME=VALUE into payload.env (repeatable)");
  cmd->add_option("--max-run-time", f.max_run_time,
                  "payload.maxRunTime: seconds or a duration (\"10m\")");
  cmd->add_option("-n,--name", f.name, "metadata.name");
  cmd->add_option("--description", f.description,
                  "metadata.description (default: the name)");
  cmd->add_option("--owner", f.owner,
                  "metadata.owner, an email (default: $USER@host)");
  cmd->add_option("--source", f.source,
                  "metadata.source, a URL (default: http://host/drover-cli)");
  cmd->add_option("--tag", f.tags, "KEY=VALUE into tags (repeatable)");
  cmd->add_option("--extra", f.extra, "extra as a JSON object");
  cmd->callback([&ctx, args] { ctx.set_exit_code(RunCreate(ctx, *args)); });
}

void AddIdCommand(CLI::App& group, Context& ctx, const std::string& name,
                  const std::string& description,
                  std::function<int(Context&, const std::string&)> run) {
  auto task_id = std::make_shared<std::string>();
  CLI::App* cmd = group.add_subcommand(name, description);
  cmd->add_option("TASK_ID", *task_id, "The task's id")->required();
  cmd->callback(
      [&ctx, task_id, run] { ctx.set_exit_code(run(ctx, *task_id)); });
}

}  // namespace

void AddTaskCommands(CLI::App& app, Context& context) {
  CLI::App* group = app.add_subcommand("task", "Create and manage tasks")
                        ->require_subcommand(1);
  AddCreate(*group, context);
  AddIdCommand(*group, context, "status",
               "Show a task's state, runs and blocking dependencies",
               [](Context& ctx, const std::string& id) {
                 return RunStatusCall(ctx, id,
                                      &client::QueueClient::GetTaskStatus,
                                      /*full_status=*/true);
               });
  AddIdCommand(*group, context, "get",
               "Print a task's definition in task JSON form", RunGet);
  AddIdCommand(*group, context, "cancel",
               "Cancel a task: its unresolved run resolves "
               "exception/canceled",
               [](Context& ctx, const std::string& id) {
                 return RunStatusCall(ctx, id, &client::QueueClient::CancelTask,
                                      /*full_status=*/false);
               });
  AddIdCommand(*group, context, "rerun",
               "Add a new pending run to a resolved task",
               [](Context& ctx, const std::string& id) {
                 return RunStatusCall(ctx, id, &client::QueueClient::RerunTask,
                                      /*full_status=*/false);
               });
  AddIdCommand(*group, context, "schedule",
               "Make an unscheduled task pending, ignoring its dependencies",
               [](Context& ctx, const std::string& id) {
                 return RunStatusCall(ctx, id,
                                      &client::QueueClient::ScheduleTask,
                                      /*full_status=*/false);
               });
}

}  // namespace drover::cli::commands
