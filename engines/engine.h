// Engine: turns a task payload into a sandbox that runs the task.
//
// An Engine makes a Sandbox per task run; a Sandbox starts, streams its
// output to the task log, can be aborted, and yields a Result. Each engine
// lives in its own folder (engines/native, engines/docker, engines/macos)
// and is registered explicitly from the worker's main. Every engine passes
// the shared conformance suite in engines/conformance.
#ifndef DROVER_ENGINES_ENGINE_H_
#define DROVER_ENGINES_ENGINE_H_

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace drover::engines {

// Receives the task log. Implementations must be thread-safe: engines write
// from their own threads.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(std::string_view bytes) = 0;
};

// Everything an engine needs to build one sandbox. Plugins adjust it
// (environment, mounts) before the engine sees it.
struct SandboxSpec {
  std::string task_id;
  int run_id = 0;
  std::string worker_group;
  std::string worker_id;
  // The task payload, already validated.
  nlohmann::json payload;
  // The task's scopes (an engine may require scopes for features such as
  // privileged containers).
  std::vector<std::string> scopes;
  // A fresh per-task directory on the host; the engine may map it into the
  // sandbox. Artifact paths are relative to the sandbox's working directory.
  std::filesystem::path task_dir;
  // The environment the task sees, assembled by plugins.
  std::map<std::string, std::string> env;
  // Where output goes. Outlives the sandbox.
  LogSink* log = nullptr;
};

struct Result {
  // The task's exit code; for a multi-command payload the first non-zero
  // one, or 0 when all succeeded.
  int exit_code = 0;
  // Set when the process was ended by a signal.
  std::optional<int> signal;
  // True when Abort() ended the run.
  bool aborted = false;
  // True when the kernel or container runtime killed it for memory.
  bool out_of_memory = false;
  absl::Duration duration;
};

class Sandbox {
 public:
  // Destroying a sandbox kills anything still running and removes what the
  // engine created for it (processes, containers, users).
  virtual ~Sandbox() = default;

  // Starts the task. Errors: MalformedPayload (the payload cannot run here,
  // e.g. a bad image reference), ResourceNotFound/ResourceExpired for
  // missing inputs (resolved exception/resource-unavailable),
  // InternalError otherwise.
  virtual absl::Status Start() = 0;

  // Blocks until the task ends (or is aborted) and all output has been
  // written to the log. Call once, after a successful Start().
  virtual absl::StatusOr<Result> Wait() = 0;

  // Kills the task and everything it started. Safe from any thread, any
  // number of times, before or after Wait() returns.
  virtual void Abort() = 0;

  // Copies `sandbox_path` (a file or directory, relative to the task's
  // working directory) to `host_path`. Errors: ResourceNotFound when the
  // path does not exist; InputError when it escapes the working directory.
  // Call after Wait() returned.
  virtual absl::Status Extract(const std::string& sandbox_path,
                               const std::filesystem::path& host_path) = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // "native", "docker", "macos".
  virtual std::string_view Name() const = 0;

  // Top-level payload keys this engine understands; the worker rejects
  // keys that no engine or plugin claims.
  virtual std::vector<std::string> PayloadKeys() const = 0;

  // Checks the engine's rules for a payload. Errors: MalformedPayload with
  // details naming the field.
  virtual absl::Status ValidatePayload(const nlohmann::json& payload) const = 0;

  // Builds (but does not start) a sandbox. Thread-safe.
  virtual absl::StatusOr<std::unique_ptr<Sandbox>> NewSandbox(
      SandboxSpec spec) = 0;

  // Removes what an earlier worker process left behind (containers, users,
  // directories) after a crash. Called once at worker start.
  virtual absl::Status CleanUpLeftovers() { return absl::OkStatus(); }

  // Ok when the engine can run tasks now (e.g. dockerd answers); the worker
  // stops claiming while it is not.
  virtual absl::Status CheckHealth() { return absl::OkStatus(); }
};

}  // namespace drover::engines

#endif  // DROVER_ENGINES_ENGINE_H_
