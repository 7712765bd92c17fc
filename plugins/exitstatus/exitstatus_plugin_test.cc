#include "plugins/exitstatus/exitstatus_plugin.h"

#include "common/status.h"
#include "engines/native/native_engine.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/maxruntime/maxruntime_plugin.h"
#include "plugins/testing/plugin_harness.h"

namespace drover::plugins::exitstatus {
namespace {

using engines::native::testing::CaptureSink;
using engines::native::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

std::string FieldOf(const json& payload) {
  ExitStatusPlugin plugin;
  absl::Status status = plugin.ValidatePayload(payload);
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kMalformedPayload))
      << payload.dump();
  return GetErrorInfo(status).details["field"];
}

TEST(ExitStatusPayloadTest, ErrorsNameTheField) {
  EXPECT_EQ(FieldOf(json{{"onExitStatus", {1, 2}}}), "payload.onExitStatus");
  EXPECT_EQ(FieldOf(json{{"onExitStatus", {{"retry", 42}}}}),
            "payload.onExitStatus.retry");
  EXPECT_EQ(FieldOf(json{{"onExitStatus", {{"retry", {42, 0}}}}}),
            "payload.onExitStatus.retry[1]");
  EXPECT_EQ(FieldOf(json{{"onExitStatus", {{"retry", {256}}}}}),
            "payload.onExitStatus.retry[0]");
  EXPECT_EQ(FieldOf(json{{"onExitStatus", {{"retry", {"42"}}}}}),
            "payload.onExitStatus.retry[0]");
  EXPECT_EQ(FieldOf(json{{"onExitStatus", {{"purge", {1}}}}}),
            "payload.onExitStatus.purge");
  ExitStatusPlugin plugin;
  EXPECT_TRUE(plugin.ValidatePayload(json{{"command", {"true"}}}).ok());
  EXPECT_TRUE(
      plugin.ValidatePayload(json{{"onExitStatus", {{"retry", {1, 255}}}}})
          .ok());
}

TEST(ExitStatusPluginTest, TakesNoConfiguration) {
  EXPECT_TRUE(NewExitStatusPlugin(json()).ok());
  EXPECT_TRUE(NewExitStatusPlugin(json::object()).ok());
  EXPECT_EQ(GetErrorInfo(NewExitStatusPlugin(json{{"x", 1}}).status())
                .details["field"],
            "plugins.exit-status");
  EXPECT_EQ((*NewExitStatusPlugin(json()))->Name(), "exit-status");
}

class ExitStatusTaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engines::native::NativeEngineOptions options;
    options.work_dir = dir_.path() / "work";
    auto engine = engines::native::NativeEngine::Create(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  testing::HarnessRun Run(const std::string& script, const json& retry,
                          CaptureSink& log,
                          std::vector<Plugin*> extra_plugins = {},
                          int max_run_time = 60) {
    json payload = {{"command", {"/bin/sh", "-c", script}},
                    {"maxRunTime", max_run_time}};
    if (!retry.is_null()) payload["onExitStatus"] = {{"retry", retry}};
    std::vector<Plugin*> plugins = extra_plugins;
    plugins.push_back(&plugin_);
    return testing::RunTask(*engine_, plugins,
                            testing::MakeTaskInfo(payload, &log));
  }

  TempDir dir_;
  std::unique_ptr<engines::native::NativeEngine> engine_;
  ExitStatusPlugin plugin_;
};

TEST_F(ExitStatusTaskTest, ZeroCompletes) {
  CaptureSink log;
  auto run = Run("exit 0", json::array({42}), log);
  EXPECT_EQ(run.outcome.state, Outcome::State::kCompleted);
}

TEST_F(ExitStatusTaskTest, ListedCodeIsAnIntermittentException) {
  CaptureSink log;
  auto run = Run("echo flaky; exit 42", json::array({7, 42}), log);
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  EXPECT_EQ(run.outcome.state, Outcome::State::kException);
  EXPECT_EQ(run.outcome.reason, "intermittent-task");
  EXPECT_THAT(log.text(), HasSubstr("exit code 42 is listed in "
                                    "onExitStatus.retry"));
}

TEST_F(ExitStatusTaskTest, OtherCodesFail) {
  for (int code : {1, 41, 43}) {
    CaptureSink log;
    auto run = Run(absl::StrCat("exit ", code), json::array({42}), log);
    EXPECT_EQ(run.outcome.state, Outcome::State::kFailed) << code;
    EXPECT_THAT(log.text(), HasSubstr(absl::StrCat("exit code ", code,
                                                   ": the task failed")));
  }
  CaptureSink log;
  auto run = Run("exit 42", json(), log);  // no retry list at all
  EXPECT_EQ(run.outcome.state, Outcome::State::kFailed);
}

TEST_F(ExitStatusTaskTest, DeathBySignalFailsEvenIfItsShellCodeIsListed) {
  CaptureSink log;
  auto run = Run("kill -KILL $$", json::array({137}), log);
  ASSERT_TRUE(run.result.has_value());
  EXPECT_EQ(run.result->signal, SIGKILL);
  EXPECT_EQ(run.outcome.state, Outcome::State::kFailed);
}

TEST_F(ExitStatusTaskTest, AnAbortedRunKeepsTheMaxRunTimeFailure) {
  maxruntime::MaxRunTimePlugin max_run_time({});
  for (bool exit_status_first : {true, false}) {
    CaptureSink log;
    // Killed by SIGTERM: 143 is listed but must not turn into a retry.
    json payload = {{"command", {"/bin/sh", "-c", "sleep 600"}},
                    {"maxRunTime", 1},
                    {"onExitStatus", {{"retry", {143}}}}};
    std::vector<Plugin*> order =
        exit_status_first ? std::vector<Plugin*>{&plugin_, &max_run_time}
                          : std::vector<Plugin*>{&max_run_time, &plugin_};
    auto run =
        testing::RunTask(*engine_, order, testing::MakeTaskInfo(payload, &log));
    ASSERT_TRUE(run.result.has_value());
    EXPECT_TRUE(run.result->aborted);
    EXPECT_EQ(run.outcome.state, Outcome::State::kFailed)
        << "exit-status first: " << exit_status_first;
  }
}

}  // namespace
}  // namespace drover::plugins::exitstatus
