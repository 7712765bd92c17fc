#include "plugins/maxruntime/maxruntime_plugin.h"

#include "common/status.h"
#include "engines/native/native_engine.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/testing/plugin_harness.h"

namespace drover::plugins::maxruntime {
namespace {

using engines::native::testing::CaptureSink;
using engines::native::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

TEST(MaxRunTimeConfigTest, ReadsTheMaximum) {
  auto options = ParseMaxRunTimeConfig(json{{"max", 3600}});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->max_seconds, 3600);
  EXPECT_EQ(ParseMaxRunTimeConfig(json())->max_seconds, 86400);
  for (const json& bad :
       {json{{"max", 0}}, json{{"max", "60"}}, json{{"max", 1.5}}}) {
    auto parsed = ParseMaxRunTimeConfig(bad);
    EXPECT_EQ(GetErrorInfo(parsed.status()).details["field"],
              "plugins.maxruntime.max")
        << bad.dump();
  }
  EXPECT_EQ(GetErrorInfo(ParseMaxRunTimeConfig(json{{"limit", 1}}).status())
                .details["field"],
            "plugins.maxruntime.limit");
}

TEST(MaxRunTimePayloadTest, RequiredPositiveAndWithinTheMaximum) {
  MaxRunTimePlugin plugin({.max_seconds = 600});
  EXPECT_TRUE(plugin.ValidatePayload(json{{"maxRunTime", 600}}).ok());
  for (const json& bad :
       {json::object(), json{{"maxRunTime", 601}}, json{{"maxRunTime", 0}},
        json{{"maxRunTime", "60"}}, json{{"maxRunTime", 2.5}}}) {
    absl::Status status = plugin.ValidatePayload(bad);
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kMalformedPayload))
        << bad.dump();
    EXPECT_EQ(GetErrorInfo(status).details["field"], "payload.maxRunTime");
  }
  EXPECT_THAT(
      std::string(plugin.ValidatePayload(json{{"maxRunTime", 601}}).message()),
      HasSubstr("maximum of 600 s"));
}

class MaxRunTimeTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engines::native::NativeEngineOptions options;
    options.work_dir = dir_.path() / "work";
    auto engine = engines::native::NativeEngine::Create(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  testing::HarnessRun Run(const std::string& script, int max_run_time,
                          CaptureSink& log) {
    MaxRunTimePlugin plugin({});
    TaskInfo info =
        testing::MakeTaskInfo(json{{"command", {"/bin/sh", "-c", script}},
                                   {"maxRunTime", max_run_time}},
                              &log);
    return testing::RunTask(*engine_, {&plugin}, info, dir_.path() / "task");
  }

  TempDir dir_;
  std::unique_ptr<engines::native::NativeEngine> engine_;
};

TEST_F(MaxRunTimeTaskTest, OverrunningTaskIsKilledAndFails) {
  CaptureSink log;
  absl::Time start = absl::Now();
  // Exit 0 if it were allowed to finish: the failure must come from the
  // plugin, not from the task.
  auto run = Run(
      "(setsid sh -c 'while :; do echo beat >> beats; sleep 0.05; done' &); "
      "sleep 600; exit 0",
      1, log);
  absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(run.failed_stage.empty()) << run.failed_stage << run.failure;
  ASSERT_TRUE(run.result.has_value());
  EXPECT_TRUE(run.result->aborted);
  EXPECT_EQ(run.outcome.state, Outcome::State::kFailed);
  EXPECT_GE(took, absl::Milliseconds(950));
  EXPECT_LT(took, absl::Seconds(8));
  EXPECT_THAT(log.text(), HasSubstr("maxRunTime of 1 s exceeded"));
  EXPECT_THAT(log.text(), HasSubstr("resolving it failed"));
  // The daemon the task started died with it.
  auto size = std::filesystem::file_size(dir_.path() / "task" / "beats");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(std::filesystem::file_size(dir_.path() / "task" / "beats"), size);
}

TEST_F(MaxRunTimeTaskTest, TaskWithinItsTimeIsUntouched) {
  CaptureSink log;
  absl::Time start = absl::Now();
  auto run = Run("sleep 0.2; echo finished", 30, log);
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  EXPECT_FALSE(run.result->aborted);
  EXPECT_EQ(run.outcome.state, Outcome::State::kCompleted);
  // The timer stops with the task rather than running out its 30 s.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_THAT(log.text(), ::testing::Not(HasSubstr("maxRunTime")));
}

TEST_F(MaxRunTimeTaskTest, FailingTaskStaysFailedWithoutAMaxRunTimeNote) {
  CaptureSink log;
  auto run = Run("exit 3", 30, log);
  EXPECT_EQ(run.outcome.state, Outcome::State::kFailed);
  EXPECT_THAT(log.text(), ::testing::Not(HasSubstr("maxRunTime")));
}

TEST(MaxRunTimePluginTest, NewTaskPluginRefusesAPayloadWithoutMaxRunTime) {
  MaxRunTimePlugin plugin({});
  CaptureSink log;
  auto hook = plugin.NewTaskPlugin(
      testing::MakeTaskInfo(json{{"command", {"true"}}}, &log));
  EXPECT_TRUE(HasErrorCode(hook.status(), ErrorCode::kMalformedPayload));
}

}  // namespace
}  // namespace drover::plugins::maxruntime
