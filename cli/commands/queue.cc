#include "cli/commands/queue.h"

#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "cli/output.h"
#include "common/status.h"

namespace drover::cli::commands {
namespace {

int RunCounts(Context& ctx, const std::string& queue_id) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  v1::TaskQueueRequest request;
  request.set_task_queue_id(queue_id);
  auto counts = (*queue)->GetTaskQueueCounts(request);
  if (!counts.ok()) return ctx.RequestError(counts.status());
  if (ctx.options().json) {
    ctx.PrintJson(*counts);
  } else {
    ctx.out() << FormatQueueCounts(*counts);
  }
  return kExitOk;
}

int RunList(Context& ctx, int limit) {
  auto queue = ctx.Queue();
  if (!queue.ok()) return ctx.LocalError(queue.status());
  // Pages are fetched until the server stops handing out a continuation
  // token, so the output is the whole list either way.
  v1::ListTaskQueuesResponse all;
  v1::ListTaskQueuesRequest request;
  if (limit > 0) request.set_limit(limit);
  std::set<std::string> seen_tokens;
  while (true) {
    auto page = (*queue)->ListTaskQueues(request);
    if (!page.ok()) return ctx.RequestError(page.status());
    for (auto& info : *page->mutable_task_queues()) {
      *all.add_task_queues() = std::move(info);
    }
    const std::string& token = page->continuation_token();
    // A server repeating a token would otherwise keep us here forever.
    if (token.empty() || !seen_tokens.insert(token).second) break;
    request.set_continuation_token(token);
  }
  if (ctx.options().json) {
    ctx.PrintJson(all);
  } else {
    ctx.out() << FormatTaskQueues(std::vector<v1::TaskQueueInfo>(
        all.task_queues().begin(), all.task_queues().end()));
  }
  return kExitOk;
}

}  // namespace

void AddQueueCommands(CLI::App& app, Context& context) {
  CLI::App* group =
      app.add_subcommand("queue", "Inspect task queues")->require_subcommand(1);

  auto queue_id = std::make_shared<std::string>();
  CLI::App* counts = group->add_subcommand(
      "counts", "Show how many tasks of a queue are pending and claimed");
  counts->add_option("QUEUE", *queue_id, "Task queue id (provisioner/type)")
      ->required();
  counts->callback([&context, queue_id] {
    context.set_exit_code(RunCounts(context, *queue_id));
  });

  auto limit = std::make_shared<int>(0);
  CLI::App* list = group->add_subcommand(
      "list", "List task queues with their pending and claimed counts");
  list->add_option("--page-size", *limit,
                   "Queues per request (1..1000; default: the server's)")
      ->check(CLI::Range(1, 1000));
  list->callback(
      [&context, limit] { context.set_exit_code(RunList(context, *limit)); });
}

}  // namespace drover::cli::commands
