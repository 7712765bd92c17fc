// The worker's configuration: parsing, validation, the precedence of
// environment / config file / flags, and the registry's checks of engine
// and plugin sections.
#include "worker/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/clock.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "worker/components.h"
#include "worker/flags.h"
#include "worker/registry.h"

namespace drover::worker {
namespace {

namespace fs = std::filesystem;
using OrderedJson = nlohmann::ordered_json;

std::string FieldOf(const absl::Status& status) {
  return GetErrorInfo(status).details["field"];
}

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = drover::testing::MakeTempDir("drover-worker-config-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    registry_.AddEngine("native", MakeNativeEngine, CheckNativeEngineConfig);
    registry_.AddEngine("docker", MakeDockerEngine, CheckDockerEngineConfig);
    registry_.AddPlugin("logprefix", MakeLogPrefixPlugin);
    registry_.AddPlugin("env", MakeEnvPlugin);
    registry_.AddPlugin("maxruntime", MakeMaxRunTimePlugin);
    registry_.AddPlugin("exit-status", MakeExitStatusPlugin);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A valid document to start from.
  OrderedJson Valid() const {
    return OrderedJson{{"queue_url", "127.0.0.1:50051"},
                       {"worker_pool_id", "proj/linux"},
                       {"worker_group", "rack-1"},
                       {"worker_id", "host-1"},
                       {"capacity", 2},
                       {"work_dir", (dir_ / "work").string()}};
  }

  absl::Status Check(const OrderedJson& doc) {
    auto config = ParseWorkerConfig(doc);
    if (!config.ok()) return config.status();
    return registry_.CheckConfig(*config, clock_);
  }

  fs::path dir_;
  Registry registry_;
  SystemClock clock_;
};

TEST_F(ConfigTest, AValidConfigPassesAndChecksChangeNothing) {
  ASSERT_TRUE(Check(Valid()).ok()) << Check(Valid());
  // The work directory is created when the worker starts, not by a check.
  EXPECT_FALSE(fs::exists(dir_ / "work"));
  auto config = ParseWorkerConfig(Valid());
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->capacity, 2);
  EXPECT_EQ(config->queue_urls, std::vector<std::string>{"127.0.0.1:50051"});
  // Without a "plugins" key the worker runs the default set, in order.
  std::vector<std::string> names;
  for (const auto& [name, section] : config->plugins) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"logprefix", "env", "maxruntime",
                                             "exit-status"}));
}

TEST_F(ConfigTest, PluginsKeepTheOrderOfTheFile) {
  const fs::path file = dir_ / "worker.json";
  std::ofstream(file) << R"({"queue_url": "127.0.0.1:1",
    "worker_pool_id": "a/b",
    "plugins": {"maxruntime": {"max": 600}, "env": {}, "logprefix": {}}})";
  auto config = LoadWorkerConfig(file);
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->plugins.size(), 3u);
  EXPECT_EQ(config->plugins[0].first, "maxruntime");
  EXPECT_EQ(config->plugins[0].second["max"], 600);
  EXPECT_EQ(config->plugins[1].first, "env");
  EXPECT_EQ(config->plugins[2].first, "logprefix");
}

TEST_F(ConfigTest, ErrorsNameTheField) {
  struct Case {
    std::string key;
    OrderedJson value;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"capacity", 0, "capacity"},
      {"capacity", "4", "capacity"},
      {"capacity", 5000, "capacity"},
      {"worker_pool_id", "no-slash", "worker_pool_id"},
      {"worker_id", "has.dot", "worker_id"},
      {"queue_url", "ftp://x:1", "queue_url"},
      {"queue_url", "", "queue_url"},
      {"engine", "steam", "engine.name"},
      {"engine", OrderedJson{{"name", "native"}, {"config", 3}},
       "engine.config"},
      {"engine",
       OrderedJson{{"name", "native"},
                   {"config", {{"limits", {{"memory_mb", "lots"}}}}}},
       "engine.config.limits.memory_mb"},
      {"engine",
       OrderedJson{{"name", "docker"}, {"config", {{"max_cpus", -1}}}},
       "engine.config.max_cpus"},
      {"engine",
       OrderedJson{{"name", "docker"}, {"config", {{"colour", "blue"}}}},
       "engine.config.colour"},
      {"plugins", OrderedJson{{"teleport", OrderedJson::object()}},
       "plugins.teleport"},
      {"plugins", OrderedJson{{"maxruntime", {{"max", "forever"}}}},
       "plugins.maxruntime.max"},
      {"plugins", OrderedJson{{"env", {{"extra", {{"TASK_ID", "x"}}}}}},
       "plugins.env.extra.TASK_ID"},
      {"plugins", OrderedJson{{"exit-status", {{"retry", 1}}}},
       "plugins.exit-status"},
      {"plugins", OrderedJson::array({"env", "env"}), "plugins.env"},
      {"reclaim_fraction", 1.5, "reclaim_fraction"},
      {"log_format", "xml", "log_format"},
      {"log_level", "loud", "log_level"},
      {"metrics_listen", "nowhere", "metrics_listen"},
      {"work_dir", "relative/dir", "work_dir"},
      {"work_dir", (dir_ / "a-file" / "work").string(), "work_dir"},
      {"shutdown_grace_seconds", -1, "shutdown_grace_seconds"},
      {"credentials", OrderedJson{{"client_id", "w"}},
       "credentials.access_token"},
      {"credentials", OrderedJson{{"client", "w"}}, "credentials.client"},
      {"queue_urls", OrderedJson::array({"127.0.0.1:1", 7}), "queue_urls[1]"},
      {"colour", "blue", "colour"},
  };
  std::ofstream(dir_ / "a-file") << "not a directory";
  for (const Case& c : cases) {
    OrderedJson doc = Valid();
    if (c.key == "queue_urls") doc.erase("queue_url");
    doc[c.key] = c.value;
    absl::Status status = Check(doc);
    EXPECT_FALSE(status.ok()) << c.key << "=" << c.value.dump();
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError))
        << c.key << ": " << status;
    EXPECT_EQ(FieldOf(status), c.field)
        << c.key << "=" << c.value.dump() << ": " << status;
  }
}

