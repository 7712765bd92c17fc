// WorkerMetrics: the worker's Prometheus metrics, rendered as text
// exposition format for GET /metrics.
//
// Counters and gauges come from Worker::Stats(); the overhead summaries
// (claim -> sandbox started, sandbox ended -> resolution accepted) from
// the TaskRunSummary of every finished run, fed in through Observe().
// Quantiles are computed over the most recent runs (a bounded window), sum
// and count over all of them.
#ifndef DROVER_WORKER_METRICS_H_
#define DROVER_WORKER_METRICS_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "worker/task_run.h"
#include "worker/worker.h"

namespace drover::worker {

// One latency series: a window of recent samples plus running totals.
class DurationSummary {
 public:
  explicit DurationSummary(size_t window = 1024) : window_(window) {}
  void Add(absl::Duration d);
  // q in [0, 1] over the window; 0 when empty.
  double QuantileSeconds(double q) const;
  double sum_seconds() const { return sum_seconds_; }
  uint64_t count() const { return count_; }

 private:
  size_t window_;
  std::deque<double> recent_;
  double sum_seconds_ = 0;
  uint64_t count_ = 0;
};

class WorkerMetrics {
 public:
  // Records one finished run. Thread-safe (runs finish concurrently).
  void Observe(const TaskRunSummary& summary);

  // The exposition text for `stats`. Thread-safe.
  std::string Render(const WorkerStats& stats) const;

 private:
  mutable std::mutex mu_;
  DurationSummary claim_to_start_;      // guarded by mu_
  DurationSummary finish_to_reported_;  // guarded by mu_
  uint64_t reports_given_up_ = 0;       // guarded by mu_
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_METRICS_H_
