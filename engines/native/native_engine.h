// The native engine: runs a task's commands as host processes.
//
// Each sandbox runs in the task directory (SandboxSpec::task_dir, or a
// fresh directory below <work_dir>/native/tasks that it removes afterwards),
// each command in its own session and process group with exactly the
// environment the plugins assembled (SandboxSpec::env, plus configured
// inherited variables), stdout+stderr merged into the task log, and the
// configured resource limits. Commands run in order and stop at the first
// failure. Every process the task starts, including daemons that leave the
// process group, is held in a Containment (a cgroup when available, else an
// environment marker) and killed when the task ends or is aborted. An
// optional TaskUserProvider runs the task as its own OS user.
#ifndef DROVER_ENGINES_NATIVE_NATIVE_ENGINE_H_
#define DROVER_ENGINES_NATIVE_NATIVE_ENGINE_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engines/engine.h"
#include "engines/native/containment.h"
#include "engines/native/process.h"
#include "engines/native/task_user.h"
#include "nlohmann/json.hpp"

namespace drover::engines::native {

struct NativeEngineOptions {
  // Required. Engine state (<work_dir>/native) and engine-made task
  // directories live below it.
  std::filesystem::path work_dir;
  // Variables copied from the worker's environment when the task's
  // environment lacks them (nothing else is inherited).
  std::vector<std::string> inherit_env;
  ResourceLimits limits;
  ContainmentMode containment = ContainmentMode::kAuto;
  // cgroup v2 directory for per-sandbox cgroups (default: the worker's own).
  std::filesystem::path cgroup_parent;
  // Abort sends SIGTERM to the running command's group, SIGKILL after this.
  absl::Duration kill_grace = absl::Seconds(5);
  // After the task ended and was killed, how long to wait for the last of
  // its output.
  absl::Duration output_drain_timeout = absl::Seconds(5);
  // Config asked for a per-task OS user; then user_provider is required.
  bool per_task_user = false;
  // Not owned; outlives the engine.
  TaskUserProvider* user_provider = nullptr;
  // Without a provider: run every task as this existing account (worker
  // running as root only).
  std::string run_as;
};

// Reads the engine's JSON config (the worker config's "engine.config"):
//   {"containment": "auto" | "cgroup" | "environ-marker",
//    "cgroup_parent": "/sys/fs/cgroup/...",
//    "inherit_env": ["LANG", ...],
//    "limits": {"memory_mb": 4096, "cpu_seconds": 3600, "open_files": 4096},
//    "kill_grace_seconds": 5,
//    "per_task_user": false,       (main then supplies a user provider)
//    "run_as": "drover-task"}      (an existing account for every task)
// Errors: InputError naming the field below `field` (e.g.
// "engine.config.limits.memory_mb").
absl::StatusOr<NativeEngineOptions> ParseNativeEngineConfig(
    const nlohmann::json& config, const std::filesystem::path& work_dir,
    std::string_view field = "engine.config");

class NativeEngine final : public Engine {
 public:
  // `launcher` defaults to a PosixProcessLauncher (not owned when given).
  // Errors: InputError (field "work_dir", "per_task_user") for unusable
  // options; InternalError when the containment cannot be set up.
  static absl::StatusOr<std::unique_ptr<NativeEngine>> Create(
      NativeEngineOptions options, ProcessLauncher* launcher = nullptr);

  ~NativeEngine() override;

  std::string_view Name() const override { return "native"; }
  std::vector<std::string> PayloadKeys() const override;
  absl::Status ValidatePayload(const nlohmann::json& payload) const override;
  absl::StatusOr<std::unique_ptr<Sandbox>> NewSandbox(
      SandboxSpec spec) override;
  // Kills processes of sandboxes a previous worker left behind (same
  // work_dir) and removes their task directories.
  absl::Status CleanUpLeftovers() override;

  // "cgroup" or "environ-marker": what actually contains tasks here.
  std::string_view containment_kind() const;

  // State shared with the sandboxes (options, launcher, containment).
  struct Shared;

 private:
  explicit NativeEngine(std::shared_ptr<Shared> shared);

  std::shared_ptr<Shared> shared_;
};

}  // namespace drover::engines::native

#endif  // DROVER_ENGINES_NATIVE_NATIVE_ENGINE_H_
