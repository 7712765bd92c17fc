// bench_graph: a large layered task graph (fan-out and fan-in), submitted
// and drained, at several sizes.
//
// Shape (one task group per graph): a root; L layers of --width tasks where
// the first layer depends on the root (fan-out 1 -> width) and task i of
// every later layer depends on tasks i and i+1 (mod width) of the layer
// before; a sink depending on the whole last layer (fan-in width -> 1).
// Size N gives L = round(N / width) layers, i.e. L * width + 2 tasks.
//
// The whole graph is submitted with CreateTaskGraph through
// client::SubmitTaskGraph, as `drover graph submit` does: all or nothing,
// in staged batches of --batch tasks under one graph id,
// --batches-in-flight of them at once, the last batch committing (one call
// when the graph fits in one batch). Submit time is from the first batch
// sent to the commit's answer.
//
// Submit runs with no worker claiming (only the root is pending); then
// simulated workers drain the graph until the sink completes. Per-resolution
// cost is the ReportCompleted round trip, which resolves the run and
// releases its dependents in the same transaction, compared between sizes
// (it should not grow with the graph: O(dependents), not O(graph)).
#include <iostream>
#include <mutex>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "client/graph_submit.h"
#include "common/rpc/process_defaults.h"
#include "common/slugid.h"

