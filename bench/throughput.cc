// bench_throughput: end-to-end no-op task throughput.
//
// Creates N no-op tasks (default 20,000) on a fresh task queue from several
// client threads, each sending batches of CreateTask calls at once, while
// simulated workers (bench_util.h) drain the queue concurrently: each claims
// up to its capacity and reports every claimed task completed at once.
// Prints tasks/s for creation, for the drain (first claim -> last report)
// and end to end (first create -> last report), plus per-RPC latencies, and
// writes them as JSON (--json).
//
// Issue 9's target compares the end-to-end rate with `pgbench -N` on the
// same PostgreSQL (bench/run.sh runs both and computes the ratio).
#include <iostream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "common/slugid.h"

int main(int argc, char** argv) {
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
  CLI11_PARSE(app, argc, argv);

  auto connection = Connect(common.url);
  if (!connection.ok()) {
    std::cerr << "bench_throughput: " << Describe(connection.status()) << "\n";
    return 1;
  }
  const std::string queue_id = UniqueTaskQueueId("throughput");
  auto load_before = LoadAverage();

  // Requests are built up front so the clock measures the server.
  std::vector<v1::CreateTaskRequest> requests(tasks);
  for (auto& request : requests) {
    request.set_task_id(NewSlugId());
    *request.mutable_task() = MakeTask(queue_id);
  }

  SimulatedWorkers drain(
      *connection,
      {.task_queue_id = queue_id, .workers = workers, .capacity = capacity});
  drain.Start();
  CreateStats created = CreateTasks(*connection, requests, creators, batch);
  bool done = drain.WaitForCompleted(created.created, absl::Seconds(timeout_s));
  drain.Stop();

  const double create_s =
      MillisBetween(created.started, created.finished) / 1e3;
  const double drain_s =
      MillisBetween(drain.first_claim(), drain.last_report()) / 1e3;
  const double e2e_s =
      MillisBetween(created.started, drain.last_report()) / 1e3;
  const double completed = static_cast<double>(drain.completed());

  Table table(absl::StrCat("throughput: ", tasks, " no-op tasks, ", creators,
                           "x", batch, " creating, ", workers,
                           " simulated workers x", capacity));
  table.Add("create rate", created.created / create_s, "tasks/s",
            absl::StrCat(created.created, " created in ", create_s, " s"));
  table.Add("drain rate", completed / drain_s, "tasks/s",
            "first claim -> last report");
  table.Add("end-to-end rate", completed / e2e_s, "tasks/s",
            absl::StrCat("first create -> last report, ", e2e_s, " s"));
  table.Add("CreateTask p50", created.latency.Median(), "ms");
  table.Add("CreateTask p99", created.latency.Percentile(99), "ms");
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
