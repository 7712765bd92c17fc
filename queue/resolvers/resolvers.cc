#include "queue/resolvers/resolvers.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace drover::queue::resolvers {
namespace {

// After a failed pass (database down) wait at least this long before the
// next, so a broken database does not get hammered at batch speed.
constexpr absl::Duration kErrorBackoff = absl::Seconds(1);

}  // namespace

Resolvers::Resolvers(ResolverOptions options, store::Store* store)
    : options_(options), store_(store) {}

Resolvers::~Resolvers() { Stop(); }

void Resolvers::AddLoop(std::string name, absl::Duration interval,
                        std::function<absl::StatusOr<int>(int)> pass) {
  auto loop = std::make_unique<Loop>();
  loop->name = name;
  loop->interval = interval;
  loop->pass = std::move(pass);
  loop->stats.name = std::move(name);
  added_.push_back(std::move(loop));
}

void Resolvers::Start() {
  auto add = [this](std::string name, absl::Duration interval,
                    std::function<absl::StatusOr<int>(int)> pass) {
    auto loop = std::make_unique<Loop>();
    loop->name = name;
    loop->interval = interval;
    loop->pass = std::move(pass);
    loop->stats.name = std::move(name);
    loops_.push_back(std::move(loop));
  };
  add("claim-expiry", options_.claim_expiry_interval,
      [this](int batch) { return store_->ExpireClaims(batch); });
  add("deadline", options_.deadline_interval,
      [this](int batch) { return store_->ResolveDeadlines(batch); });
  add("expiry", options_.expiry_interval,
      [this](int batch) { return store_->DeleteExpiredTasks(batch); });
  add("task-group-resolution", options_.group_resolution_interval,
      [this](int batch) { return store_->AnnounceResolvedTaskGroups(batch); });
  add("event-retention", options_.event_retention_interval, [this](int batch) {
    return store_->DeleteExpiredEvents(options_.event_retention, batch);
  });
  for (auto& loop : added_) loops_.push_back(std::move(loop));
  added_.clear();
  for (auto& loop : loops_) {
    Loop* raw = loop.get();
    loop->thread = std::thread([this, raw] { RunLoop(raw); });
  }
}

void Resolvers::Kick() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++kicks_;
  }
  cv_.notify_all();
}

void Resolvers::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& loop : loops_) {
    if (loop->thread.joinable()) loop->thread.join();
  }
}

std::vector<ResolverStats> Resolvers::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ResolverStats> out;
  for (const auto& loop : loops_) out.push_back(loop->stats);
  return out;
}

void Resolvers::RunLoop(Loop* loop) {
  const int batch = std::max(options_.batch, 1);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    uint64_t kicks_seen = kicks_;
    lock.unlock();
    absl::StatusOr<int> handled = loop->pass(batch);
    lock.lock();
    loop->stats.passes++;
    absl::Duration wait = loop->interval;
    if (!handled.ok()) {
      loop->stats.errors++;
      wait = std::max(wait, kErrorBackoff);
      spdlog::warn("resolver {}: {}", loop->name, handled.status().ToString());
    } else {
      loop->stats.resolved += *handled;
      if (*handled > 0) {
        spdlog::debug("resolver {}: handled {}", loop->name, *handled);
      }
      // A full batch means more rows are probably waiting.
      if (*handled >= batch) continue;
    }
    cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                 [&] { return stopping_ || kicks_ != kicks_seen; });
  }
}

}  // namespace drover::queue::resolvers
