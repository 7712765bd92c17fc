// The engine conformance suite for the macOS engine, run on Linux with the
// useradd user manager: every task runs as a freshly created OS user that
// is deleted afterwards, so everything but dscl itself runs for real.
// Needs root (the suite reports SKIPPED otherwise).
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>

#include "common/process/command_runner.h"
#include "common/status.h"
#include "engines/conformance/engine_conformance.h"
#include "engines/macos/macos_engine.h"

namespace drover::engines::conformance {
namespace {

using macos::MacosEngine;
using macos::MacosEngineOptions;
using macos::UserManagerKind;

// Task users of this suite: their own prefix and uid range, so other test
// binaries running at the same time never meet them.
constexpr char kPrefix[] = "drovercf-";
constexpr char kHomeRoot[] = "/tmp/drover-macos-conformance-homes";

// The user manager lives as long as the test binary: engines are made per
// test but share it, as a worker's engine shares one manager.
struct SharedUsers {
  process::SubprocessCommandRunner runner;
  std::unique_ptr<users::UserManager> manager;
  MacosEngineOptions options;
};

SharedUsers& Users() {
  static SharedUsers* shared = [] {
    auto* made = new SharedUsers;
    made->options = macos::DefaultMacosEngineOptions(UserManagerKind::kUseradd);
    made->options.user.name_prefix = kPrefix;
    made->options.user.uid_floor = 43000;
    made->options.user.uid_ceiling = 43999;
    made->options.user.groups = {"users"};
    made->options.user_manager_options.home_root = kHomeRoot;
    std::filesystem::create_directories(kHomeRoot);
    ::chmod(kHomeRoot, 0755);
    made->manager = macos::MakeUserManager(made->options, made->runner);
    return made;
  }();
  return *shared;
}

nlohmann::json Payload(const std::vector<std::string>& commands,
                       const std::map<std::string, std::string>& env,
                       int max_run_time_seconds) {
  nlohmann::json command = nlohmann::json::array();
  for (const auto& script : commands) {
    command.push_back({"/bin/sh", "-c", script});
  }
  return {
      {"command", command}, {"env", env}, {"maxRunTime", max_run_time_seconds}};
}

EngineFactory MacosOnLinuxFactory() {
  using nlohmann::json;
  EngineFactory factory;
  factory.name = "UseraddUsers";
  factory.make_engine = [](const std::filesystem::path& work_dir)
      -> absl::StatusOr<std::unique_ptr<Engine>> {
    SharedUsers& users = Users();
    MacosEngineOptions options = users.options;
    options.native.work_dir = work_dir;
    DROVER_ASSIGN_OR_RETURN(auto engine,
                            MacosEngine::Create(options, users.manager.get()));
    // As the worker does at start: nothing of an earlier run survives.
    DROVER_RETURN_IF_ERROR(engine->CleanUpLeftovers());
    return std::unique_ptr<Engine>(std::move(engine));
  };
  factory.build_payload = Payload;
  factory.malformed_payloads = {
      {"command missing", json{{"maxRunTime", 10}}, "payload.command"},
      {"command is empty", json{{"command", json::array()}}, "payload.command"},
      {"empty argv", json{{"command", json::array({json::array()})}},
       "payload.command[0]"},
      {"env value not a string",
       json{{"command", json::array({"true"})}, {"env", {{"A", 1}}}},
       "payload.env.A"},
      {"maxRunTime negative",
       json{{"command", json::array({"true"})}, {"maxRunTime", -1}},
       "payload.maxRunTime"},
  };
  factory.capabilities.per_task_user = true;
  factory.capabilities.host_pids = true;
  factory.unavailable_reason = []() -> std::string {
    if (::geteuid() != 0) return "creating a user per task needs root";
    if (::access("/usr/sbin/useradd", X_OK) != 0) {
      return "useradd is not installed";
    }
    return "";
  };
  return factory;
}

INSTANTIATE_TEST_SUITE_P(Macos, EngineConformanceTest,
                         ::testing::Values(MacosOnLinuxFactory()),
                         EngineFactoryName);

}  // namespace
}  // namespace drover::engines::conformance
