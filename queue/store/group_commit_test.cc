// GroupCommitter with real threads: outcomes reach their own callers,
// batches never exceed their size or share a key, no more batches run at
// once than allowed, and an idle committer runs a lone item at once.
#include "queue/store/group_commit.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace drover::queue::store {
namespace {

struct Item {
  int value;
  std::string key;
};

TEST(GroupCommitterTest, LoneItemRunsAloneAndAtOnce) {
  std::vector<size_t> sizes;
  GroupCommitter<Item, int> committer(
      {.max_batch = 8, .max_in_flight = 1},
      [&](const std::vector<const Item*>& items) {
        sizes.push_back(items.size());
        std::vector<int> out;
        for (const Item* item : items) out.push_back(item->value * 2);
        return out;
      },
      [](const Item& item) { return item.key; });
  EXPECT_EQ(committer.Submit({21, "a"}), 42);
  EXPECT_EQ(committer.Submit({5, "a"}), 10);
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 1}));
}

TEST(GroupCommitterTest, ConcurrentItemsShareBoundedBatches) {
  constexpr int kThreads = 64;
  constexpr size_t kMaxBatch = 8;
  std::atomic<int> running{0};
  std::atomic<int> most_running{0};
  std::atomic<bool> bad_batch{false};
  GroupCommitter<Item, int> committer(
      {.max_batch = kMaxBatch, .max_in_flight = 2},
      [&](const std::vector<const Item*>& items) {
        int now = ++running;
        int seen = most_running.load();
        while (now > seen && !most_running.compare_exchange_weak(seen, now)) {
        }
        std::vector<std::string> keys;
        for (const Item* item : items) keys.push_back(item->key);
        std::sort(keys.begin(), keys.end());
        if (items.size() > kMaxBatch ||
            std::adjacent_find(keys.begin(), keys.end()) != keys.end()) {
          bad_batch = true;
        }
        // Long enough that the other threads queue up behind this batch.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        --running;
        std::vector<int> out;
        for (const Item* item : items) out.push_back(item->value + 1000);
        return out;
      },
      [](const Item& item) { return item.key; });
  std::vector<int> answers(kThreads, -1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      // Pairs of threads share a key: they must land in different batches.
      answers[i] = committer.Submit({i, "k" + std::to_string(i / 2)});
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(answers[i], i + 1000) << i;
  EXPECT_FALSE(bad_batch.load());
  EXPECT_LE(most_running.load(), 2);
  auto [batches, items] = committer.BatchesAndItems();
  EXPECT_EQ(items, static_cast<size_t>(kThreads));
  // 64 items in batches of at most 8: at least 8 batches, and far fewer
  // than one per item since the threads queue behind 20 ms batches.
  EXPECT_GE(batches, static_cast<size_t>(kThreads) / kMaxBatch);
  EXPECT_LT(batches, static_cast<size_t>(kThreads) / 2);
}

}  // namespace
}  // namespace drover::queue::store
