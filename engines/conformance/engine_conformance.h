// The engine conformance suite: one parameterised GoogleTest suite that every
// engine (native, docker, macos) passes.
//
// An engine's test binary describes the engine with an EngineFactory and
// instantiates the suite for it:
//
//   #include "engines/conformance/engine_conformance.h"
//   namespace drover::engines::conformance {
//   INSTANTIATE_TEST_SUITE_P(Docker, EngineConformanceTest,
//                            ::testing::Values(MakeDockerFactory()),
//                            EngineFactoryName);
//   }
//
// and links the CMake target drover_engine_conformance (an object library,
// so the TEST_P registrations are always linked in) plus GTest::gtest_main.
//
// What the suite covers: output to the log (stdout and stderr merged), exit
// code propagation, the environment, multi-command ordering and stop at the
// first failure, abort (prompt, idempotent, kills background and daemonised
// grandchildren), task end kills what the task left running, Extract of
// files and directories (byte-identical), refusal of escaping paths,
// ResourceNotFound for missing paths, many concurrent sandboxes, 50 MB of
// output streamed without memory growth, malformed payloads rejected with
// the field named.
//
// Conventions the suite relies on (an engine that differs must say so in a
// capability flag below rather than weaken the test):
//  - Each test gets a fresh, empty `work_dir` for make_engine() and, for
//    each sandbox, a fresh, empty SandboxSpec::task_dir below it (as the
//    worker does).
//  - The environment is passed twice, as the env plugin would: in the
//    payload (through build_payload) and as SandboxSpec::env. Engines run
//    the task with SandboxSpec::env. It always holds
//    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin.
//  - Commands are POSIX shell scripts run by /bin/sh -c in the sandbox's
//    working directory; they use only POSIX sh, printf, echo, cat, head,
//    yes, sleep, mkdir, ln, id, kill and (when present) setsid.
//  - Paths given to Sandbox::Extract are relative to that working directory.
#ifndef DROVER_ENGINES_CONFORMANCE_ENGINE_CONFORMANCE_H_
#define DROVER_ENGINES_CONFORMANCE_ENGINE_CONFORMANCE_H_

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/engine.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace drover::engines::conformance {

// What an engine can do beyond the common contract.
struct EngineCapabilities {
  // Tasks run as an OS user other than the one running the test; the suite
  // checks that `id -u` in the task differs from the test's uid.
  bool per_task_user = false;
  // Task processes are host processes (no PID namespace), so pids the task
  // prints can be checked on the host with kill(pid, 0) / /proc.
  bool host_pids = false;
};

// A payload the engine must reject, and the field its error must name
// (ErrorInfo::details["field"], e.g. "payload.command[0]").
struct MalformedPayloadCase {
  std::string description;
  nlohmann::json payload;
  std::string field;
};

struct EngineFactory {
  // The instantiation's name: letters, digits and '_' only.
  std::string name;

  // Makes a fresh engine keeping its state below `work_dir`. Called once per
  // test (from the test's main thread).
  std::function<absl::StatusOr<std::unique_ptr<Engine>>(
      const std::filesystem::path& work_dir)>
      make_engine;

  // The engine's payload that runs each of `commands` (shell scripts) in
  // order with /bin/sh -c, stopping at the first non-zero exit, with the
  // environment `env` and a maximum run time of `max_run_time_seconds`.
  std::function<nlohmann::json(const std::vector<std::string>& commands,
                               const std::map<std::string, std::string>& env,
                               int max_run_time_seconds)>
      build_payload;

  // At least one case is required (the suite fails without any).
  std::vector<MalformedPayloadCase> malformed_payloads;

  EngineCapabilities capabilities;

  // When set and it returns a non-empty reason (e.g. "dockerd is not
  // reachable at /var/run/docker.sock"), every test of this instantiation
  // reports SKIPPED with it. Called once per test.
  std::function<std::string()> unavailable_reason;
};

// The suite. Tests are defined in engine_conformance.cc.
class EngineConformanceTest : public ::testing::TestWithParam<EngineFactory> {
 protected:
  void SetUp() override;
  void TearDown() override;

  const EngineFactory& factory() const { return GetParam(); }
  Engine& engine() { return *engine_; }
  // A fresh directory for this test (removed at TearDown).
  const std::filesystem::path& scratch_dir() const { return scratch_dir_; }

  // A spec with a fresh task_dir, the standard environment plus `env`, and
  // the payload from build_payload(commands, env, max_run_time_seconds).
  SandboxSpec MakeSpec(const std::vector<std::string>& commands, LogSink* log,
                       const std::map<std::string, std::string>& env = {},
                       int max_run_time_seconds = 600);

 private:
  std::filesystem::path scratch_dir_;
  std::unique_ptr<Engine> engine_;
  int next_task_ = 0;
};

// Names instantiations after EngineFactory::name.
std::string EngineFactoryName(
    const ::testing::TestParamInfo<EngineFactory>& info);

// Prints a factory as its name in test output.
void PrintTo(const EngineFactory& factory, std::ostream* os);

}  // namespace drover::engines::conformance

#endif  // DROVER_ENGINES_CONFORMANCE_ENGINE_CONFORMANCE_H_
