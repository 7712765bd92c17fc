// The engine conformance suite for the docker engine, against the real
// dockerd and the busybox test image (scripts/start-docker.sh,
// scripts/make-test-images.sh). Commands run through the image's
// /bin/sh; several commands become one argv for an outer shell that runs
// each with `sh -c` and stops at the first failure.
#include <unistd.h>

#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "engines/conformance/engine_conformance.h"
#include "engines/docker/docker_client.h"
#include "engines/docker/docker_engine.h"

namespace drover::engines::conformance {
namespace {

using docker::DockerClient;
using docker::DockerClientOptions;
using docker::DockerEngine;
using docker::DockerEngineOptions;

constexpr char kSocket[] = "/var/run/docker.sock";
constexpr char kImage[] = "drover-test/busybox:latest";

nlohmann::json DockerPayload(const std::vector<std::string>& commands,
                             const std::map<std::string, std::string>& env,
                             int max_run_time_seconds) {
  nlohmann::json command = {
      "/bin/sh", "-c", "for c in \"$@\"; do /bin/sh -c \"$c\" || exit $?; done",
      "drover"};
  for (const std::string& c : commands) command.push_back(c);
  return {{"image", kImage},
          {"command", command},
          {"env", env},
          {"maxRunTime", max_run_time_seconds}};
}

std::vector<MalformedPayloadCase> DockerMalformedCases() {
  using nlohmann::json;
  json ok_command = json::array({"true"});
  return {
      {"image missing", json{{"command", ok_command}}, "payload.image"},
      {"image not a string", json{{"image", 5}}, "payload.image"},
      {"image with spaces", json{{"image", "bad image"}}, "payload.image"},
      {"image in upper case", json{{"image", "BusyBox:latest"}},
       "payload.image"},
      {"short digest", json{{"image", "busybox@sha256:1234"}}, "payload.image"},
      {"command is a string", json{{"image", kImage}, {"command", "echo hi"}},
       "payload.command"},
      {"command is empty", json{{"image", kImage}, {"command", json::array()}},
       "payload.command"},
      {"argument not a string",
       json{{"image", kImage}, {"command", json::array({"echo", 5})}},
       "payload.command[1]"},
      {"env value not a string", json{{"image", kImage}, {"env", {{"A", 1}}}},
       "payload.env.A"},
      {"maxRunTime a string", json{{"image", kImage}, {"maxRunTime", "10"}},
       "payload.maxRunTime"},
      {"memory below dockerd's minimum",
       json{{"image", kImage}, {"resources", {{"memoryMB", 1}}}},
       "payload.resources.memoryMB"},
      {"negative cpus", json{{"image", kImage}, {"resources", {{"cpus", -1}}}},
       "payload.resources.cpus"},
      {"unknown resource",
       json{{"image", kImage}, {"resources", {{"gpus", 1}}}},
       "payload.resources.gpus"},
      {"privileged not a bool", json{{"image", kImage}, {"privileged", "yes"}},
       "payload.privileged"},
      {"artifacts not an array", json{{"image", kImage}, {"artifacts", "a"}},
       "payload.artifacts"},
      {"retry code out of range",
       json{{"image", kImage}, {"onExitStatus", {{"retry", {0}}}}},
       "payload.onExitStatus.retry[0]"},
  };
}

std::string UnavailableReason() {
  if (!std::filesystem::exists(kSocket)) {
    return absl::StrCat("dockerd socket ", kSocket,
                        " is absent (run scripts/start-docker.sh)");
  }
  DockerClient client(DockerClientOptions{});
  if (absl::Status s = client.Ping(absl::Seconds(5)); !s.ok()) {
    return absl::StrCat("dockerd does not answer: ", s.message());
  }
  if (!client.InspectImage(kImage).ok()) {
    return absl::StrCat("test image ", kImage,
                        " is missing (run scripts/make-test-images.sh)");
  }
  return "";
}

EngineFactory DockerFactory() {
  EngineFactory factory;
  factory.name = "Docker";
  factory.make_engine = [](const std::filesystem::path&)
      -> absl::StatusOr<std::unique_ptr<Engine>> {
    DockerEngineOptions options;
    // A worker id of its own: CleanUpLeftovers must never touch containers
    // of other tests running at the same time.
    options.worker_group = "conformance";
    options.worker_id = absl::StrCat("docker-conformance-", getpid(), "-",
                                     std::random_device()() % 1000000);
    options.pull_timeout = absl::Seconds(60);
    return std::unique_ptr<Engine>(std::make_unique<DockerEngine>(
        options, std::make_shared<DockerClient>(DockerClientOptions{})));
  };
  factory.build_payload = DockerPayload;
  factory.malformed_payloads = DockerMalformedCases();
  factory.capabilities.per_task_user = false;
  factory.capabilities.host_pids = false;
  factory.unavailable_reason = UnavailableReason;
  return factory;
}

INSTANTIATE_TEST_SUITE_P(Docker, EngineConformanceTest,
                         ::testing::Values(DockerFactory()), EngineFactoryName);

}  // namespace
}  // namespace drover::engines::conformance
