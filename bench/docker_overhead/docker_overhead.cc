// docker_overhead: how much slower is a task through the docker engine than
// a plain `docker run --rm` of the same image and command?
//
// Runs the same command N times each way, interleaved (engine, CLI, engine,
// ...) so both see the same machine load, after a few warm-up runs. An
// engine run is NewSandbox + Start + Wait + destroying the sandbox (which
// removes the container), with the output read into a log; a CLI run is
// `docker run --rm IMAGE sh -c COMMAND` with its output read from a pipe.
// Prints the medians, the 90th percentiles and the ratio of the medians
// (the target is <= 1.1). Also times `docker run --rm --log-driver none`,
// which matches what the engine asks of dockerd, for reference.
//
// Needs dockerd (scripts/start-docker.sh) and the test image
// (scripts/make-test-images.sh). The docker CLI is used only for the
// baseline.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "engines/docker/docker_client.h"
#include "engines/docker/docker_engine.h"

extern char** environ;

namespace {

using drover::engines::LogSink;
using drover::engines::SandboxSpec;
using drover::engines::docker::DockerClient;
using drover::engines::docker::DockerClientOptions;
using drover::engines::docker::DockerEngine;
using drover::engines::docker::DockerEngineOptions;
using SteadyClock = std::chrono::steady_clock;

class CountingLog final : public LogSink {
 public:
  void Write(std::string_view bytes) override { bytes_ += bytes.size(); }
  uint64_t bytes() const { return bytes_; }

 private:
  std::atomic<uint64_t> bytes_{0};
};

// Runs argv, reading its stdout and stderr to the end. Returns the exit
// status or -1.
int RunCommand(const std::vector<std::string>& argv, uint64_t* output_bytes) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (rc != 0) {
    ::close(pipe_fds[0]);
    return -1;
  }
  char buf[65536];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) {
    *output_bytes += static_cast<uint64_t>(n);
  }
  ::close(pipe_fds[0]);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  double idx = p * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(idx);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (idx - static_cast<double>(lo));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Docker engine overhead against `docker run --rm`"};
  int runs = 20;
  int warmup = 3;
  std::string image = "drover-test/busybox:latest";
  std::string command = "echo hello from the benchmark";
  std::string docker_cli = "docker";
  std::string socket = "/var/run/docker.sock";
  app.add_option("--runs", runs, "measured runs of each kind")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--warmup", warmup, "unmeasured runs of each kind first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--image", image, "image to run")->capture_default_str();
  app.add_option("--command", command, "shell command to run")
      ->capture_default_str();
  app.add_option("--docker-cli", docker_cli, "docker CLI for the baseline")
      ->capture_default_str();
  app.add_option("--socket", socket, "dockerd's socket")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto client = std::make_shared<DockerClient>(
      DockerClientOptions{.socket_path = socket});
  if (absl::Status s = client->Ping(absl::Seconds(5)); !s.ok()) {
    std::cerr << "docker_overhead: dockerd is not reachable: " << s << "\n";
    return 2;
  }
  if (!client->InspectImage(image).ok()) {
    std::cerr << "docker_overhead: image " << image
              << " is missing (scripts/make-test-images.sh)\n";
    return 2;
  }
  DockerEngineOptions options;
  options.worker_group = "bench";
  options.worker_id = absl::StrFormat("docker-overhead-%d", getpid());
  DockerEngine engine(options, client);

  auto engine_run = [&]() -> double {
    CountingLog log;
    SandboxSpec spec;
    spec.task_id = "";
    spec.payload = {{"image", image}, {"command", {"/bin/sh", "-c", command}}};
    spec.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
    spec.log = &log;
    auto start = SteadyClock::now();
    auto sandbox = engine.NewSandbox(std::move(spec));
    if (!sandbox.ok()) {
      std::cerr << "engine: " << sandbox.status() << "\n";
      std::exit(1);
    }
    if (absl::Status s = (*sandbox)->Start(); !s.ok()) {
      std::cerr << "engine start: " << s << "\n";
      std::exit(1);
    }
    auto result = (*sandbox)->Wait();
    if (!result.ok() || result->exit_code != 0 || log.bytes() == 0) {
      std::cerr << "engine run failed\n";
      std::exit(1);
    }
    sandbox->reset();  // removes the container, as --rm does
    return std::chrono::duration<double, std::milli>(SteadyClock::now() - start)
        .count();
  };
  auto cli_run = [&](bool no_log_driver) -> double {
    std::vector<std::string> args = {docker_cli, "run", "--rm"};
    if (no_log_driver) {
      args.push_back("--log-driver");
      args.push_back("none");
    }
    args.push_back(image);
    args.push_back("/bin/sh");
    args.push_back("-c");
    args.push_back(command);
    uint64_t bytes = 0;
    auto start = SteadyClock::now();
    int rc = RunCommand(args, &bytes);
    double ms =
        std::chrono::duration<double, std::milli>(SteadyClock::now() - start)
            .count();
    if (rc != 0 || bytes == 0) {
      std::cerr << "docker run failed (exit " << rc << ")\n";
      std::exit(1);
    }
    return ms;
  };

  for (int i = 0; i < warmup; ++i) {
    engine_run();
    cli_run(false);
    cli_run(true);
  }
  std::vector<double> engine_ms, cli_ms, cli_nolog_ms;
  for (int i = 0; i < runs; ++i) {
    engine_ms.push_back(engine_run());
    cli_ms.push_back(cli_run(false));
    cli_nolog_ms.push_back(cli_run(true));
  }

  double engine_median = Percentile(engine_ms, 0.5);
  double cli_median = Percentile(cli_ms, 0.5);
  double nolog_median = Percentile(cli_nolog_ms, 0.5);
  std::cout << absl::StrFormat(
      "docker_overhead: %d runs each (after %d warm-up), image %s, "
      "command \"%s\"\n",
      runs, warmup, image, command);
  std::cout << absl::StrFormat(
      "  drover docker engine            median %8.1f ms   p90 %8.1f ms\n",
      engine_median, Percentile(engine_ms, 0.9));
  std::cout << absl::StrFormat(
      "  docker run --rm                 median %8.1f ms   p90 %8.1f ms\n",
      cli_median, Percentile(cli_ms, 0.9));
  std::cout << absl::StrFormat(
      "  docker run --rm --log-driver none  median %8.1f ms   p90 %8.1f ms\n",
      nolog_median, Percentile(cli_nolog_ms, 0.9));
  std::cout << absl::StrFormat(
      "  ratio engine / docker run --rm (medians): %.3f (target <= 1.1)\n",
      engine_median / cli_median);
  std::cout << absl::StrFormat(
      "  ratio engine / docker run --rm --log-driver none: %.3f\n",
      engine_median / nolog_median);
  return 0;
}
