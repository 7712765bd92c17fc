#include "engines/native/output_pump.h"

#include <unistd.h>

#include <mutex>
#include <string>

#include "gtest/gtest.h"

namespace drover::engines::native {
namespace {

TEST(OutputPumpTest, DeliversEverythingInOrder) {
  std::string received;
  std::mutex mu;
  auto pump = OutputPump::Start([&](std::string_view bytes) {
    std::lock_guard<std::mutex> lock(mu);
    received.append(bytes);
  });
  ASSERT_TRUE(pump.ok()) << pump.status();
  std::string sent;
  for (int i = 0; i < 100000; ++i) sent += std::to_string(i) + ",";
  // Written from another thread, as a task process would.
  std::thread writer([&, fd = (*pump)->write_fd()] {
    size_t off = 0;
    while (off < sent.size()) {
      ssize_t n = ::write(fd, sent.data() + off, sent.size() - off);
      ASSERT_GT(n, 0);
      off += static_cast<size_t>(n);
    }
  });
  writer.join();
  (*pump)->CloseWriteEnd();
  EXPECT_TRUE((*pump)->Finish(absl::Seconds(10)));
  EXPECT_EQ((*pump)->bytes(), sent.size());
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(received, sent);
}

TEST(OutputPumpTest, FinishGivesUpOnAWriterThatNeverCloses) {
  auto pump = OutputPump::Start([](std::string_view) {});
  ASSERT_TRUE(pump.ok());
  int held = ::dup((*pump)->write_fd());  // an escaped process's copy
  (*pump)->CloseWriteEnd();
  absl::Time start = absl::Now();
  EXPECT_FALSE((*pump)->Finish(absl::Milliseconds(100)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  ::close(held);
}

TEST(OutputPumpTest, DestructorStopsAnIdlePump) {
  auto pump = OutputPump::Start([](std::string_view) {});
  ASSERT_TRUE(pump.ok());
  EXPECT_GE((*pump)->write_fd(), 0);
  pump->reset();  // must not hang
  SUCCEED();
}

}  // namespace
}  // namespace drover::engines::native
