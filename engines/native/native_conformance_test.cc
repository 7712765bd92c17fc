// The engine conformance suite for the native engine, three times: with the
// containment this host offers (cgroup here when writable), with the
// environment-marker containment forced, and with tasks running as an
// existing unprivileged user ("nobody"; needs root).
#include <unistd.h>

#include "common/status.h"
#include "engines/conformance/engine_conformance.h"
#include "engines/native/native_engine.h"

namespace drover::engines::conformance {
namespace {

using native::ContainmentMode;
using native::NativeEngine;
using native::NativeEngineOptions;

nlohmann::json NativePayload(const std::vector<std::string>& commands,
                             const std::map<std::string, std::string>& env,
                             int max_run_time_seconds) {
  nlohmann::json command = nlohmann::json::array();
  for (const auto& script : commands) {
    command.push_back({"/bin/sh", "-c", script});
  }
  return {
      {"command", command}, {"env", env}, {"maxRunTime", max_run_time_seconds}};
}

std::vector<MalformedPayloadCase> NativeMalformedCases() {
  using nlohmann::json;
  return {
      {"command missing", json{{"maxRunTime", 10}}, "payload.command"},
      {"command is a string", json{{"command", "echo hi"}}, "payload.command"},
      {"command is empty", json{{"command", json::array()}}, "payload.command"},
      {"second command not an argv",
       json{{"command", json::array({json::array({"true"}), "false"})}},
       "payload.command[1]"},
      {"empty argv", json{{"command", json::array({json::array()})}},
       "payload.command[0]"},
      {"empty program", json{{"command", json::array({json::array({""})})}},
       "payload.command[0][0]"},
      {"argument not a string", json{{"command", json::array({"echo", 5})}},
       "payload.command[1]"},
      {"env value not a string",
       json{{"command", json::array({"true"})}, {"env", {{"A", 1}}}},
       "payload.env.A"},
      {"maxRunTime a string",
       json{{"command", json::array({"true"})}, {"maxRunTime", "10"}},
       "payload.maxRunTime"},
      {"maxRunTime negative",
       json{{"command", json::array({"true"})}, {"maxRunTime", -1}},
       "payload.maxRunTime"},
      {"retry code not a number",
       json{{"command", json::array({"true"})},
            {"onExitStatus", {{"retry", json::array({"x"})}}}},
       "payload.onExitStatus.retry[0]"},
      {"artifacts not an array",
       json{{"command", json::array({"true"})}, {"artifacts", "a"}},
       "payload.artifacts"},
  };
}

EngineFactory NativeFactory(std::string name, ContainmentMode mode,
                            std::string run_as) {
  EngineFactory factory;
  factory.name = std::move(name);
  factory.make_engine = [mode, run_as](const std::filesystem::path& work_dir)
      -> absl::StatusOr<std::unique_ptr<Engine>> {
    NativeEngineOptions options;
    options.work_dir = work_dir;
    options.containment = mode;
    options.run_as = run_as;
    DROVER_ASSIGN_OR_RETURN(auto engine, NativeEngine::Create(options));
    return std::unique_ptr<Engine>(std::move(engine));
  };
  factory.build_payload = NativePayload;
  factory.malformed_payloads = NativeMalformedCases();
  factory.capabilities.host_pids = true;
  factory.capabilities.per_task_user = !run_as.empty();
  if (!run_as.empty()) {
    factory.unavailable_reason = [] {
      return ::geteuid() == 0
                 ? std::string()
                 : std::string("running tasks as another user needs root");
    };
  }
  return factory;
}

INSTANTIATE_TEST_SUITE_P(
    Native, EngineConformanceTest,
    ::testing::Values(
        NativeFactory("HostContainment", ContainmentMode::kAuto, ""),
        NativeFactory("EnvironMarker", ContainmentMode::kEnvironMarker, ""),
        NativeFactory("RunAsNobody", ContainmentMode::kAuto, "nobody")),
    EngineFactoryName);

}  // namespace
}  // namespace drover::engines::conformance
