#include "cli/commands/logs.h"

#include <memory>
#include <ostream>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/commands/artifacts.h"
#include "cli/output.h"
#include "common/status.h"

namespace drover::cli::commands {
namespace {

// How long `logs -f` waits, after the log ended, for the run's
// resolution to be reported.
constexpr absl::Duration kResolutionWait = absl::Seconds(30);

bool RunResolved(const v1::TaskStatusResponse& status, int run_id) {
  for (const auto& run : status.status().runs()) {
    if (run.run_id() != run_id) continue;
    return run.state() == "completed" || run.state() == "failed" ||
           run.state() == "exception";
  }
  return false;
}

int RunLogs(Context& ctx, const std::string& task_id, int run_id, bool follow) {
  auto client = ArtifactsClientFor(ctx);
  if (!client.ok()) return ctx.LocalError(client.status());
  v1::TailLogRequest request;
  request.set_task_id(task_id);
  if (run_id >= 0) request.set_run_id(run_id);
  request.set_no_follow(!follow);
  auto tailed = (*client)->TailLog(request, [&](std::string_view bytes) {
    ctx.out().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    // Followers want each line as it comes, not when a buffer fills.
    if (follow) ctx.out().flush();
    if (!ctx.out()) return InternalError("writing the log failed");
    return absl::OkStatus();
  });
  if (!tailed.ok()) return ctx.RequestError(tailed.status());
  ctx.out().flush();
  if (follow) {
    auto queue = ctx.Queue();
    if (!queue.ok()) return ctx.LocalError(queue.status());
    v1::TaskIdRequest status_request;
    status_request.set_task_id(task_id);
    // The stream ends once the worker has uploaded the complete log, which
    // it does just before it reports the resolution; give the report a
    // moment so the state printed is the final one.
    const absl::Time give_up = absl::Now() + kResolutionWait;
    absl::StatusOr<v1::TaskStatusResponse> status;
    while (true) {
      status = (*queue)->GetTaskStatus(status_request);
      if (!status.ok()) return ctx.RequestError(status.status());
      if (RunResolved(*status, tailed->run_id) || absl::Now() >= give_up) {
        break;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    for (const auto& run : status->status().runs()) {
      if (run.run_id() != tailed->run_id) continue;
      ctx.err() << "[drover] run " << run.run_id() << " " << run.state()
                << (run.reason_resolved().empty() ||
                            run.reason_resolved() == run.state()
                        ? ""
                        : "/" + run.reason_resolved())
                << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

void AddTaskLogsCommand(CLI::App& task_group, Context& context) {
  struct Args {
    std::string task_id;
    int run_id = -1;
    bool follow = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = task_group.add_subcommand(
      "logs", "Print a run's log; -f follows it live until the run resolves");
  cmd->add_option("TASK_ID", args->task_id, "The task's id")->required();
  cmd->add_option("--run", args->run_id, "Run id (default: latest)")
      ->check(CLI::Range(0, 49));
  cmd->add_flag("-f,--follow", args->follow,
                "Keep printing as the task writes, until the run resolves");
  cmd->callback([&context, args] {
    context.set_exit_code(
        RunLogs(context, args->task_id, args->run_id, args->follow));
  });
}

}  // namespace drover::cli::commands
