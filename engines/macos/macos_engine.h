// The macOS engine: runs each task as its own throwaway OS user on a macOS
// hardware pool (after taskcluster-worker's OS X engine).
//
// Per task run it creates a user through the injected users::UserManager
// (dscl on macOS: unique uid above a floor, home 0700, configured groups),
// runs the task's commands through the native engine's process handling
// (own session and process group per command, stdout+stderr into the task
// log, abort and end-of-task kill of everything the task started) as that
// user, and deletes the user, its processes and its home when the sandbox
// is destroyed, aborted or not. The task sees only the environment the
// plugins assembled (SandboxSpec::env), the variables of the worker's
// environment named in the whitelist `inherit_env`, and its identity (HOME,
// USER, LOGNAME, SHELL); nothing else of the worker's (root's) environment.
// Users carry a name prefix, so CleanUpLeftovers at worker start deletes
// those a crashed worker left behind.
//
// The payload is the native engine's ({command, env, maxRunTime,
// artifacts, onExitStatus, mounts}). Everything but dscl itself also runs
// on Linux with the useradd user manager, which is how it is tested there.
#ifndef DROVER_ENGINES_MACOS_MACOS_ENGINE_H_
#define DROVER_ENGINES_MACOS_MACOS_ENGINE_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/process/command_runner.h"
#include "engines/engine.h"
#include "engines/native/native_engine.h"
#include "engines/users/command_user_manager.h"
#include "engines/users/managed_user_provider.h"
#include "engines/users/user_manager.h"
#include "nlohmann/json.hpp"

namespace drover::engines::macos {

enum class UserManagerKind { kDscl, kUseradd };

struct MacosEngineOptions {
  // Process handling: work_dir, containment, limits, kill grace and the
  // environment whitelist (inherit_env). Its per_task_user, user_provider
  // and run_as are set by the macOS engine, never by configuration.
  native::NativeEngineOptions native;
  // Create a user per task (the point of this engine). Off only for a
  // developer's machine where the worker runs unprivileged: tasks then run
  // as the worker's user.
  bool create_user = true;
  // Name prefix, uid range and groups of task users.
  users::NewUser user;
  // dscl on macOS, useradd elsewhere.
  UserManagerKind user_manager =
#ifdef __APPLE__
      UserManagerKind::kDscl;
#else
      UserManagerKind::kUseradd;
#endif
  // Home root, primary group and shell for the user manager.
  users::CommandUserManagerOptions user_manager_options;
};

// The default options for `kind` (homes under /Users with group staff for
// dscl; /home with group nogroup for useradd).
MacosEngineOptions DefaultMacosEngineOptions(UserManagerKind kind);

// Reads the engine's JSON config (the worker config's "engine.config"),
// snake_case like the native engine's:
//   {"create_user": true,                (alias "createUser", the name
//                                          taskcluster-worker used)
//    "groups": ["_developer"],            supplementary groups of task users
//    "user_prefix": "drover-task-",
//    "uid_floor": 20000, "uid_ceiling": 29999,
//    "user_manager": "dscl" | "useradd",
//    "home_root": "/Users", "primary_group_id": 20, "shell": "/bin/zsh",
//    ... and the native engine's keys: "containment", "inherit_env" (the
//    environment whitelist), "limits", "kill_grace_seconds" (not
//    "per_task_user" or "run_as")}
// Errors: InputError naming the field below `field`
// (e.g. "engine.config.uid_floor").
absl::StatusOr<MacosEngineOptions> ParseMacosEngineConfig(
    const nlohmann::json& config, const std::filesystem::path& work_dir,
    std::string_view field = "engine.config");

// The user manager `options` asks for, driving `runner` (not owned; must
// outlive the manager).
std::unique_ptr<users::UserManager> MakeUserManager(
    const MacosEngineOptions& options, process::CommandRunner& runner);

class MacosEngine final : public Engine {
 public:
  // `users` (not owned, outlives the engine) is required when
  // options.create_user; `launcher` as for NativeEngine::Create.
  // Errors: InputError naming the field: "create_user" when users are
  // requested but no manager is given or the worker is not root,
  // "native.run_as" when native user settings are present, the NewUser
  // fields ("name_prefix", "uid_floor", ...); those of NativeEngine::Create.
  static absl::StatusOr<std::unique_ptr<MacosEngine>> Create(
      MacosEngineOptions options, users::UserManager* users,
      native::ProcessLauncher* launcher = nullptr);

  std::string_view Name() const override { return "macos"; }
  std::vector<std::string> PayloadKeys() const override;
  absl::Status ValidatePayload(const nlohmann::json& payload) const override;
  // Thread-safe. The user is created when the sandbox starts and deleted
  // when it is destroyed. Errors: those of NativeEngine::NewSandbox.
  absl::StatusOr<std::unique_ptr<Sandbox>> NewSandbox(
      SandboxSpec spec) override;
  // Kills and removes what the native engine left behind, then deletes
  // every user carrying the prefix. Errors: the first failure (everything is
  // still attempted).
  absl::Status CleanUpLeftovers() override;

 private:
  MacosEngine(std::shared_ptr<users::ManagedUserProvider> users,
              std::unique_ptr<native::NativeEngine> native, std::string shell);

  // Shared with every sandbox: a sandbox may outlive the engine and still
  // has to delete its user when it is destroyed. Null without createUser.
  const std::shared_ptr<users::ManagedUserProvider> users_;
  const std::unique_ptr<native::NativeEngine> native_;
  const std::string shell_;
};

}  // namespace drover::engines::macos

#endif  // DROVER_ENGINES_MACOS_MACOS_ENGINE_H_
