// TaskRun: one claimed task from claim to report.
//
// Validates the payload against the engine and plugins, drives the plugin
// hooks in run-stage order around the engine's sandbox, keeps the claim alive
// by reclaiming (from the sandbox's start until the resolution is about to
// be reported), and reports the resolution with retries while the claim is
// valid. A reclaim conflict (the run was canceled or taken away) aborts the
// sandbox and reports nothing. A run aborted by the worker (shutdown) or
// whose claim was lost skips the Finished hooks: plugins see Exception.
#ifndef DROVER_WORKER_TASK_RUN_H_
#define DROVER_WORKER_TASK_RUN_H_

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "drover/v1/queue.pb.h"
#include "engines/engine.h"
#include "plugins/plugin.h"
#include "worker/queue_api.h"

namespace drover::worker {

struct TaskRunOptions {
  WorkerIdentity worker;
  // Task directories and logs go below it.
  std::filesystem::path work_dir;
  std::string queue_address;
  // Reclaim once this fraction of the time left on the claim has passed.
  double reclaim_fraction = 0.5;
  // Shortest wait between reclaim attempts (also after a failed one).
  absl::Duration min_reclaim_interval = absl::Seconds(1);
  // First delay between report attempts; doubles up to 30 s.
  absl::Duration report_backoff = absl::Milliseconds(200);
  // Keep the task directory after the run (debugging).
  bool keep_task_dirs = false;
};

struct TaskRunSummary {
  std::string task_id;
  int run_id = 0;
  plugins::Outcome outcome;
  // The queue accepted the resolution.
  bool reported = false;
  // The claim was lost (reclaim conflict); nothing was reported.
  bool claim_lost = false;
  // Worker overhead: claim received (the TaskRun was made) -> sandbox
  // started, and sandbox ended -> resolution accepted. Zero when the
  // stage was not reached.
  absl::Duration claim_to_start = absl::ZeroDuration();
  absl::Duration finish_to_reported = absl::ZeroDuration();
  std::filesystem::path log_path;
};

class TaskRun {
 public:
  // Construct it as soon as the claim arrives: claim_to_start counts from
  // here. `api`, `engine`, `plugins` and `clock` outlive the run.
  TaskRun(v1::ClaimedTask claim, QueueApi& api, engines::Engine& engine,
          std::vector<plugins::Plugin*> plugins, TaskRunOptions options,
          const Clock& clock);
  ~TaskRun();

  TaskRun(const TaskRun&) = delete;
  TaskRun& operator=(const TaskRun&) = delete;

  // Runs the task to its end and reports it. Blocking; call once.
  TaskRunSummary Run();

  // Aborts the task from any thread; the run resolves
  // exception/`reason` (e.g. worker-shutdown). Idempotent.
  void Abort(const std::string& reason);

  // Makes a Report() waiting to retry give up now (the worker is exiting
  // and the queue stays unreachable). Idempotent, any thread.
  void StopRetryingReports();

 private:
  // The outcome of a failed stage, from the status it failed with.
  static plugins::Outcome ExceptionFor(const absl::Status& status);
  // Runs the stages; returns the outcome and sets summary timings. Stops
  // the reclaimer before returning.
  plugins::Outcome Execute(class TaskLog& log, TaskRunSummary& summary);
  void StartReclaimer();
  void ReclaimLoop();
  void StopReclaimer();
  bool Report(const plugins::Outcome& outcome, class TaskLog& log);

  v1::ClaimedTask claim_;
  QueueApi& api_;
  engines::Engine& engine_;
  const std::vector<plugins::Plugin*> plugins_;
  const TaskRunOptions options_;
  const Clock& clock_;
  const absl::Time claimed_at_;
  std::thread reclaimer_;

  std::mutex mu_;
  std::condition_variable cv_;
  engines::Sandbox* sandbox_ = nullptr;      // guarded by mu_
  std::optional<std::string> abort_reason_;  // guarded by mu_
  bool claim_lost_ = false;                  // guarded by mu_
  bool stop_reclaimer_ = false;              // guarded by mu_
  bool stop_reporting_ = false;              // guarded by mu_
  absl::Time taken_until_;                   // guarded by mu_
  class TaskLog* log_ = nullptr;             // guarded by mu_

  // The run's task credentials, renewed by reclaims. Plugins read them from
  // their own threads (TaskInfo::credentials), possibly after the hooks
  // returned, hence shared and with a lock of its own. Thread-safe.
  class SharedCredentials {
   public:
    explicit SharedCredentials(v1::TaskCredentials initial)
        : value_(std::move(initial)) {}
    v1::TaskCredentials Get() const {
      std::lock_guard<std::mutex> lock(mu_);
      return value_;
    }
    void Set(v1::TaskCredentials next) {
      std::lock_guard<std::mutex> lock(mu_);
      value_ = std::move(next);
    }

   private:
    mutable std::mutex mu_;
    v1::TaskCredentials value_;  // guarded by mu_
  };
  const std::shared_ptr<SharedCredentials> credentials_;
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_TASK_RUN_H_
