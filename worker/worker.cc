#include "worker/worker.h"

#include <algorithm>
#include <filesystem>
#include <random>

#include "common/status.h"
#include "spdlog/spdlog.h"

namespace drover::worker {
namespace {

// ClaimWorkRequest.max_tasks is 1..100.
constexpr int kMaxTasksPerClaim = 100;

}  // namespace

Worker::Worker(QueueApi& api, engines::Engine& engine,
               std::vector<plugins::Plugin*> plugins, WorkerOptions options,
               const Clock& clock)
    : api_(api),
      engine_(engine),
      plugins_(std::move(plugins)),
      options_(std::move(options)),
      clock_(clock) {
  stats_.capacity = options_.capacity;
}

Worker::~Worker() {
  Shutdown();
  std::map<int64_t, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [key, run] : running_) {
      run->Abort("worker-shutdown");
      run->StopRetryingReports();
    }
    threads.swap(threads_);
  }
  for (auto& [key, t] : threads) {
    if (t.joinable()) t.join();
  }
}

void Worker::ReapFinished() {
  std::vector<std::thread> done;
  std::vector<std::unique_ptr<TaskRun>> runs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int64_t key : finished_) {
      if (auto it = threads_.find(key); it != threads_.end()) {
        done.push_back(std::move(it->second));
        threads_.erase(it);
      }
      if (auto it = running_.find(key); it != running_.end()) {
        runs.push_back(std::move(it->second));
        running_.erase(it);
      }
    }
    finished_.clear();
  }
  // Each thread's last act was to mark itself finished, so these joins are
  // brief; they happen without the lock so the threads can take it.
  for (auto& t : done) t.join();
}

void Worker::PruneLogs() {
  if (options_.log_retention <= absl::ZeroDuration()) return;
  const absl::Time now = clock_.Now();
  if (now - last_prune_ < absl::Hours(1)) return;
  last_prune_ = now;
  namespace fs = std::filesystem;
  const fs::path dir = options_.run.work_dir / "logs";
  const auto cutoff = fs::file_time_type::clock::now() -
                      std::chrono::duration_cast<fs::file_time_type::duration>(
                          absl::ToChronoNanoseconds(options_.log_retention));
  std::error_code ec;
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::error_code entry_ec;
    if (!entry.is_regular_file(entry_ec)) continue;
    if (entry.last_write_time(entry_ec) < cutoff && !entry_ec) {
      if (fs::remove(entry.path(), entry_ec)) ++removed;
    }
  }
  if (removed > 0) {
    spdlog::info("removed {} task log(s) older than {:.0f} h", removed,
                 absl::ToDoubleHours(options_.log_retention));
  }
}

void Worker::SetRunObserver(RunObserver observer) {
  std::lock_guard<std::mutex> lock(mu_);
  observer_ = std::move(observer);
}

WorkerStats Worker::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  WorkerStats stats = stats_;
  stats.running = static_cast<int>(running_.size() - finished_.size());
  stats.stopping = stopping_;
  return stats;
}

void Worker::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  api_.CancelClaims();
}

void Worker::SleepUnlessStopping(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(d),
               [this] { return stopping_; });
}

void Worker::WaitForCapacityOrStop() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] {
    return stopping_ || static_cast<int>(running_.size() - finished_.size()) <
                            options_.capacity;
  });
}

