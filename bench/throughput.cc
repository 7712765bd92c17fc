// bench_throughput: end-to-end no-op task throughput.
//
// Creates N no-op tasks (default 20,000) on a fresh task queue from several
// client threads while simulated workers (bench_util.h) drain the queue
// concurrently: each claims up to its capacity and reports every claimed
// task completed at once. Tasks are created in batches (--create graph,
// the default): each creator sends CreateTaskGraph calls of --graph-batch
// independent tasks, each call one atomic graph in its own task group, the
// way a CI system submits work. --create task sends one CreateTask call per
// task instead (--batch calls in flight per creator).
// Prints tasks/s for creation, for the drain (first claim -> last report)
// and end to end (first create -> last report), plus per-RPC latencies, and
// writes them as JSON (--json).
//
// Issue 9's target compares the end-to-end rate with `pgbench -N` on the
// same PostgreSQL (bench/run.sh runs both and computes the ratio).
#include <atomic>
#include <iostream>
#include <mutex>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "common/rpc/process_defaults.h"
#include "common/slugid.h"

namespace drover::bench {
namespace {

// Creates `tasks` from `threads` client threads, `per_call` tasks per
// CreateTaskGraph call (one committed graph per call).
CreateStats CreateGraphs(const std::shared_ptr<const client::Connection>& conn,
                         const std::vector<v1::GraphTask>& tasks, int threads,
                         int per_call) {
  CreateStats stats;
  std::mutex mu;
  std::atomic<size_t> next{0};
  stats.started = SteadyClock::now();
  std::vector<std::thread> creators;
  for (int t = 0; t < threads; ++t) {
    creators.emplace_back([&] {
      client::QueueClient queue(conn);
      client::CallOptions options;
      options.timeout = absl::Minutes(5);
      for (;;) {
        size_t first = next.fetch_add(per_call);
        if (first >= tasks.size()) return;
        size_t last = std::min(tasks.size(), first + per_call);
        v1::CreateTaskGraphRequest request;
        request.set_commit(true);
        const std::string group = tasks[first].task_id();
        for (size_t i = first; i < last; ++i) {
          v1::GraphTask* task = request.add_tasks();
          *task = tasks[i];
          task->mutable_task()->set_task_group_id(group);
        }
        SteadyClock::time_point sent = SteadyClock::now();
        auto response = queue.CreateTaskGraph(request, options);
        std::lock_guard<std::mutex> lock(mu);
        if (response.ok()) {
          stats.latency.Add(MillisBetween(sent, SteadyClock::now()));
          stats.created += response->tasks();
        } else {
          stats.failed += static_cast<int64_t>(last - first);
          if (stats.first_error.empty()) {
            stats.first_error = Describe(response.status());
          }
        }
      }
    });
  }
  for (auto& t : creators) t.join();
  stats.finished = SteadyClock::now();
  return stats;
}

}  // namespace
}  // namespace drover::bench

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  using namespace drover;
  using namespace drover::bench;

  CLI::App app{"bench_throughput: create and drain no-op tasks"};
  CommonFlags common;
  AddCommonFlags(app, &common);
  int tasks = 20000;
  int creators = 4;
  int batch = 32;
  int workers = 8;
  int capacity = 32;
  int timeout_s = 900;
  std::string create_mode = "graph";
  int graph_batch = 200;
  app.add_option("--tasks", tasks, "Tasks to create")->capture_default_str();
  app.add_option("--creators", creators, "Creating client threads")
      ->capture_default_str();
  app.add_option("--batch", batch,
                 "CreateTask calls each creator sends at once")
      ->capture_default_str();
  app.add_option("--workers", workers, "Simulated workers")
      ->capture_default_str();
  app.add_option("--capacity", capacity, "max_tasks per ClaimWork")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "Give up after this many seconds")
      ->capture_default_str();
  app.add_option("--create", create_mode,
                 "graph: CreateTaskGraph calls of --graph-batch tasks; "
                 "task: one CreateTask call per task")
      ->check(CLI::IsMember({"graph", "task"}))
      ->capture_default_str();
  app.add_option("--graph-batch", graph_batch,
                 "Tasks per CreateTaskGraph call (--create graph)")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto connection = Connect(common.url);
  if (!connection.ok()) {
    std::cerr << "bench_throughput: " << Describe(connection.status()) << "\n";
    return 1;
  }
  const std::string queue_id = UniqueTaskQueueId("throughput");
  auto load_before = LoadAverage();

  // Requests are built up front so the clock measures the server.
  std::vector<v1::CreateTaskRequest> requests;
  std::vector<v1::GraphTask> graph_tasks;
  if (create_mode == "task") {
    requests.resize(tasks);
    for (auto& request : requests) {
      request.set_task_id(NewSlugId());
      *request.mutable_task() = MakeTask(queue_id);
    }
  } else {
    graph_tasks.resize(tasks);
    for (auto& task : graph_tasks) {
      task.set_task_id(NewSlugId());
      *task.mutable_task() = MakeTask(queue_id);
    }
  }

  SimulatedWorkers drain(
      *connection,
      {.task_queue_id = queue_id, .workers = workers, .capacity = capacity});
  drain.Start();
  CreateStats created =
      create_mode == "task"
          ? CreateTasks(*connection, requests, creators, batch)
          : CreateGraphs(*connection, graph_tasks, creators, graph_batch);
  bool done = drain.WaitForCompleted(created.created, absl::Seconds(timeout_s));
  drain.Stop();

  const double create_s =
      MillisBetween(created.started, created.finished) / 1e3;
  const double drain_s =
      MillisBetween(drain.first_claim(), drain.last_report()) / 1e3;
  const double e2e_s =
      MillisBetween(created.started, drain.last_report()) / 1e3;
  const double completed = static_cast<double>(drain.completed());

  const std::string how =
      create_mode == "task"
          ? absl::StrCat(creators, "x", batch, " CreateTask in flight")
          : absl::StrCat(creators, " creators, CreateTaskGraph of ",
                         graph_batch);
  Table table(absl::StrCat("throughput: ", tasks, " no-op tasks, ", how, ", ",
                           workers, " simulated workers x", capacity));
  table.Add("create rate", created.created / create_s, "tasks/s",
            absl::StrCat(created.created, " created in ", create_s, " s"));
  table.Add("drain rate", completed / drain_s, "tasks/s",
            "first claim -> last report");
  table.Add("end-to-end rate", completed / e2e_s, "tasks/s",
            absl::StrCat("first create -> last report, ", e2e_s, " s"));
  const std::string create_rpc =
      create_mode == "task" ? "CreateTask" : "CreateTaskGraph";
  table.Add(create_rpc + " p50", created.latency.Median(), "ms");
  table.Add(create_rpc + " p99", created.latency.Percentile(99), "ms");
  table.Add("ClaimWork p50 (non-empty)", drain.claim_latency().Median(), "ms");
  table.Add("ReportCompleted p50", drain.report_latency().Median(), "ms");
  table.Add("ReportCompleted p99", drain.report_latency().Percentile(99), "ms");
  table.Add("tasks per claim", drain.MeanBatch(), "tasks");
  table.Print(std::cout);
  if (!done || created.failed > 0 || drain.errors() > 0) {
    std::cout << "  WARNING: completed " << drain.completed() << " of " << tasks
              << "; create failures " << created.failed << " ("
              << created.first_error << "); worker errors " << drain.errors()
              << " (" << drain.first_error() << ")\n";
  }
  if (created.retried > 0) {
    std::cout << "  note: " << created.retried
              << " CreateTask calls were refused as overload and retried\n";
  }

  nlohmann::json doc = {
      {"benchmark", "throughput"},
      {"config",
       {{"tasks", tasks},
        {"creators", creators},
        {"batch", batch},
        {"create", create_mode},
        {"graph_batch", graph_batch},
        {"workers", workers},
        {"capacity", capacity},
        {"task_queue_id", queue_id}}},
      {"load_before", load_before},
      {"complete", done && created.failed == 0},
      {"results",
       {{"created", created.created},
        {"completed", drain.completed()},
        {"create_failed", created.failed},
        {"create_retried", created.retried},
        {"worker_errors", drain.errors()},
        {"first_error", created.first_error.empty() ? drain.first_error()
                                                    : created.first_error},
        {"create_seconds", create_s},
        {"drain_seconds", drain_s},
        {"end_to_end_seconds", e2e_s},
        {"create_tps", created.created / create_s},
        {"drain_tps", completed / drain_s},
        {"end_to_end_tps", completed / e2e_s},
        {"create_latency", created.latency.ToJson()},
        {"claim_latency", drain.claim_latency().ToJson()},
        {"report_latency", drain.report_latency().ToJson()},
        {"tasks_per_claim", drain.MeanBatch()}}},
      {"table", table.ToJson()}};
  if (auto s = WriteJson(common.json_path, doc); !s.ok()) {
    std::cerr << "bench_throughput: " << Describe(s) << "\n";
    return 1;
  }
  return done ? 0 : 1;
}
