// Shared pieces of the benchmark programs (bench_*): latency samples and
// percentiles, machine facts (/proc), result tables and JSON reports, task
// definitions, connections, and the two load generators every benchmark
// needs: concurrent batched task creation and simulated workers.
//
// Benchmarks measure; they never pass or fail. Everything here talks to a
// real drover-queue over gRPC through the client library.
#ifndef DROVER_BENCH_BENCH_UTIL_H_
#define DROVER_BENCH_BENCH_UTIL_H_

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/queue_client.h"
#include "drover/v1/queue.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "nlohmann/json.hpp"

namespace drover::bench {

using SteadyClock = std::chrono::steady_clock;

// Milliseconds between two steady-clock points.
double MillisBetween(SteadyClock::time_point from, SteadyClock::time_point to);

// A set of durations in milliseconds. Not thread-safe; collect per thread
// and Merge(), or guard it.
class Samples {
 public:
  void Add(double ms) { values_.push_back(ms); }
  void Merge(const Samples& other);
  size_t count() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  // Nearest-rank percentile, q in [0, 100]; 0 when empty.
  double Percentile(double q) const;
  double Median() const { return Percentile(50); }
  double Max() const;
  double Mean() const;
  // {"count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"}.
  nlohmann::json ToJson() const;

 private:
  mutable std::vector<double> values_;
  mutable bool sorted_ = false;
};

// The 1, 5 and 15 minute load averages (/proc/loadavg); zeros if unreadable.
std::array<double, 3> LoadAverage();

// VmRSS / VmHWM of a process in KiB (/proc/<pid>/status); nullopt when the
// process or the field is missing.
std::optional<int64_t> ReadRssKib(pid_t pid);
std::optional<int64_t> ReadPeakRssKib(pid_t pid);
// User + system CPU time a process has used, in seconds (/proc/<pid>/stat).
std::optional<double> ReadCpuSeconds(pid_t pid);

// CPU model, core count, memory, kernel and load average, for reports.
nlohmann::json MachineDescription();

// Flags every benchmark takes.
struct CommonFlags {
  // Queue server address; default DROVER_URL, else 127.0.0.1:50051.
  std::string url;
  // Where to write the JSON result; empty: none.
  std::string json_path;
};
void AddCommonFlags(CLI::App& app, CommonFlags* flags);

// A connection to `url` with the credentials of the environment
// (DROVER_CLIENT_ID/DROVER_ACCESS_TOKEN, ..., see client/credentials.h).
// `private_channel` gives the connection its own TCP connection instead of
// sharing gRPC's global subchannel pool, as separate worker processes
// would have (plaintext URLs only). Errors: those of Connection::Create.
absl::StatusOr<std::shared_ptr<const client::Connection>> Connect(
    const std::string& url, bool private_channel = false);

// "bench/<kind>-<random>": a task queue no other run uses.
std::string UniqueTaskQueueId(std::string_view kind);

// A minimal valid task on `task_queue_id` with `payload` (JSON object),
// created now with a one-day deadline and no retries.
v1::TaskDefinition MakeTask(const std::string& task_queue_id,
                            const std::string& payload = "{}");

// Results table printed by each benchmark: one row per figure.
class Table {
 public:
  explicit Table(std::string title) : title_(std::move(title)) {}
  void Add(std::string name, double value, std::string unit,
           std::string note = "");
  void Print(std::ostream& out) const;
  // [{"name", "value", "unit", "note"}...]
  nlohmann::json ToJson() const;