void Worker::StartRun(v1::ClaimedTask claim) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t key = next_run_key_++;
  auto run = std::make_unique<TaskRun>(std::move(claim), api_, engine_,
                                       plugins_, options_.run, clock_);
  TaskRun* raw = run.get();
  running_.emplace(key, std::move(run));
  ++stats_.claimed;
  // A claim that arrived as the worker began stopping is resolved
  // worker-shutdown at once, so it is retried elsewhere without delay.
  if (stopping_) raw->Abort("worker-shutdown");
  threads_[key] = std::thread([this, key, raw] {
    TaskRunSummary summary = raw->Run();
    if (observer_) observer_(summary);
    std::lock_guard<std::mutex> guard(mu_);
    if (summary.claim_lost) {
      ++stats_.claim_lost;
    } else {
      switch (summary.outcome.state) {
        case plugins::Outcome::State::kCompleted:
          ++stats_.completed;
          break;
        case plugins::Outcome::State::kFailed:
          ++stats_.failed;
          break;
        case plugins::Outcome::State::kException:
          ++stats_.exception;
          break;
      }
    }
    // The TaskRun is destroyed by the loop, not by its own thread.
    finished_.push_back(key);
    cv_.notify_all();
  });
}

void Worker::Run() {
  if (auto s = engine_.CleanUpLeftovers(); !s.ok()) {
    spdlog::warn("cleaning up after an earlier worker failed: {}",
                 s.ToString());
  }
  std::mt19937_64 rng(std::random_device{}());
  absl::Duration backoff = options_.min_backoff;
  while (true) {
    WaitForCapacityOrStop();
    ReapFinished();
    PruneLogs();
    int free;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      free = options_.capacity -
             static_cast<int>(running_.size() - finished_.size());
    }
    if (free <= 0) continue;

    if (auto health = engine_.CheckHealth(); !health.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stats_.engine_healthy) {
          spdlog::error("engine {} is unhealthy, not claiming: {}",
                        engine_.Name(), health.ToString());
        }
        stats_.engine_healthy = false;
      }
      SleepUnlessStopping(options_.health_interval);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!stats_.engine_healthy) {
        spdlog::info("engine {} is healthy again", engine_.Name());
      }
      stats_.engine_healthy = true;
    }

    auto claims =
        api_.ClaimWork(options_.run.worker, std::min(free, kMaxTasksPerClaim));
    if (!claims.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.claim_errors;
      }
      // Jitter keeps a fleet of workers from returning in lockstep after a
      // queue outage.
      std::uniform_real_distribution<double> jitter(0.5, 1.5);
      absl::Duration delay = backoff * jitter(rng);
      spdlog::warn("claiming failed ({}); retrying in {:.0f} ms",
                   claims.status().ToString(),
                   absl::ToDoubleMilliseconds(delay));
      SleepUnlessStopping(delay);
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    backoff = options_.min_backoff;
    for (auto& claim : *claims) StartRun(std::move(claim));
  }
  DrainRuns();
  ReapFinished();
}

void Worker::DrainRuns() {
  std::unique_lock<std::mutex> lock(mu_);
  // Runs in `running_` that are not yet in `finished_` are still going.
  auto all_done = [this] { return finished_.size() == running_.size(); };
  auto wait_until = [&](absl::Time deadline) {
    while (!all_done()) {
      absl::Duration left = deadline - clock_.Now();
      if (left <= absl::ZeroDuration()) return;
      cv_.wait_for(lock,
                   absl::ToChronoNanoseconds(std::min(left, absl::Seconds(1))));
    }
  };
  if (!all_done()) {
    spdlog::info("shutting down: waiting up to {:.0f} s for {} running task(s)",
                 absl::ToDoubleSeconds(options_.shutdown_grace),
                 running_.size() - finished_.size());
  }
  wait_until(clock_.Now() + options_.shutdown_grace);
  if (all_done()) return;
  spdlog::warn("grace period over: aborting {} task(s) as worker-shutdown",
               running_.size() - finished_.size());
  for (auto& [key, run] : running_) run->Abort("worker-shutdown");
  wait_until(clock_.Now() + options_.report_grace);
  if (all_done()) return;
  spdlog::warn(
      "{} task(s) could not report in time; their claims will "
      "expire and the queue will retry them",
      running_.size() - finished_.size());
  for (auto& [key, run] : running_) run->StopRetryingReports();
  cv_.wait(lock, all_done);
}

}  // namespace drover::worker
