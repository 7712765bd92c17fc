// The engines and plugins built into drover-worker, as registry factories
// (worker/registry.h): each turns its config section into the component,
// and each engine has a side-effect-free config check for --check-config.
// main() registers them by name, explicitly.
//
// Engine config sections are documented with each engine
// (ParseNativeEngineConfig, ParseMacosEngineConfig) and, for docker, with
// CheckDockerEngineConfig below; docs/worker.md collects them.
#ifndef DROVER_WORKER_COMPONENTS_H_
#define DROVER_WORKER_COMPONENTS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "engines/engine.h"
#include "plugins/plugin.h"
#include "worker/registry.h"

namespace drover::worker {

// native: the native engine. With "per_task_user": true (worker running as
// root) it creates and deletes a user per task (useradd); leftover users
// of a crashed worker are deleted by CleanUpLeftovers.
absl::StatusOr<std::unique_ptr<engines::Engine>> MakeNativeEngine(
    const ComponentContext& context);
absl::Status CheckNativeEngineConfig(const ComponentContext& context);

// macos: a throwaway user per task (dscl on macOS, useradd elsewhere).
absl::StatusOr<std::unique_ptr<engines::Engine>> MakeMacosEngine(
    const ComponentContext& context);
absl::Status CheckMacosEngineConfig(const ComponentContext& context);

// docker: containers on the local dockerd. Config section:
//   {"socket": "/var/run/docker.sock", "working_dir": "/task",
//    "network_mode": "bridge", "default_memory_mb": 0, "max_memory_mb": 0,
//    "max_cpus": 0, "allow_privileged": false, "privileged_scope": "...",
//    "pull_timeout_seconds": 600,
//    "registry_auth": {"<registry host>": {"username": "...",
//                                          "password": "..."}}}
// Errors name "engine.config.<key>".
absl::StatusOr<std::unique_ptr<engines::Engine>> MakeDockerEngine(
    const ComponentContext& context);
absl::Status CheckDockerEngineConfig(const ComponentContext& context);

// Plugins: env, maxruntime, exit-status, logprefix (each documented in its
// header under plugins/).
absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeEnvPlugin(
    const ComponentContext& context);
absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeMaxRunTimePlugin(
    const ComponentContext& context);
absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeExitStatusPlugin(
    const ComponentContext& context);
absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeLogPrefixPlugin(
    const ComponentContext& context);

// Plugins that move artifact bytes (plugins/mounts, plugins/artifacts,
// plugins/livelog): each calls the queue with the run's task credentials
// and, when its section has no "ca_file", trusts the worker's
// tls_ca_file. List them in hook order mounts, artifacts, livelog: mounts
// fetch inputs before the task starts, and livelog goes last so the
// uploaded log holds what the artifacts upload wrote.
absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeMountsPlugin(
    const ComponentContext& context);
absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeArtifactsPlugin(
    const ComponentContext& context);
absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeLiveLogPlugin(
    const ComponentContext& context);

}  // namespace drover::worker

#endif  // DROVER_WORKER_COMPONENTS_H_
