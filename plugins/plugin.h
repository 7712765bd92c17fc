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

#include <functional>
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

// A claimed run's temporary credentials at one moment: a certificate, or a
// client id and access token; all empty means anonymous.
struct TaskCredentials {
  std::string client_id;
  std::string access_token;
  std::string certificate;

  bool Anonymous() const {
    return client_id.empty() && access_token.empty() && certificate.empty();
  }
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
  // The run's current credentials. Each reclaim renews them and the old
  // ones expire with the claim they came with, so a plugin that calls the
  // queue late in the run (uploads, the live log) asks again for every call
  // instead of keeping a copy. Thread-safe, does not block, and callable
  // after Dispose. Null: calls are anonymous.
  std::function<TaskCredentials()> credentials;
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