TEST_F(ConfigTest, CredentialsComeFromATokenFile) {
  const fs::path token = dir_ / "token";
  std::ofstream(token) << "s3cret\n";
  OrderedJson doc = Valid();
  doc["credentials"] = {{"client_id", "worker/host-1"},
                        {"access_token_file", token.string()}};
  auto config = ParseWorkerConfig(doc);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->access_token, "s3cret");
  EXPECT_TRUE(Check(doc).ok());
  doc["credentials"]["access_token_file"] = (dir_ / "missing").string();
  EXPECT_EQ(FieldOf(Check(doc)), "credentials.access_token_file");
}

TEST_F(ConfigTest, RegistrationReplacesCredentials) {
  const fs::path secret = dir_ / "secret";
  std::ofstream(secret) << "static-secret\n";
  OrderedJson doc = Valid();
  doc["registration"] = {{"secret_file", secret.string()},
                         {"state_file", (dir_ / "state.json").string()},
                         {"reregister_fraction", 0.5},
                         {"heartbeat_seconds", 30}};
  auto config = ParseWorkerConfig(doc);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->registration_state_file, (dir_ / "state.json").string());
  EXPECT_EQ(config->reregister_fraction, 0.5);
  EXPECT_EQ(config->heartbeat_interval, absl::Seconds(30));
  EXPECT_EQ(ReadRegistrationProof(*config).value(), "static-secret");
  EXPECT_TRUE(Check(doc).ok()) << Check(doc);

  OrderedJson both = doc;
  both["credentials"] = {{"client_id", "worker/host-1"}, {"access_token", "t"}};
  EXPECT_EQ(FieldOf(Check(both)), "registration");
  OrderedJson bad = doc;
  bad["registration"]["reregister_fraction"] = 1.5;
  EXPECT_EQ(FieldOf(Check(bad)), "registration.reregister_fraction");
  bad = doc;
  bad["registration"]["heartbeat_seconds"] = 0;
  EXPECT_EQ(FieldOf(Check(bad)), "registration.heartbeat_seconds");
  bad = doc;
  bad["registration"]["unknown"] = 1;
  EXPECT_FALSE(ParseWorkerConfig(bad).ok());
}

TEST_F(ConfigTest, FlagsOverrideTheFileWhichOverridesTheEnvironment) {
  const fs::path file = dir_ / "worker.json";
  std::ofstream(file) << R"({"queue_urls": ["10.0.0.1:1", "10.0.0.2:1"],
    "worker_pool_id": "file/pool", "capacity": 3,
    "engine": {"name": "native", "config": {"kill_grace_seconds": 2}}})";
  std::map<std::string, std::string> env = {
      {"DROVER_WORKER_POOL_ID", "env/pool"},
      {"DROVER_WORKER_GROUP", "env-group"},
      {"DROVER_CAPACITY", "9"},
      {"DROVER_QUEUE_URL", "10.0.0.9:1"}};

  CLI::App app;
  WorkerFlags flags;
  AddWorkerFlags(app, &flags);
  std::vector<std::string> args = {"--capacity",  "5",        "--config",
                                   file.string(), "--engine", "native",
                                   "--worker-id", "flag-id"};
  std::vector<const char*> argv = {"drover-worker"};
  for (auto& arg : args) argv.push_back(arg.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());

  auto doc = MergeConfigSources(flags, client::FixedEnvironment(env));
  ASSERT_TRUE(doc.ok()) << doc.status();
  auto config = ParseWorkerConfig(*doc);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->capacity, 5);                  // flag
  EXPECT_EQ(config->worker_pool_id, "file/pool");  // file over env
  EXPECT_EQ(config->worker_group, "env-group");    // env
  EXPECT_EQ(config->worker_id, "flag-id");         // flag
  EXPECT_EQ(config->queue_urls,                    // file over env
            (std::vector<std::string>{"10.0.0.1:1", "10.0.0.2:1"}));
  // --engine naming the configured engine keeps its settings.
  EXPECT_EQ(config->engine_config["kill_grace_seconds"], 2);
}

TEST_F(ConfigTest, BadEnvironmentValuesNameTheVariable) {
  CLI::App app;
  WorkerFlags flags;
  AddWorkerFlags(app, &flags);
  std::vector<const char*> argv = {"drover-worker"};
  app.parse(static_cast<int>(argv.size()), argv.data());
  auto doc = MergeConfigSources(
      flags, client::FixedEnvironment({{"DROVER_CAPACITY", "four"}}));
  EXPECT_EQ(FieldOf(doc.status()), "DROVER_CAPACITY");
}

TEST_F(ConfigTest, BuildsTheConfiguredComponents) {
  auto config = ParseWorkerConfig(Valid());
  ASSERT_TRUE(config.ok());
  auto components = registry_.Build(*config, clock_);
  ASSERT_TRUE(components.ok()) << components.status();
  EXPECT_EQ(components->engine->Name(), "native");
  ASSERT_EQ(components->plugins.size(), 4u);
  EXPECT_EQ(components->plugins[0]->Name(), "logprefix");
  EXPECT_EQ(components->plugins[3]->Name(), "exit-status");
}

}  // namespace
}  // namespace drover::worker
