// bench_many_workers: 1,000 long-polling workers on one server.
//
// Opens --connections TCP connections (default: one per worker, as separate
// worker processes would) and keeps --workers ClaimWork(max_tasks=1) calls
// parked at all times with the asynchronous callback API (no thread per
// call). After they settle, tasks trickle in at --rate per second from a
// separate client; each claimed task is reported completed at once and its
// worker parks a new poll.
//
// Figures: the server's resident memory (VmRSS of --server-pid) idle before
// the workers connect, with every poll parked, and the highest sample
// while tasks trickle in; and create -> claim latency p50/p99/max
// (CreateTask sent -> claim received, matched by task id).
#include <sys/types.h>

#include <condition_variable>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "common/rpc/grpc_status.h"
#include "common/rpc/process_defaults.h"
#include "common/slugid.h"

namespace drover::bench {
namespace {

// One simulated worker: its current ClaimWork call.
struct Poller {
  int index = 0;
  const client::Connection* connection = nullptr;
  v1::Queue::Stub* stub = nullptr;
  std::unique_ptr<grpc::ClientContext> context;
  v1::ClaimWorkRequest request;
  v1::ClaimWorkResponse response;
  grpc::Status status;
  SteadyClock::time_point answered;
};

class Fleet {
 public:
  Fleet(std::vector<std::shared_ptr<const client::Connection>> connections,
        int workers, const std::string& queue_id, int handler_threads)
      : connections_(std::move(connections)) {
    for (const auto& c : connections_) {
      stubs_.push_back(v1::Queue::NewStub(c->channel()));
      queues_.push_back(std::make_unique<client::QueueClient>(c));
    }
    for (int i = 0; i < workers; ++i) {
      auto p = std::make_unique<Poller>();
      p->index = i;
      size_t c = static_cast<size_t>(i) % connections_.size();
      p->connection = connections_[c].get();
      p->stub = stubs_[c].get();
      p->request.set_task_queue_id(queue_id);
      p->request.set_worker_group("bench");
      p->request.set_worker_id(absl::StrCat("many-", i));
      p->request.set_max_tasks(1);
      pollers_.push_back(std::move(p));
    }
    for (int i = 0; i < handler_threads; ++i) {
      handlers_.emplace_back([this] { HandlerLoop(); });
    }
  }

  ~Fleet() { Stop(); }

  void StartAll() {
    for (auto& p : pollers_) Issue(p.get());
  }

  // The creator records when it sends each task.
  void NoteSent(const std::string& task_id, SteadyClock::time_point t) {
    std::lock_guard<std::mutex> lock(mu_);
    sent_[task_id] = t;
  }

