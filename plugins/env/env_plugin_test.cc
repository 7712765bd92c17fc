#include "plugins/env/env_plugin.h"

#include <cstdlib>

#include "absl/strings/str_split.h"
#include "common/status.h"
#include "engines/native/native_engine.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/testing/plugin_harness.h"

namespace drover::plugins::env {
namespace {

using engines::native::testing::CaptureSink;
using engines::native::testing::TempDir;
using nlohmann::json;

std::string ConfigField(const json& config) {
  auto parsed = ParseEnvPluginConfig(config);
  EXPECT_TRUE(HasErrorCode(parsed.status(), ErrorCode::kInputError))
      << config.dump();
  return GetErrorInfo(parsed.status()).details["field"];
}

std::string PayloadField(const json& payload) {
  EnvPlugin plugin({});
  absl::Status status = plugin.ValidatePayload(payload);
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kMalformedPayload))
      << payload.dump();
  return GetErrorInfo(status).details["field"];
}

TEST(EnvPluginConfigTest, ReadsExtras) {
  auto options = ParseEnvPluginConfig(json{{"extra", {{"LANG", "C.UTF-8"}}}});
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->extra.at("LANG"), "C.UTF-8");
  EXPECT_TRUE(ParseEnvPluginConfig(json()).ok());
}

TEST(EnvPluginConfigTest, ErrorsNameTheField) {
  EXPECT_EQ(ConfigField(json{{"extra", {{"TASK_ID", "x"}}}}),
            "plugins.env.extra.TASK_ID");
  EXPECT_EQ(ConfigField(json{{"extra", {{"A", 1}}}}), "plugins.env.extra.A");
  EXPECT_EQ(ConfigField(json{{"extra", {{"A=B", "x"}}}}),
            "plugins.env.extra.A=B");
  EXPECT_EQ(ConfigField(json{{"extra", json::array()}}), "plugins.env.extra");
  EXPECT_EQ(ConfigField(json{{"extras", json::object()}}),
            "plugins.env.extras");
  EXPECT_EQ(ConfigField(json::array()), "plugins.env");
}

TEST(EnvPluginPayloadTest, ErrorsNameTheField) {
  EXPECT_EQ(PayloadField(json{{"env", "A=1"}}), "payload.env");
  EXPECT_EQ(PayloadField(json{{"env", {{"A", 1}}}}), "payload.env.A");
  EXPECT_EQ(PayloadField(json{{"env", {{"TASK_ID", "spoof"}}}}),
            "payload.env.TASK_ID");
  EXPECT_EQ(PayloadField(json{{"env", {{"DROVER_ACCESS_TOKEN", "x"}}}}),
            "payload.env.DROVER_ACCESS_TOKEN");
  EnvPlugin plugin({});
  EXPECT_TRUE(plugin.ValidatePayload(json{{"command", {"true"}}}).ok());
  EXPECT_TRUE(plugin.ValidatePayload(json{{"env", {{"A", "1"}}}}).ok());
  EXPECT_EQ(plugin.PayloadKeys(), std::vector<std::string>{"env"});
}

// Runs /usr/bin/env in a native sandbox through the env plugin and returns
// what the task saw.
std::map<std::string, std::string> TaskEnvironment(
    const EnvPluginOptions& options, testing::HarnessRun* run_out,
    bool with_certificate = true) {
  TempDir dir;
  engines::native::NativeEngineOptions engine_options;
  engine_options.work_dir = dir.path() / "work";
  auto engine = engines::native::NativeEngine::Create(engine_options);
  EXPECT_TRUE(engine.ok()) << engine.status();
  EnvPlugin plugin(options);
  CaptureSink log;
  TaskInfo info = testing::MakeTaskInfo(
      json{{"command", {"/usr/bin/env"}},
           {"env", {{"FROM_PAYLOAD", "payload value"}, {"SHARED", "payload"}}}},
      &log);
  if (!with_certificate) {
    info.credentials = [] {
      return TaskCredentials{.client_id = "task-client/fN1eXoAnTQ2-yX0V6_0a3w/2",
                             .access_token = "task-access-token"};
    };
  }
  *run_out = testing::RunTask(**engine, {&plugin}, info);
  std::map<std::string, std::string> env;
  for (absl::string_view line :
       absl::StrSplit(log.text(), '\n', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(line, absl::MaxSplits('=', 1));
    env[kv.first] = kv.second;
  }
  return env;
}

TEST(EnvPluginTest, TaskSeesPayloadExtrasIdsAndCredentials) {
  ::setenv("DROVER_WORKER_ONLY_SECRET", "never-in-a-task", 1);
  EnvPluginOptions options;
  options.extra = {{"FROM_CONFIG", "operator"}, {"SHARED", "config"}};
  testing::HarnessRun run;
  auto env = TaskEnvironment(options, &run);
  ::unsetenv("DROVER_WORKER_ONLY_SECRET");
  ASSERT_TRUE(run.failed_stage.empty()) << run.failed_stage << run.failure;
  EXPECT_EQ(run.outcome.state, Outcome::State::kCompleted);

  EXPECT_EQ(env["FROM_PAYLOAD"], "payload value");
  EXPECT_EQ(env["FROM_CONFIG"], "operator");
  EXPECT_EQ(env["SHARED"], "payload");  // the task's choice wins over extras
  EXPECT_EQ(env["TASK_ID"], "fN1eXoAnTQ2-yX0V6_0a3w");
  EXPECT_EQ(env["RUN_ID"], "2");
  EXPECT_EQ(env["DROVER_TASK_QUEUE_ID"], "test-provisioner/test-pool");
  EXPECT_EQ(env["DROVER_WORKER_GROUP"], "test-group");
  EXPECT_EQ(env["DROVER_WORKER_ID"], "test-worker-1");
  EXPECT_EQ(env["DROVER_QUEUE_URL"], "127.0.0.1:50051");
  EXPECT_EQ(env["DROVER_URL"], "127.0.0.1:50051");
  EXPECT_EQ(env["DROVER_CLIENT_ID"], "task-client/fN1eXoAnTQ2-yX0V6_0a3w/2");
  EXPECT_EQ(env["DROVER_ACCESS_TOKEN"], "task-access-token");
  EXPECT_EQ(env["DROVER_CERTIFICATE"], "eyJjZXJ0IjoidGVzdCJ9");
  EXPECT_EQ(env.count("DROVER_WORKER_ONLY_SECRET"), 0u);
}

TEST(EnvPluginTest, MissingCredentialsAreLeftUnset) {
  testing::HarnessRun run;
  auto env = TaskEnvironment({}, &run, /*with_certificate=*/false);
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  EXPECT_EQ(env.count("DROVER_CERTIFICATE"), 0u);
  EXPECT_EQ(env["DROVER_ACCESS_TOKEN"], "task-access-token");
}

TEST(EnvPluginTest, NewEnvPluginReadsConfig) {
  auto plugin = NewEnvPlugin(json{{"extra", {{"X", "y"}}}});
  ASSERT_TRUE(plugin.ok());
  EXPECT_EQ((*plugin)->Name(), "env");
  EXPECT_FALSE(NewEnvPlugin(json{{"extra", {{"RUN_ID", "1"}}}}).ok());
}

}  // namespace
}  // namespace drover::plugins::env