 private:
  struct Row {
    std::string name;
    double value;
    std::string unit;
    std::string note;
  };
  std::string title_;
  std::vector<Row> rows_;
};

// Writes `doc` (plus "machine" and the load average at the end) to `path`
// when it is not empty. Errors: InternalError when the file cannot be
// written.
absl::Status WriteJson(const std::string& path, nlohmann::json doc);

// The result of a CreateTasks run.
struct CreateStats {
  Samples latency;  // per successful CreateTask call
  int64_t created = 0;
  int64_t retried = 0;  // UNAVAILABLE answers retried
  int64_t failed = 0;
  std::string first_error;
  SteadyClock::time_point started;
  SteadyClock::time_point finished;
};

// Creates `requests` from `threads` client threads. Each thread takes the
// next `batch` requests, sends them all at once with the asynchronous stub
// (so up to threads*batch calls are in flight) and waits for the batch;
// UNAVAILABLE answers (overload) are retried after a short pause (creation
// is idempotent). `on_created(i, time)` runs for request i when its
// answer arrives (any thread). Blocks until every request is answered.
CreateStats CreateTasks(
    const std::shared_ptr<const client::Connection>& connection,
    const std::vector<v1::CreateTaskRequest>& requests, int threads, int batch,
    const std::function<void(size_t, SteadyClock::time_point)>& on_created =
        nullptr);

// One long-polling ClaimWork call at a time that another thread can cancel.
// Thread-safe.
class CancellableClaimer {
 public:
  explicit CancellableClaimer(std::shared_ptr<const client::Connection> c);
  // Blocks until the server answers (up to its poll timeout), `timeout`
  // passes or Cancel() is called (CANCELLED).
  absl::StatusOr<v1::ClaimWorkResponse> Claim(
      const v1::ClaimWorkRequest& request,
      absl::Duration timeout = absl::Seconds(60));
  // Cancels the current call and every later one.
  void Cancel();

 private:
  std::shared_ptr<const client::Connection> connection_;
  std::unique_ptr<v1::Queue::Stub> stub_;
  std::mutex mu_;
  grpc::ClientContext* current_ = nullptr;  // guarded by mu_
  bool canceled_ = false;                   // guarded by mu_
};

// Simulated workers: threads that claim up to `capacity` tasks and report
// each completed at once, like a worker whose tasks take no time: the
// reports of one claim go out concurrently, one call per task.
class SimulatedWorkers {
 public:
  struct Options {
    std::string task_queue_id;
    int workers = 8;
    int capacity = 32;
    // Called for every claimed task with the time its claim arrived
    // (any worker thread; must be thread-safe and quick).
    std::function<void(const v1::ClaimedTask&, SteadyClock::time_point)>
        on_claim;
  };

  SimulatedWorkers(std::shared_ptr<const client::Connection> connection,
                   Options options);
  // Stops the workers.
  ~SimulatedWorkers();

  void Start();
  // Blocks until `count` tasks were reported completed or `timeout`
  // passes; returns whether the count was reached.
  bool WaitForCompleted(int64_t count, absl::Duration timeout);
  // Cancels the parked claims and joins the threads. Idempotent.
  void Stop();

  int64_t completed() const { return completed_.load(); }
  int64_t errors() const { return errors_.load(); }
  std::string first_error() const;
  // First claim that returned a task, and the last completed report.
  SteadyClock::time_point first_claim() const;
  SteadyClock::time_point last_report() const;
  // Merged per-call latencies (valid after Stop()).
  const Samples& claim_latency() const { return claim_latency_; }
  const Samples& report_latency() const { return report_latency_; }
  // Tasks per non-empty claim (valid after Stop()).
  double MeanBatch() const;

 private:
  void Loop(int index);

  std::shared_ptr<const client::Connection> connection_;
  Options options_;
  std::unique_ptr<v1::Queue::Stub> report_stub_;
  std::vector<std::unique_ptr<CancellableClaimer>> claimers_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> completed_{0};
  std::atomic<int64_t> errors_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string first_error_;                             // guarded by mu_
  std::optional<SteadyClock::time_point> first_claim_;  // guarded by mu_
  SteadyClock::time_point last_report_;                 // guarded by mu_
  Samples claim_latency_;                               // guarded by mu_
  Samples report_latency_;                              // guarded by mu_
  int64_t nonempty_claims_ = 0;                         // guarded by mu_
  int64_t claimed_tasks_ = 0;                           // guarded by mu_
};

// Short human-readable form of a status for tables and logs.
std::string Describe(const absl::Status& status);

}  // namespace drover::bench

#endif  // DROVER_BENCH_BENCH_UTIL_H_