  int64_t claimed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return claimed_;
  }
  int64_t outstanding() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outstanding_;
  }
  int64_t errors() const {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }
  int64_t empty_answers() const {
    std::lock_guard<std::mutex> lock(mu_);
    return empty_answers_;
  }
  std::string first_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }
  Samples latency() const {
    std::lock_guard<std::mutex> lock(mu_);
    return latency_;
  }

  bool WaitClaimed(int64_t count, std::chrono::seconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return claimed_ >= count; });
  }

  // Cancels every parked call and waits for the answers.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      for (auto& p : pollers_) {
        if (p->context) p->context->TryCancel();
      }
      cv_.notify_all();
    }
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(30),
                   [&] { return outstanding_ == 0 && ready_.empty(); });
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      quit_ = true;
      cv_.notify_all();
    }
    for (auto& t : handlers_) t.join();
    handlers_.clear();
  }

 private:
  void Issue(Poller* p) {
    {
      // Stop() cancels p->context under mu_, so it is replaced under mu_.
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      p->context = std::make_unique<grpc::ClientContext>();
      p->connection->PrepareContext(p->context.get(),
                                    absl::Now() + absl::Seconds(90));
      p->response.Clear();
      ++outstanding_;
    }
    // Not under mu_: gRPC may run the callback inline.
    p->stub->async()->ClaimWork(p->context.get(), &p->request, &p->response,
                                [this, p](grpc::Status status) {
                                  p->answered = SteadyClock::now();
                                  p->status = std::move(status);
                                  Done(p);
                                });
  }

  // On a gRPC thread: record, then hand the worker to a handler thread
  // (reports block; callbacks must not).
  void Done(Poller* p) {
    std::lock_guard<std::mutex> lock(mu_);
    --outstanding_;
    if (p->status.ok()) {
      if (p->response.tasks().empty()) ++empty_answers_;
      for (const v1::ClaimedTask& task : p->response.tasks()) {
        auto it = sent_.find(task.task_id());
        if (it != sent_.end())
          latency_.Add(MillisBetween(it->second, p->answered));
        ++claimed_;
      }
    } else if (!stopping_) {
      ++errors_;
      if (first_error_.empty()) {
        first_error_ = Describe(rpc::FromGrpcStatus(p->status));
      }
    }
    ready_.push_back(p);
    cv_.notify_all();
  }

  void HandlerLoop() {
    while (true) {
      Poller* p;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return quit_ || !ready_.empty(); });
        if (ready_.empty()) return;
        p = ready_.front();
        ready_.pop_front();
      }
      if (p->status.ok()) {
        for (const v1::ClaimedTask& task : p->response.tasks()) {
          v1::RunRequest report;
          report.set_task_id(task.task_id());
          report.set_run_id(task.run_id());
          report.set_worker_group(p->request.worker_group());
          report.set_worker_id(p->request.worker_id());
          auto status = queues_[static_cast<size_t>(p->index) % queues_.size()]
                            ->ReportCompleted(report);
          if (!status.ok()) {
            std::lock_guard<std::mutex> lock(mu_);
            ++errors_;
            if (first_error_.empty()) first_error_ = Describe(status.status());
          }
        }
      } else {
        // Back off a little so an unreachable server is not hammered.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      Issue(p);
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
  }

  std::vector<std::shared_ptr<const client::Connection>> connections_;
  std::vector<std::unique_ptr<v1::Queue::Stub>> stubs_;
  std::vector<std::unique_ptr<client::QueueClient>> queues_;
  std::vector<std::unique_ptr<Poller>> pollers_;
  std::vector<std::thread> handlers_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Poller*> ready_;
  std::map<std::string, SteadyClock::time_point> sent_;
  Samples latency_;
  int64_t outstanding_ = 0;
  int64_t claimed_ = 0;
  int64_t errors_ = 0;
  int64_t empty_answers_ = 0;
  std::string first_error_;
  bool stopping_ = false;
  bool quit_ = false;
};