namespace drover::bench {
namespace {

struct GraphResult {
  int64_t tasks = 0;
  int layers = 0;
  double submit_s = 0;
  double drain_s = 0;
  bool complete = false;
  std::string error;
  Samples create_latency;
  Samples report_latency;
  Samples claim_latency;
  int64_t create_retried = 0;
  double commit_s = 0;  // The committing call alone.
};

GraphResult RunGraph(const std::shared_ptr<const client::Connection>& conn,
                     int size, int width, int batch, int in_flight,
                     bool submit_only, int workers, int capacity,
                     int timeout_s) {
  GraphResult result;
  const std::string queue_id = UniqueTaskQueueId(absl::StrCat("graph", size));
  const std::string group_id = NewSlugId();
  const int layers = std::max(1, (size + width / 2) / width);
  result.layers = layers;

  // Ids and dependencies first (cheap), then the batches.
  std::vector<v1::GraphTask> tasks;
  tasks.reserve(static_cast<size_t>(layers) * width + 2);
  auto add = [&](const std::vector<std::string>& deps) {
    v1::GraphTask t;
    t.set_task_id(NewSlugId());
    *t.mutable_task() = MakeTask(queue_id);
    t.mutable_task()->set_task_group_id(group_id);
    for (const std::string& d : deps) t.mutable_task()->add_dependencies(d);
    tasks.push_back(std::move(t));
    return tasks.back().task_id();
  };
  std::vector<std::string> previous = {add({})};
  for (int layer = 1; layer <= layers; ++layer) {
    std::vector<std::string> ids;
    ids.reserve(width);
    for (int i = 0; i < width; ++i) {
      ids.push_back(layer == 1 ? add({previous[0]})
                               : add({previous[i], previous[(i + 1) % width]}));
    }
    previous = std::move(ids);
  }
  add(previous);

  client::QueueClient queue(conn);
  client::GraphSubmitOptions submit;
  submit.batch = batch;
  submit.batches_in_flight = in_flight;
  client::CallOptions options;
  options.timeout = absl::Minutes(30);
  options.retry.max_attempts = 1;
  submit.call = options;
  std::mutex mu;
  submit.on_call = [&](int, absl::Duration took, bool commit) {
    std::lock_guard<std::mutex> lock(mu);
    result.create_latency.Add(absl::ToDoubleMilliseconds(took));
    if (commit) result.commit_s = absl::ToDoubleSeconds(took);
  };
  SteadyClock::time_point start = SteadyClock::now();
  auto response = client::SubmitTaskGraph(queue, std::move(tasks), submit);
  bool ok = response.ok();
  if (ok) {
    result.tasks = response->tasks();
  } else {
    result.error = Describe(response.status());
  }
  SteadyClock::time_point submitted = SteadyClock::now();
  result.submit_s = MillisBetween(start, submitted) / 1e3;
  if (!ok || submit_only) {
    result.complete = ok;
    return result;
  }

  SimulatedWorkers drain(
      conn,
      {.task_queue_id = queue_id, .workers = workers, .capacity = capacity});
  drain.Start();
  result.complete =
      drain.WaitForCompleted(result.tasks, absl::Seconds(timeout_s));
  drain.Stop();
  result.drain_s = MillisBetween(submitted, drain.last_report()) / 1e3;
  result.report_latency = drain.report_latency();
  result.claim_latency = drain.claim_latency();
  if (!result.complete && result.error.empty()) {
    result.error = absl::StrCat("drained ", drain.completed(), " of ",
                                result.tasks, "; ", drain.first_error());
  }
  return result;
}

}  // namespace
}  // namespace drover::bench

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  using namespace drover;
  using namespace drover::bench;

  CLI::App app{"bench_graph: layered task graphs, submit and drain"};
  CommonFlags common;
  AddCommonFlags(app, &common);
  std::vector<int> sizes = {10000, 100000};
  int width = 1000;
  int batch = 5000;
  int in_flight = 2;
  int workers = 8;
  int capacity = 32;
  int timeout_s = 3600;
  app.add_option("--sizes", sizes, "Graph sizes (tasks), comma separated")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--width", width, "Tasks per layer")->capture_default_str();
  app.add_option("--batch", batch,
                 "Tasks per CreateTaskGraph call (at most 10000)")
      ->capture_default_str();
  app.add_option("--batches-in-flight", in_flight,
                 "Staged CreateTaskGraph calls sent at once")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  bool submit_only = false;
  app.add_flag("--submit-only", submit_only,
               "Submit the graphs but do not drain them");
  app.add_option("--workers", workers, "Simulated workers")
      ->capture_default_str();
  app.add_option("--capacity", capacity, "max_tasks per ClaimWork")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "Drain time limit per graph, s")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (width < 2 || width > 10000) {
    std::cerr << "bench_graph: --width must be within 2..10000 (the sink "
                 "depends on a whole layer)\n";
    return 2;
  }

  auto connection = Connect(common.url);
  if (!connection.ok()) {
    std::cerr << "bench_graph: " << Describe(connection.status()) << "\n";
    return 1;
  }
  auto load_before = LoadAverage();
  Table table(absl::StrCat("graph: layered DAG, width ", width,
                           ", submitted with CreateTaskGraph (batches of ",
                           batch, "), drained by ", workers,
                           " simulated workers"));
  nlohmann::json runs = nlohmann::json::array();
  bool all_complete = true;
  for (int size : sizes) {
    GraphResult r = RunGraph(*connection, size, width, batch, in_flight,
                             submit_only, workers, capacity, timeout_s);
    all_complete = all_complete && r.complete;
    const std::string label = absl::StrCat(r.tasks, " tasks");
    table.Add(label + ": submit", r.submit_s, "s",
              absl::StrCat(r.tasks / std::max(r.submit_s, 1e-9),
                           " tasks/s, CreateTaskGraph"));
    table.Add(label + ": drain", r.drain_s, "s",
              absl::StrCat(r.tasks / std::max(r.drain_s, 1e-9), " tasks/s"));
    table.Add(label + ": submit + drain", r.submit_s + r.drain_s, "s",
              size >= 1000000  ? "stretch target <= 600 s for 1M"
              : size >= 100000 ? "target <= 60 s for 100k"
                               : "");
    table.Add(label + ": resolution p50", r.report_latency.Median(), "ms",
              "ReportCompleted incl. releasing dependents");
    table.Add(label + ": resolution p99", r.report_latency.Percentile(99),
              "ms");
    table.Add(label + ": drain time per task",
              r.tasks > 0 ? r.drain_s * 1e3 / r.tasks : 0, "ms");
    table.Add(label + ": commit call", r.commit_s, "s",
              "validate + create the whole graph in one transaction");
    table.Add(label + ": batch call p50", r.create_latency.Median(), "ms");
    if (!r.complete) {
      std::cout << "  WARNING: graph of " << size << " incomplete: " << r.error
                << "\n";
    }
    runs.push_back(
        {{"requested_size", size},
         {"tasks", r.tasks},
         {"layers", r.layers},
         {"submit_seconds", r.submit_s},
         {"drain_seconds", r.drain_s},
         {"total_seconds", r.submit_s + r.drain_s},
         {"complete", r.complete},
         {"error", r.error},
         {"commit_seconds", r.commit_s},
         {"create_latency", r.create_latency.ToJson()},
         {"claim_latency", r.claim_latency.ToJson()},
         {"resolution_latency", r.report_latency.ToJson()},
         {"drain_ms_per_task", r.tasks > 0 ? r.drain_s * 1e3 / r.tasks : 0}});
  }
  table.Print(std::cout);

  nlohmann::json doc = {{"benchmark", "graph"},
                        {"config",
                         {{"sizes", sizes},
                          {"width", width},
                          {"batch", batch},
                          {"batches_in_flight", in_flight},
                          {"workers", workers},
                          {"capacity", capacity}}},
                        {"load_before", load_before},
                        {"complete", all_complete},
                        {"results", {{"graphs", runs}}},
                        {"table", table.ToJson()}};
  if (auto s = WriteJson(common.json_path, doc); !s.ok()) {
    std::cerr << "bench_graph: " << Describe(s) << "\n";
    return 1;
  }
  return all_complete ? 0 : 1;
}
