#include "plugins/logprefix/logprefix_plugin.h"

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "engines/native/native_engine.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/logprefix/timestamping_log_sink.h"
#include "plugins/testing/plugin_harness.h"

namespace drover::plugins::logprefix {
namespace {

using engines::native::testing::CaptureSink;
using engines::native::testing::TempDir;
using nlohmann::json;

absl::Time At(const char* rfc3339) {
  absl::Time t;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &error))
      << error;
  return t;
}

TEST(TimestampingLogSinkTest, StampsEachLineOnceAcrossWrites) {
  CaptureSink inner;
  FakeClock clock(At("2024-05-01T12:00:00.123Z"));
  TimestampingLogSink sink(&inner, clock);
  sink.Write("first\nsecond ha");
  clock.Advance(absl::Seconds(1));
  sink.Write("lf\nthird\n");
  sink.Write("");
  sink.Write("\n");
  EXPECT_EQ(inner.text(),
            "2024-05-01T12:00:00.123Z first\n"
            "2024-05-01T12:00:00.123Z second half\n"
            "2024-05-01T12:00:01.123Z third\n"
            "2024-05-01T12:00:01.123Z \n");
}

TEST(TimestampingLogSinkTest, ConcurrentWritersKeepLinesWhole) {
  CaptureSink inner;
  SystemClock clock;
  TimestampingLogSink sink(&inner, clock);
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        sink.Write(absl::StrCat("writer-", t, "-line-", i, "\n"));
      }
    });
  }
  for (auto& w : writers) w.join();
  std::vector<std::string> lines =
      absl::StrSplit(inner.text(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2000u);
  for (const auto& line : lines) {
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    ASSERT_EQ(parts.size(), 2u) << line;
    EXPECT_EQ(parts[0].size(), 24u) << line;  // 2024-05-01T12:00:00.123Z
    EXPECT_TRUE(absl::StartsWith(parts[1], "writer-")) << line;
  }
}

TEST(LogPrefixConfigTest, ReadsAndNamesTheField) {
  EXPECT_TRUE(ParseLogPrefixConfig(json{{"timestamps", true}})->timestamps);
  EXPECT_FALSE(ParseLogPrefixConfig(json())->timestamps);
  EXPECT_EQ(
      GetErrorInfo(ParseLogPrefixConfig(json{{"timestamps", "yes"}}).status())
          .details["field"],
      "plugins.logprefix.timestamps");
  EXPECT_EQ(GetErrorInfo(ParseLogPrefixConfig(json{{"colour", true}}).status())
                .details["field"],
            "plugins.logprefix.colour");
}

class LogPrefixTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engines::native::NativeEngineOptions options;
    options.work_dir = dir_.path() / "work";
    auto engine = engines::native::NativeEngine::Create(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  std::string Run(bool timestamps) {
    LogPrefixPlugin plugin({.timestamps = timestamps}, clock_);
    CaptureSink log;
    auto run = testing::RunTask(
        *engine_, {&plugin},
        testing::MakeTaskInfo(
            json{{"command",
                  {"/bin/sh", "-c",
                   "echo out-one; echo err-two >&2; printf tail"}}},
            &log));
    EXPECT_TRUE(run.failed_stage.empty()) << run.failure;
    EXPECT_EQ(run.outcome.state, Outcome::State::kCompleted);
    return log.text();
  }

  TempDir dir_;
  std::unique_ptr<engines::native::NativeEngine> engine_;
  FakeClock clock_{At("2024-05-01T12:00:00Z")};
};

constexpr char kHeader[] =
    "[drover] worker: test-group/test-worker-1\n"
    "[drover] task: fN1eXoAnTQ2-yX0V6_0a3w run 2 (task queue "
    "test-provisioner/test-pool)\n"
    "[drover] engine: native\n"
    "[drover] started: 2024-05-01T12:00:00.000Z\n";

TEST_F(LogPrefixTaskTest, HeaderComesFirst) {
  EXPECT_EQ(Run(false), std::string(kHeader) + "out-one\nerr-two\ntail");
}

TEST_F(LogPrefixTaskTest, TaskLinesAreTimestamped) {
  EXPECT_EQ(Run(true), std::string(kHeader) +
                           "2024-05-01T12:00:00.000Z out-one\n"
                           "2024-05-01T12:00:00.000Z err-two\n"
                           "2024-05-01T12:00:00.000Z tail");
}

}  // namespace
}  // namespace drover::plugins::logprefix
