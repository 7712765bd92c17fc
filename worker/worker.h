// Worker: the daemon's main loop.
//
// Claims exactly its free capacity, runs each claim concurrently as a
// TaskRun, backs off with jitter while the queue is unreachable (never
// exits), stops claiming while the engine is unhealthy, and on shutdown
// lets running tasks finish within a grace period before aborting the rest
// as exception/worker-shutdown.
#ifndef DROVER_WORKER_WORKER_H_
#define DROVER_WORKER_WORKER_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "engines/engine.h"
#include "plugins/plugin.h"
#include "worker/queue_api.h"
#include "worker/task_run.h"

namespace drover::worker {

struct WorkerOptions {
  TaskRunOptions run;
  int capacity = 1;
  absl::Duration shutdown_grace = absl::Minutes(5);
  // Backoff after a failed claim: starts here, doubles up to the max.
  absl::Duration min_backoff = absl::Milliseconds(250);
  absl::Duration max_backoff = absl::Seconds(30);
  // How often an unhealthy engine is checked again.
  absl::Duration health_interval = absl::Seconds(5);
  // After the grace period, how long aborted runs may keep trying to report
  // exception/worker-shutdown to an unreachable queue before the worker
  // gives up on them (their claims then expire and the queue retries them).
  absl::Duration report_grace = absl::Seconds(30);
  // Task logs (<run.work_dir>/logs) older than this are deleted; checked
  // at start and then hourly. Zero keeps them forever.
  absl::Duration log_retention = absl::Hours(24 * 7);
};

struct WorkerStats {
  int64_t claimed = 0;
  int64_t completed = 0;
  int64_t failed = 0;
  int64_t exception = 0;
  int64_t claim_lost = 0;
  int64_t claim_errors = 0;
  int running = 0;
  int capacity = 0;
  bool engine_healthy = true;
  bool stopping = false;
};

class Worker {
 public:
  // Called with every finished run's summary (metrics, tests).
  using RunObserver = std::function<void(const TaskRunSummary&)>;

  Worker(QueueApi& api, engines::Engine& engine,
         std::vector<plugins::Plugin*> plugins, WorkerOptions options,
         const Clock& clock);
  ~Worker();

  // Runs the claim loop until Shutdown(); returns after every task run has
  // ended and been reported (or given up on, see report_grace). Claims ask
  // for exactly the free capacity (at most 100, the API's limit). Call
  // once.
  void Run();

  // Stops claiming, waits up to the grace period for running tasks, then
  // aborts the rest (resolved exception/worker-shutdown). Safe from any
  // thread, including a signal-watching one; returns at once.
  void Shutdown();

  // Set before Run(). Called from the run's thread, without locks held.
  void SetRunObserver(RunObserver observer);
  // Thread-safe snapshot.
  WorkerStats Stats() const;

 private:
  void StartRun(v1::ClaimedTask claim);
  void WaitForCapacityOrStop();
  void SleepUnlessStopping(absl::Duration d);
  // Joins and frees the runs that have ended.
  void ReapFinished();
  // Deletes task logs older than log_retention, at most hourly.
  void PruneLogs();
  // Shutdown: waits for the runs within the grace period, then aborts.
  void DrainRuns();

  QueueApi& api_;
  engines::Engine& engine_;
  const std::vector<plugins::Plugin*> plugins_;
  const WorkerOptions options_;
  const Clock& clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                                // guarded by mu_
  std::map<int64_t, std::unique_ptr<TaskRun>> running_;  // guarded by mu_
  std::map<int64_t, std::thread> threads_;               // guarded by mu_
  std::vector<int64_t> finished_;                        // guarded by mu_
  int64_t next_run_key_ = 0;                             // guarded by mu_
  WorkerStats stats_;                                    // guarded by mu_
  RunObserver observer_;  // set before Run(), then read-only
  absl::Time last_prune_ = absl::InfinitePast();  // claim loop only
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_WORKER_H_
