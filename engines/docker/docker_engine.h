// The docker engine: runs each task in a fresh container on the local
// dockerd, driven through the Engine API over its unix socket.
//
// Payload keys it owns (the env, maxruntime, artifacts and exit-status
// plugins own env, maxRunTime, artifacts and onExitStatus):
//   image       required; "name[:tag]" or "name@sha256:<hex>", optionally
//               with a registry host ("127.0.0.1:5000/team/tool:1.2").
//   command     optional argv array (the image's default command if absent).
//   resources   optional {memoryMB, cpus}; limits the container, capped by
//               the worker's configured maxima.
//   privileged  optional bool; allowed only when the worker config allows it
//               AND the task has the configured privileged scope.
//
// A sandbox ensures the image (pulling it with progress into the task log,
// bounded by pull_timeout, with registry credentials from the worker
// config), creates the container (command, environment, working directory,
// labels drover.task-id / drover.run-id / drover.worker-id /
// drover.worker-group, memory and CPU limits, network mode), starts it,
// follows its output into the task log, waits, reads exit code and
// OOM-kill state, extracts files through the archive API, and always
// removes the container with its anonymous volumes (after abort too).
#ifndef DROVER_ENGINES_DOCKER_DOCKER_ENGINE_H_
#define DROVER_ENGINES_DOCKER_DOCKER_ENGINE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engines/docker/docker_client.h"
#include "engines/engine.h"

namespace drover::engines::docker {

struct RegistryCredential {
  std::string username;
  std::string password;
};

struct DockerEngineOptions {
  // This worker; containers are labelled with it and CleanUpLeftovers
  // removes the containers that carry it.
  std::string worker_group;
  std::string worker_id;
  // The container's working directory; Extract paths are relative to it.
  std::string working_dir = "/task";
  // HostConfig.NetworkMode: "bridge", "none", "host" or a network name.
  std::string network_mode = "bridge";
  // Memory limit when the payload gives none; 0: unlimited.
  int64_t default_memory_mb = 0;
  // Caps for resources.memoryMB / resources.cpus; 0: no cap.
  int64_t max_memory_mb = 0;
  double max_cpus = 0;
  // Privileged containers need both: this flag and the task holding
  // privileged_scope (e.g. "docker-worker:privileged:proj/pool").
  bool allow_privileged = false;
  std::string privileged_scope;
  // Longest time an image pull may take before the task is resolved
  // resource-unavailable.
  absl::Duration pull_timeout = absl::Minutes(10);
  // Credentials per registry host ("127.0.0.1:5001", "docker.io").
  std::map<std::string, RegistryCredential> registry_credentials;
};

class DockerEngine final : public Engine {
 public:
  DockerEngine(DockerEngineOptions options, std::shared_ptr<DockerApi> api);

  std::string_view Name() const override { return "docker"; }
  std::vector<std::string> PayloadKeys() const override;
  // Errors: MalformedPayload naming the field ("payload.image", ...).
  absl::Status ValidatePayload(const nlohmann::json& payload) const override;
  // Errors: MalformedPayload for an invalid payload or a privileged request
  // the worker config or the task's scopes do not allow; InputError when
  // spec.log is null. Thread-safe.
  absl::StatusOr<std::unique_ptr<Sandbox>> NewSandbox(
      SandboxSpec spec) override;
  // Removes every container labelled with this worker's id (and group).
  // Errors: InputError when worker_id is not configured; InternalError
  // when dockerd cannot be reached or refuses.
  absl::Status CleanUpLeftovers() override;
  // Pings dockerd (5 s limit). Errors: InternalError naming the socket.
  absl::Status CheckHealth() override;

  const DockerEngineOptions& options() const { return options_; }

 private:
  const DockerEngineOptions options_;
  const std::shared_ptr<DockerApi> api_;
};

// The X-Registry-Auth header value for `credential` at `registry`: URL-safe
// base64 (padded) of {"username", "password", "serveraddress"}.
std::string RegistryAuthHeader(const std::string& registry,
                               const RegistryCredential& credential);

// Command-line/config-file flags for the docker engine (prefix "docker-";
// each also reads DROVER_DOCKER_*).
struct DockerEngineFlags {
  std::string socket = "/var/run/docker.sock";
  std::string working_dir = "/task";
  std::string network_mode = "bridge";
  int64_t default_memory_mb = 0;
  int64_t max_memory_mb = 0;
  double max_cpus = 0;
  bool allow_privileged = false;
  std::string privileged_scope;
  int64_t pull_timeout_seconds = 600;
  // "registry=username:password", repeated.
  std::vector<std::string> registry_auth;
};

void AddDockerEngineFlags(CLI::App& app, DockerEngineFlags* flags);

// Builds options from flags (worker identity comes from the worker's own
// flags). Errors: InputError naming the flag and value.
absl::StatusOr<DockerEngineOptions> DockerEngineOptionsFromFlags(
    const DockerEngineFlags& flags, std::string worker_group,
    std::string worker_id);

}  // namespace drover::engines::docker

#endif  // DROVER_ENGINES_DOCKER_DOCKER_ENGINE_H_
