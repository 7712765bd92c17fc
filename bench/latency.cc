// bench_latency: create -> claim latency seen by an idle long-polling
// worker.
//
// One claimer thread keeps a ClaimWork(max_tasks=1) long poll parked on a
// fresh task queue. The main thread creates tasks one at a time (default
// 1,000): it waits until the claimer has received the previous task,
// reported it and parked its next poll, pauses --gap-ms so that poll is
// really waiting on the server, then sends CreateTask. The claimer records
// when each claim response arrives; both sides use one steady clock and
// are matched by task id.
//
// Figures: create -> claim p50/p99/max (CreateTask sent -> claim received),
// the CreateTask round trip alone, and how long after the CreateTask answer
// the claim arrived.
//
// Then, so that the figures can be read against what this machine gives
// any call at that moment, two floors timed the same way right after:
// CurrentScopes (authenticated, through the server's executor, no
// database) and GetTaskStatus (the same plus one database read, no write
// and so no WAL flush). The create -> claim chain is a CreateTask (a
// write) followed by a claim (another write) and their wake-ups, so it
// costs at least about two of the second floor.
#include <condition_variable>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "client/auth_client.h"
#include "common/rpc/process_defaults.h"
#include "common/slugid.h"

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  using namespace drover;
  using namespace drover::bench;

  CLI::App app{"bench_latency: create -> claim latency, idle worker"};
  CommonFlags common;
  AddCommonFlags(app, &common);
  int tasks = 1000;
  int gap_ms = 5;
  int warmup = 10;
  app.add_option("--tasks", tasks, "Tasks to create, one at a time")
      ->capture_default_str();
  app.add_option("--gap-ms", gap_ms,
                 "Pause after the claimer parked before the next create")
      ->capture_default_str();
  app.add_option("--warmup", warmup, "Extra tasks first, not measured")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto connection = Connect(common.url);
  if (!connection.ok()) {
    std::cerr << "bench_latency: " << Describe(connection.status()) << "\n";
    return 1;
  }
  const std::string queue_id = UniqueTaskQueueId("latency");
  auto load_before = LoadAverage();
  client::QueueClient queue(*connection);
  CancellableClaimer claimer(*connection);

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, SteadyClock::time_point> received;  // by task id
  uint64_t polls_started = 0;  // counts ClaimWork calls begun
  bool claimer_failed = false;
  std::string claimer_error;

  std::thread claim_thread([&] {
    v1::ClaimWorkRequest request;
    request.set_task_queue_id(queue_id);
    request.set_worker_group("bench");
    request.set_worker_id("latency");
    request.set_max_tasks(1);
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu);
        ++polls_started;
        cv.notify_all();
      }
      auto response = claimer.Claim(request);
      SteadyClock::time_point now = SteadyClock::now();
      if (!response.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (response.status().code() != absl::StatusCode::kCancelled) {
          claimer_failed = true;
          claimer_error = Describe(response.status());
        }
        cv.notify_all();
        return;
      }
      for (const v1::ClaimedTask& task : response->tasks()) {
        {
          std::lock_guard<std::mutex> lock(mu);
          received[task.task_id()] = now;
          cv.notify_all();
        }
        v1::RunRequest report;
        report.set_task_id(task.task_id());
        report.set_run_id(task.run_id());
        report.set_worker_group("bench");
        report.set_worker_id("latency");
        (void)queue.ReportCompleted(report);
      }
    }
  });

  Samples create_to_claim, create_rpc, ack_to_claim;
  std::string last_task_id;  // a task the floors read back
  int missed = 0;
  std::string create_error;
  for (int i = 0; i < warmup + tasks; ++i) {
    // Wait for the claimer to be back in a fresh poll, then let that poll
    // reach the server and park.
    {
      std::unique_lock<std::mutex> lock(mu);
      uint64_t want = static_cast<uint64_t>(i) + 1;
      cv.wait_for(lock, std::chrono::seconds(30),
                  [&] { return polls_started >= want || claimer_failed; });
      if (claimer_failed) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));

    v1::CreateTaskRequest request;
    request.set_task_id(NewSlugId());
    *request.mutable_task() = MakeTask(queue_id);
    SteadyClock::time_point sent = SteadyClock::now();
    auto created = queue.CreateTask(request);
    SteadyClock::time_point acked = SteadyClock::now();
    if (!created.ok()) {
      create_error = Describe(created.status());
      break;
    }
    std::unique_lock<std::mutex> lock(mu);
    bool got = cv.wait_for(lock, std::chrono::seconds(30), [&] {
      return received.count(request.task_id()) > 0 || claimer_failed;
    });
    if (!got || claimer_failed) {
      ++missed;
      continue;
    }
    last_task_id = request.task_id();
    if (i < warmup) continue;
    SteadyClock::time_point claimed = received[request.task_id()];
    create_to_claim.Add(MillisBetween(sent, claimed));
    create_rpc.Add(MillisBetween(sent, acked));
    ack_to_claim.Add(MillisBetween(acked, claimed));
  }
  // The claimer polls once more after the last task; wait for that poll so
  // the cancel does not race the final report.
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] {
      return polls_started >= static_cast<uint64_t>(warmup + tasks) + 1 ||
             claimer_failed;
    });
  }
  claimer.Cancel();
  claim_thread.join();

  Samples scopes_rpc, status_rpc;
  std::string floor_error;
  {
    client::AuthClient auth(*connection);
    v1::TaskIdRequest status_request;
    status_request.set_task_id(last_task_id);
    for (int i = 0; i < warmup + tasks && !last_task_id.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
      SteadyClock::time_point sent = SteadyClock::now();
      auto scopes = auth.CurrentScopes();
      SteadyClock::time_point between = SteadyClock::now();
      auto status = queue.GetTaskStatus(status_request);
      SteadyClock::time_point done = SteadyClock::now();
      if (!scopes.ok() || !status.ok()) {
        floor_error = Describe(scopes.ok() ? status.status() : scopes.status());
        break;
      }
      if (i < warmup) continue;
      scopes_rpc.Add(MillisBetween(sent, between));
      status_rpc.Add(MillisBetween(between, done));
    }
  }

  Table table(absl::StrCat("latency: ", tasks,
                           " tasks created one at a time, idle long-polling "
                           "worker"));
  table.Add("create->claim p50", create_to_claim.Median(), "ms",
            "target <= 2 ms");
  table.Add("create->claim p99", create_to_claim.Percentile(99), "ms",
            "target <= 10 ms");
  table.Add("create->claim max", create_to_claim.Max(), "ms");
  table.Add("CreateTask round trip p50", create_rpc.Median(), "ms");
  table.Add("CreateTask round trip p99", create_rpc.Percentile(99), "ms");
  table.Add("create answer->claim p50", ack_to_claim.Median(), "ms",
            "negative: the claim arrived first");
  table.Add("floor: CurrentScopes round trip p50", scopes_rpc.Median(), "ms",
            "authenticated, no database");
  table.Add("floor: GetTaskStatus round trip p50", status_rpc.Median(), "ms",
            "one database read, no write");
  table.Print(std::cout);
  if (missed > 0 || claimer_failed || !create_error.empty()) {
    std::cout << "  WARNING: " << missed << " tasks not claimed within 30 s; "
              << claimer_error << " " << create_error << "\n";
  }
  if (!floor_error.empty()) {
    std::cout << "  WARNING: floors incomplete: " << floor_error << "\n";
  }

  nlohmann::json doc = {
      {"benchmark", "latency"},
      {"config",
       {{"tasks", tasks},
        {"gap_ms", gap_ms},
        {"warmup", warmup},
        {"task_queue_id", queue_id}}},
      {"load_before", load_before},
      {"complete", create_to_claim.count() == static_cast<size_t>(tasks)},
      {"results",
       {{"create_to_claim", create_to_claim.ToJson()},
        {"create_rpc", create_rpc.ToJson()},
        {"ack_to_claim", ack_to_claim.ToJson()},
        {"current_scopes_rpc", scopes_rpc.ToJson()},
        {"get_task_status_rpc", status_rpc.ToJson()},
        {"floor_error", floor_error},
        {"missed", missed},
        {"error", claimer_error.empty() ? create_error : claimer_error}}},
      {"table", table.ToJson()}};
  if (auto s = WriteJson(common.json_path, doc); !s.ok()) {
    std::cerr << "bench_latency: " << Describe(s) << "\n";
    return 1;
  }
  return create_to_claim.count() == static_cast<size_t>(tasks) ? 0 : 1;
}
