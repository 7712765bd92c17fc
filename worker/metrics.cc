#include "worker/metrics.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace drover::worker {
namespace {

void Header(std::string* out, const char* name, const char* type,
            const char* help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
}

void Sample(std::string* out, const char* name, double value) {
  absl::StrAppend(out, name, " ", absl::StrFormat("%.9g", value), "\n");
}

void Summary(std::string* out, const char* name, const char* help,
             const DurationSummary& summary) {
  Header(out, name, "summary", help);
  for (double q : {0.5, 0.9, 0.99}) {
    absl::StrAppend(out, name, "{quantile=\"", absl::StrFormat("%g", q), "\"} ",
                    absl::StrFormat("%.9g", summary.QuantileSeconds(q)), "\n");
  }
  absl::StrAppend(out, name, "_sum ",
                  absl::StrFormat("%.9g", summary.sum_seconds()), "\n");
  absl::StrAppend(out, name, "_count ", summary.count(), "\n");
}

}  // namespace

void DurationSummary::Add(absl::Duration d) {
  const double seconds = absl::ToDoubleSeconds(d);
  recent_.push_back(seconds);
  if (recent_.size() > window_) recent_.pop_front();
  sum_seconds_ += seconds;
  ++count_;
}

double DurationSummary::QuantileSeconds(double q) const {
  if (recent_.empty()) return 0;
  std::vector<double> sorted(recent_.begin(), recent_.end());
  std::sort(sorted.begin(), sorted.end());
  // Nearest rank: the smallest sample with at least q of them at or below.
  size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void WorkerMetrics::Observe(const TaskRunSummary& summary) {
  std::lock_guard<std::mutex> lock(mu_);
  // Runs that never started (malformed payload) or never reported say
  // nothing about the worker's overhead.
  if (summary.claim_to_start > absl::ZeroDuration()) {
    claim_to_start_.Add(summary.claim_to_start);
  }
  if (summary.reported) {
    finish_to_reported_.Add(summary.finish_to_reported);
  } else if (!summary.claim_lost) {
    ++reports_given_up_;
  }
}

std::string WorkerMetrics::Render(const WorkerStats& stats) const {
  std::string out;
  Header(&out, "drover_worker_tasks_claimed_total", "counter",
         "Task runs claimed from the queue.");
  Sample(&out, "drover_worker_tasks_claimed_total", stats.claimed);
  Header(&out, "drover_worker_tasks_completed_total", "counter",
         "Task runs resolved completed.");
  Sample(&out, "drover_worker_tasks_completed_total", stats.completed);
  Header(&out, "drover_worker_tasks_failed_total", "counter",
         "Task runs resolved failed.");
  Sample(&out, "drover_worker_tasks_failed_total", stats.failed);
  Header(&out, "drover_worker_tasks_exception_total", "counter",
         "Task runs resolved exception (any reason).");
  Sample(&out, "drover_worker_tasks_exception_total", stats.exception);
  Header(&out, "drover_worker_claims_lost_total", "counter",
         "Task runs aborted because the claim was lost (reclaim refused or "
         "expired).");
  Sample(&out, "drover_worker_claims_lost_total", stats.claim_lost);
  Header(&out, "drover_worker_claim_errors_total", "counter",
         "ClaimWork calls that failed (queue unreachable, refused).");
  Sample(&out, "drover_worker_claim_errors_total", stats.claim_errors);
  Header(&out, "drover_worker_tasks_running", "gauge",
         "Task runs in progress.");
  Sample(&out, "drover_worker_tasks_running", stats.running);
  Header(&out, "drover_worker_capacity", "gauge",
         "Task runs this worker runs at once.");
  Sample(&out, "drover_worker_capacity", stats.capacity);
  Header(&out, "drover_worker_engine_healthy", "gauge",
         "1 while the engine reports healthy (the worker claims only then).");
  Sample(&out, "drover_worker_engine_healthy", stats.engine_healthy ? 1 : 0);
  Header(&out, "drover_worker_stopping", "gauge",
         "1 once shutdown began (no more claims).");
  Sample(&out, "drover_worker_stopping", stats.stopping ? 1 : 0);

  std::lock_guard<std::mutex> lock(mu_);
  Header(&out, "drover_worker_reports_given_up_total", "counter",
         "Resolutions the queue never accepted (claim lapsed or worker "
         "exiting).");
  Sample(&out, "drover_worker_reports_given_up_total",
         static_cast<double>(reports_given_up_));
  Summary(&out, "drover_worker_claim_to_start_seconds",
          "Worker overhead from receiving a claim to the task's start.",
          claim_to_start_);
  Summary(&out, "drover_worker_finish_to_reported_seconds",
          "Worker overhead from the task's end to the queue accepting the "
          "resolution.",
          finish_to_reported_);
  return out;
}

}  // namespace drover::worker
