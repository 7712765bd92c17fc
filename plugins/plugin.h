// Plugin: per-task hooks around an engine's sandbox.
//
// A Plugin is configured once per worker and makes a TaskPlugin for each
// task run. The worker calls the hooks in run-stage order:
//
//   Prepare -> BuildSandbox -> (engine starts) Started -> (task ends)
//   Stopped -> Finished -> Dispose
//
// Exception replaces the rest when a stage fails or the run is aborted;
// Dispose always runs, exactly once. A hook that fails with
// MalformedPayload resolves the run exception/malformed-payload,
// ResourceNotFound resolves exception/resource-unavailable, anything else
// exception/internal-error; the message is written to the task log. Each
// plugin lives in its own folder and is registered explicitly from main.
#ifndef DROVER_PLUGINS_PLUGIN_H_
#define DROVER_PLUGINS_PLUGIN_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engines/engine.h"
#include "nlohmann/json.hpp"

namespace drover::plugins {

// How a run ends, as decided by the plugins after the sandbox stopped.
struct Outcome {
  enum class State { kCompleted, kFailed, kException };
  State state = State::kCompleted;
  // For kException: worker-shutdown, malformed-payload,
  // resource-unavailable, internal-error, intermittent-task.
  std::string reason;
};

// What a plugin knows about the run it serves.
struct TaskInfo {
  std::string task_id;
  int run_id = 0;
  std::string task_queue_id;
  std::string worker_group;
  std::string worker_id;
  std::string engine;
  nlohmann::json payload;
  std::vector<std::string> scopes;
  std::string queue_address;
  // Temporary credentials of the claim (renewed by reclaims).
  std::string credentials_client_id;
  std::string credentials_access_token;
  std::string credentials_certificate;
  engines::LogSink* log = nullptr;
};

// Hooks for one task run. Not called concurrently; default hooks do nothing.
class TaskPlugin {
 public:
  virtual ~TaskPlugin() = default;
  // Before the sandbox exists: fetch inputs, set up directories.
  virtual absl::Status Prepare(engines::SandboxSpec& spec) {
    return absl::OkStatus();
  }
  // Adjusts what the engine will build (environment, ...).
  virtual absl::Status BuildSandbox(engines::SandboxSpec& spec) {
    return absl::OkStatus();
  }
  // The sandbox is running; plugins may keep a pointer to abort it (e.g.
  // max run time) until Stopped.
  virtual absl::Status Started(engines::Sandbox& sandbox) {
    return absl::OkStatus();
  }
  // The sandbox ended with `result`; plugins may change the outcome (the
  // worker starts from completed when exit code is 0, else failed).
  virtual absl::Status Stopped(engines::Sandbox& sandbox,
                               const engines::Result& result,
                               Outcome& outcome) {
    return absl::OkStatus();
  }
  // After the outcome is known, before it is reported (upload artifacts).
  virtual absl::Status Finished(engines::Sandbox& sandbox,
                                const Outcome& outcome) {
    return absl::OkStatus();
  }
  // The run failed before or instead of Finished.
  virtual void Exception(const Outcome& outcome) {}
  // Always called last.
  virtual void Dispose() {}
};

class Plugin {
 public:
  virtual ~Plugin() = default;
  // "env", "maxruntime", "exit-status", "logprefix", "artifacts", ...
  virtual std::string_view Name() const = 0;
  // Top-level payload keys this plugin understands.
  virtual std::vector<std::string> PayloadKeys() const { return {}; }
  // Checks this plugin's rules. Errors: MalformedPayload naming the field.
  virtual absl::Status ValidatePayload(const nlohmann::json& payload) const {
    return absl::OkStatus();
  }
  // Makes the hooks for one run. Thread-safe.
  virtual absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) = 0;
};

}  // namespace drover::plugins

#endif  // DROVER_PLUGINS_PLUGIN_H_
