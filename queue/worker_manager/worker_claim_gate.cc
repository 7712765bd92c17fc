#include "queue/worker_manager/worker_claim_gate.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "spdlog/spdlog.h"

namespace drover::queue::worker_manager {

WorkerClaimGate::WorkerClaimGate(WorkerStore* store, const Clock* clock,
                                 WorkerClaimGateOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

std::string WorkerClaimGate::Key(const std::string& pool,
                                 const std::string& group,
                                 const std::string& id) {
  // Ids cannot hold a newline, so the key is unambiguous.
  return absl::StrCat(pool, "\n", group, "\n", id);
}

bool WorkerClaimGate::MayClaim(const std::string& task_queue_id,
                               const std::string& worker_group,
                               const std::string& worker_id) {
  const std::string key = Key(task_queue_id, worker_group, worker_id);
  const absl::Time now = clock_->Now();
  std::optional<Entry> entry;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end() && now - it->second.fetched < options_.cache_ttl) {
      entry = it->second;
    }
  }
  if (!entry.has_value()) {
    auto checked = store_->ClaimCheck(task_queue_id, worker_group, worker_id,
                                      options_.seen_granularity);
    Entry fresh;
    fresh.fetched = now;
    if (checked.ok()) {
      fresh.managed = true;
      fresh.quarantine_until = *checked;
    } else if (!HasErrorCode(checked.status(), ErrorCode::kResourceNotFound)) {
      // Failing open: a database hiccup must not stop every worker.
      spdlog::warn("claim check of worker {}/{} on {}: {}", worker_group,
                   worker_id, task_queue_id, checked.status().ToString());
      return true;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= options_.max_entries) cache_.clear();
    cache_[key] = fresh;
    entry = fresh;
  }
  return !(entry->managed && entry->quarantine_until.has_value() &&
           *entry->quarantine_until > now);
}

void WorkerClaimGate::NoteClaimed(const std::string& task_queue_id,
                                  const std::string& worker_group,
                                  const std::string& worker_id,
                                  const std::vector<std::string>& runs) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(Key(task_queue_id, worker_group, worker_id));
    // MayClaim ran just before; an unmanaged worker has no row to update.
    if (it != cache_.end() && !it->second.managed) return;
  }
  absl::Status s =
      store_->NoteClaimed(task_queue_id, worker_group, worker_id, runs);
  if (!s.ok()) {
    spdlog::warn("recording claims of worker {}/{} on {}: {}", worker_group,
                 worker_id, task_queue_id, s.ToString());
  }
}

void WorkerClaimGate::Forget(const std::string& pool, const std::string& group,
                             const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_.erase(Key(pool, group, id));
}

}  // namespace drover::queue::worker_manager