double Mib(std::optional<int64_t> kib) {
  return kib ? static_cast<double>(*kib) / 1024.0 : 0;
}

}  // namespace
}  // namespace drover::bench

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  using namespace drover;
  using namespace drover::bench;

  CLI::App app{"bench_many_workers: 1,000 long-polling workers"};
  CommonFlags common;
  AddCommonFlags(app, &common);
  int workers = 1000;
  int connections = 0;
  int tasks = 1000;
  double rate = 50;
  int settle_s = 5;
  int handler_threads = 8;
  pid_t server_pid = 0;
  app.add_option("--workers", workers, "Concurrent long-polling workers")
      ->capture_default_str();
  app.add_option("--connections", connections,
                 "TCP connections to spread them over (0: one per worker)")
      ->capture_default_str();
  app.add_option("--tasks", tasks, "Tasks trickled in")->capture_default_str();
  app.add_option("--rate", rate, "Tasks created per second")
      ->capture_default_str();
  app.add_option("--settle", settle_s,
                 "Seconds to wait after parking every poll")
      ->capture_default_str();
  app.add_option("--handlers", handler_threads,
                 "Threads reporting claimed tasks")
      ->capture_default_str();
  app.add_option("--server-pid", server_pid,
                 "drover-queue's process id, for its memory use");
  CLI11_PARSE(app, argc, argv);
  if (connections <= 0 || connections > workers) connections = workers;

  auto creator_connection = Connect(common.url);
  if (!creator_connection.ok()) {
    std::cerr << "bench_many_workers: " << Describe(creator_connection.status())
              << "\n";
    return 1;
  }
  std::vector<std::shared_ptr<const client::Connection>> fleet_connections;
  for (int i = 0; i < connections; ++i) {
    auto c = Connect(common.url, /*private_channel=*/true);
    if (!c.ok()) {
      std::cerr << "bench_many_workers: " << Describe(c.status()) << "\n";
      return 1;
    }
    fleet_connections.push_back(*c);
  }

  const std::string queue_id = UniqueTaskQueueId("many");
  auto load_before = LoadAverage();
  auto rss = [&] {
    return server_pid > 0 ? ReadRssKib(server_pid) : std::nullopt;
  };
  auto rss_idle = rss();

  Fleet fleet(fleet_connections, workers, queue_id, handler_threads);
  SteadyClock::time_point issue_start = SteadyClock::now();
  fleet.StartAll();
  std::this_thread::sleep_for(std::chrono::seconds(settle_s));
  const int64_t parked = fleet.outstanding();
  auto rss_parked = rss();
  const double issue_ms = MillisBetween(issue_start, SteadyClock::now());

  // Sample the server's memory while tasks flow.
  std::atomic<bool> sampling{true};
  std::optional<int64_t> rss_peak = rss_parked;
  std::mutex peak_mu;
  std::thread sampler([&] {
    while (sampling.load()) {
      auto now = rss();
      if (now) {
        std::lock_guard<std::mutex> lock(peak_mu);
        if (!rss_peak || *now > *rss_peak) rss_peak = now;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  client::QueueClient creator(*creator_connection);
  int create_failed = 0;
  std::string create_error;
  SteadyClock::time_point start = SteadyClock::now();
  for (int i = 0; i < tasks; ++i) {
    auto due =
        start + std::chrono::microseconds(static_cast<int64_t>(i * 1e6 / rate));
    std::this_thread::sleep_until(due);
    v1::CreateTaskRequest request;
    request.set_task_id(NewSlugId());
    *request.mutable_task() = MakeTask(queue_id);
    fleet.NoteSent(request.task_id(), SteadyClock::now());
    auto created = creator.CreateTask(request);
    if (!created.ok()) {
      ++create_failed;
      if (create_error.empty()) create_error = Describe(created.status());
    }
  }
  bool all = fleet.WaitClaimed(tasks - create_failed, std::chrono::seconds(60));
  sampling = false;
  sampler.join();
  auto rss_after = rss();
  const Samples latency = fleet.latency();
  fleet.Stop();

  Table table(absl::StrCat("many workers: ", workers,
                           " long-polling ClaimWork calls over ", connections,
                           " connections, ", tasks, " tasks at ", rate, "/s"));
  table.Add("polls parked at once", static_cast<double>(parked), "calls");
  if (server_pid > 0) {
    table.Add("server RSS idle", Mib(rss_idle), "MiB", "before the workers");
    table.Add("server RSS, all parked", Mib(rss_parked), "MiB");
    table.Add("server RSS peak under load", Mib(rss_peak), "MiB",
              "target <= 200 MB");
  }
  table.Add("create->claim p50", latency.Median(), "ms");
  table.Add("create->claim p99", latency.Percentile(99), "ms",
            "target <= 50 ms");
  table.Add("create->claim max", latency.Max(), "ms");
  table.Print(std::cout);
  if (!all || create_failed > 0 || fleet.errors() > 0) {
    std::cout << "  WARNING: claimed " << fleet.claimed() << " of " << tasks
              << "; create failures " << create_failed << " (" << create_error
              << "); claim/report errors " << fleet.errors() << " ("
              << fleet.first_error() << ")\n";
  }

  nlohmann::json results = {{"parked", parked},
                            {"issue_and_settle_ms", issue_ms},
                            {"claimed", fleet.claimed()},
                            {"empty_answers", fleet.empty_answers()},
                            {"errors", fleet.errors()},
                            {"first_error", fleet.first_error()},
                            {"create_failed", create_failed},
                            {"create_to_claim", latency.ToJson()}};
  if (server_pid > 0) {
    results["server_rss_idle_mib"] = Mib(rss_idle);
    results["server_rss_parked_mib"] = Mib(rss_parked);
    results["server_rss_peak_mib"] = Mib(rss_peak);
    results["server_rss_after_mib"] = Mib(rss_after);
    results["server_vmhwm_mib"] = Mib(ReadPeakRssKib(server_pid));
  }
  nlohmann::json doc = {{"benchmark", "many_workers"},
                        {"config",
                         {{"workers", workers},
                          {"connections", connections},
                          {"tasks", tasks},
                          {"rate", rate},
                          {"settle_s", settle_s},
                          {"server_pid", server_pid},
                          {"task_queue_id", queue_id}}},
                        {"load_before", load_before},
                        {"complete", all && create_failed == 0},
                        {"results", results},
                        {"table", table.ToJson()}};
  if (auto s = WriteJson(common.json_path, doc); !s.ok()) {
    std::cerr << "bench_many_workers: " << Describe(s) << "\n";
    return 1;
  }
  return all ? 0 : 1;
}
