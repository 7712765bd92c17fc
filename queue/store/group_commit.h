// GroupCommitter: lets concurrent callers share one database statement and
// one commit.
//
// Each caller submits one item and blocks until its outcome is known. While
// fewer than `max_in_flight` batches are running, a caller whose item is
// queued takes the queued items (up to `max_batch`, oldest first) and runs
// them as one batch on its own thread; everyone else waits for the result.
// An idle system therefore runs each item at once, alone (no added
// latency), while a busy one forms batches whose size follows the load:
// the commits and per-statement costs that bounded throughput are paid
// once per batch instead of once per item.
//
// Items whose keys are equal never share a batch (a batch statement may
// touch each row once); the later one waits for the next batch.
//
// Thread-safety: Submit may be called from any number of threads. The
// batch function runs on a caller's thread, at most `max_in_flight` at a
// time, and must not throw.
#ifndef DROVER_QUEUE_STORE_GROUP_COMMIT_H_
#define DROVER_QUEUE_STORE_GROUP_COMMIT_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace drover::queue::store {

template <typename Item, typename Outcome>
class GroupCommitter {
 public:
  struct Options {
    // Most items in one batch.
    size_t max_batch = 64;
    // Most batches running at once (a batch holds a database connection).
    int max_in_flight = 2;
  };
  // Runs a batch; returns exactly one outcome per item, in order.
  using BatchFn = std::function<std::vector<Outcome>(
      const std::vector<const Item*>& items)>;
  // The key two items of one batch must not share.
  using KeyFn = std::function<std::string(const Item&)>;

  GroupCommitter(Options options, BatchFn run_batch, KeyFn key)
      : options_(options),
        run_batch_(std::move(run_batch)),
        key_(std::move(key)) {
    if (options_.max_batch < 1) options_.max_batch = 1;
    if (options_.max_in_flight < 1) options_.max_in_flight = 1;
  }

  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Runs `item` in some batch and returns its outcome. Blocks.
  Outcome Submit(const Item& item) {
    Slot slot{&item};
    std::unique_lock<std::mutex> lock(mu_);
    queue_.push_back(&slot);
    while (!slot.outcome.has_value()) {
      if (in_flight_ < options_.max_in_flight && !queue_.empty()) {
        RunOneBatch(lock);
      } else {
        slot.cv.wait(lock);
      }
    }
    return std::move(*slot.outcome);
  }

  // Batches run so far and the items they held (for tests and metrics).
  std::pair<size_t, size_t> BatchesAndItems() const {
    std::lock_guard<std::mutex> lock(mu_);
    return {batches_, items_};
  }

 private:
  // One waiting caller. Each has its own condition variable: waking only
  // the callers a batch answered (and one to lead the next batch) keeps a
  // completed batch from waking every waiting thread.
  struct Slot {
    const Item* item;
    std::optional<Outcome> outcome;
    std::condition_variable cv;
  };

  // Takes a batch off the queue, runs it unlocked, stores the outcomes.
  void RunOneBatch(std::unique_lock<std::mutex>& lock) {
    std::vector<Slot*> batch;
    std::set<std::string> keys;
    for (auto it = queue_.begin();
         it != queue_.end() && batch.size() < options_.max_batch;) {
      if (keys.insert(key_(*(*it)->item)).second) {
        batch.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    ++in_flight_;
    ++batches_;
    items_ += batch.size();
    lock.unlock();
    std::vector<const Item*> items;
    items.reserve(batch.size());
    for (Slot* slot : batch) items.push_back(slot->item);
    std::vector<Outcome> outcomes = run_batch_(items);
    lock.lock();
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i]->outcome.emplace(std::move(outcomes.at(i)));
      batch[i]->cv.notify_one();
    }
    --in_flight_;
    // The oldest waiting caller leads the next batch.
    if (!queue_.empty()) queue_.front()->cv.notify_one();
  }

  Options options_;
  const BatchFn run_batch_;
  const KeyFn key_;
  mutable std::mutex mu_;
  std::deque<Slot*> queue_;  // Guarded by mu_.
  int in_flight_ = 0;        // Guarded by mu_.
  size_t batches_ = 0;       // Guarded by mu_.
  size_t items_ = 0;         // Guarded by mu_.
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_GROUP_COMMIT_H_
