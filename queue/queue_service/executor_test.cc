// BoundedExecutor: runs work off the caller's thread, refuses work beyond
// its queue bound and drains on shutdown.
#include "queue/queue_service/executor.h"

#include <atomic>
#include <future>
#include <thread>

#include "gtest/gtest.h"

namespace drover::queue::queue_service {
namespace {

TEST(BoundedExecutorTest, RunsTasksOnWorkerThreads) {
  BoundedExecutor executor(2, 16);
  std::promise<std::thread::id> ran_on;
  ASSERT_TRUE(executor.TrySubmit(
      [&] { ran_on.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(ran_on.get_future().get(), std::this_thread::get_id());
}

TEST(BoundedExecutorTest, RefusesWorkBeyondTheQueueBound) {
  BoundedExecutor executor(1, 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(executor.TrySubmit([&, released] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();  // The only worker is now busy.
  std::atomic<int> ran{0};
  EXPECT_TRUE(executor.TrySubmit([&] { ran++; }));
  EXPECT_TRUE(executor.TrySubmit([&] { ran++; }));
  EXPECT_FALSE(executor.TrySubmit([&] { ran++; }));
  EXPECT_EQ(executor.queued(), 2u);
  release.set_value();
  executor.Shutdown();
  EXPECT_EQ(ran.load(), 2);
}

TEST(BoundedExecutorTest, ShutdownDrainsQueuedWorkAndRefusesMore) {
  std::atomic<int> ran{0};
  BoundedExecutor executor(2, 1000);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(executor.TrySubmit([&] { ran++; }));
  }
  executor.Shutdown();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_FALSE(executor.TrySubmit([&] { ran++; }));
  executor.Shutdown();  // Idempotent.
}

}  // namespace
}  // namespace drover::queue::queue_service
