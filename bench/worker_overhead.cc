// bench_worker_overhead: what the real drover-worker (native engine) adds
// around a task that does nothing.
//
// Starts --worker-binary against the server on a fresh worker pool (its
// output goes to a log file), creates N tasks running `true` (all pending at
// once, so the worker claims back to back), waits until the queue has none
// pending or claimed, stops the worker with SIGTERM and reads the line the
// worker logs for every run (worker/task_run.cc):
//   task <id> run <n>: completed claim->start <ms> ms, finish->reported <ms> ms
// claim->start runs from the claim's arrival to the sandbox's start (payload
// checks, plugin hooks, task directory, process spawn); finish->reported
// from the sandbox's end to the queue accepting the resolution.
//
// As a cross-check from the server's side it reads every task's run and
// reports resolved - started (server timestamps: claim to resolution,
// which includes running `true` itself).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "common/rpc/process_defaults.h"
#include "common/slugid.h"
#include "common/status.h"

extern char** environ;

namespace drover::bench {
namespace {

// Starts argv with stdout and stderr appended to `log_path`.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log_path.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return MakeError(ErrorCode::kInternalError,
                     absl::StrCat("cannot start the worker: ", strerror(rc)),
                     {{"field", "worker-binary"}, {"value", argv[0]}});
  }
  return pid;
}

// Waits up to `timeout` for `pid`; SIGKILLs it after that. Returns the
// wait status, or -1.
int StopProcess(pid_t pid, std::chrono::seconds timeout) {
  kill(pid, SIGTERM);
  auto until = SteadyClock::now() + timeout;
  int status = 0;
  while (SteadyClock::now() < until) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  return waitpid(pid, &status, 0) == pid ? status : -1;
}

double MicrosOf(const google::protobuf::Timestamp& ts) {
  return static_cast<double>(ts.seconds()) * 1e6 + ts.nanos() / 1e3;
}

}  // namespace
}  // namespace drover::bench

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  using namespace drover;
  using namespace drover::bench;

  CLI::App app{"bench_worker_overhead: drover-worker overhead per task"};
  CommonFlags common;
  AddCommonFlags(app, &common);
  std::string worker_binary;
  std::string work_dir;
  int tasks = 200;
  int capacity = 1;
  int timeout_s = 600;
  int idle_seconds = 10;
  app.add_option("--worker-binary", worker_binary, "Path of drover-worker")
      ->required();
  app.add_option("--work-dir", work_dir,
                 "Worker directory (default: a fresh one under /tmp)");
  app.add_option("--tasks", tasks, "Tasks to run")->capture_default_str();
  app.add_option("--capacity", capacity, "The worker's capacity")
      ->capture_default_str();
  app.add_option("--idle-seconds", idle_seconds,
                 "After the tasks, how long the idle worker is watched")
      ->capture_default_str();
  app.add_option("--timeout", timeout_s, "Give up after this many seconds")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto connection = Connect(common.url);
  if (!connection.ok()) {
    std::cerr << "bench_worker_overhead: " << Describe(connection.status())
              << "\n";
    return 1;
  }
  if (work_dir.empty()) {
    char tmpl[] = "/tmp/drover-bench-worker-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      std::cerr << "bench_worker_overhead: cannot create a work dir\n";
      return 1;
    }
    work_dir = tmpl;
  }
  std::filesystem::create_directories(work_dir);
  const std::string log_path = work_dir + "/worker.log";
  const std::string queue_id = UniqueTaskQueueId("overhead");
  auto load_before = LoadAverage();

  // The worker takes credentials only from its config file.
  const std::string config_path = work_dir + "/worker.json";
  {
    nlohmann::json config = nlohmann::json::object();
    const client::Credentials& creds = (*connection)->credentials();
    if (!creds.client_id.empty()) {
      config["credentials"] = {{"client_id", creds.client_id},
                               {"access_token", creds.access_token}};
    }
    std::ofstream out(config_path);
    out << config.dump(2) << "\n";
    out.close();
    std::filesystem::permissions(config_path,
                                 std::filesystem::perms::owner_read |
                                     std::filesystem::perms::owner_write);
  }

  auto pid = Spawn(
      {worker_binary, "--config", config_path, "--queue-url", common.url,
       "--worker-pool-id", queue_id, "--worker-group", "bench", "--worker-id",
       "overhead", "--capacity", std::to_string(capacity), "--work-dir",
       work_dir + "/work", "--engine", "native", "--log-level", "info"},
      log_path);
  if (!pid.ok()) {
    std::cerr << "bench_worker_overhead: " << Describe(pid.status()) << "\n";
    return 1;
  }

  std::vector<v1::CreateTaskRequest> requests(tasks);
  for (auto& request : requests) {
    request.set_task_id(NewSlugId());
    *request.mutable_task() =
        MakeTask(queue_id, R"({"command": ["true"], "maxRunTime": 60})");
  }
  SteadyClock::time_point start = SteadyClock::now();
  CreateStats created = CreateTasks(*connection, requests, 2, 16);

  client::QueueClient queue(*connection);
  v1::TaskQueueRequest counts_request;
  counts_request.set_task_queue_id(queue_id);
  bool drained = false;
  std::string error = created.first_error;
  auto until = start + std::chrono::seconds(timeout_s);
  while (SteadyClock::now() < until) {
    int status = 0;
    if (waitpid(*pid, &status, WNOHANG) == *pid) {
      error = "the worker exited early; see " + log_path;
      *pid = 0;
      break;
    }
    auto counts = queue.GetTaskQueueCounts(counts_request);
    if (counts.ok() && counts->pending() == 0 && counts->claimed() == 0) {
      drained = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  SteadyClock::time_point end = SteadyClock::now();
  // The worker idle (its long poll parked, nothing to run): CPU it burns
  // and the memory it holds.
  double idle_cpu_percent = -1;
  int64_t idle_rss_kib = -1;
  if (*pid > 0 && drained && idle_seconds > 0) {
    std::optional<double> cpu_before = ReadCpuSeconds(*pid);
    std::this_thread::sleep_for(std::chrono::seconds(idle_seconds));
    std::optional<double> cpu_after = ReadCpuSeconds(*pid);
    if (cpu_before && cpu_after) {
      idle_cpu_percent = 100.0 * (*cpu_after - *cpu_before) / idle_seconds;
    }
    idle_rss_kib = ReadRssKib(*pid).value_or(-1);
  }
  if (*pid > 0) StopProcess(*pid, std::chrono::seconds(30));

  // The worker's own account of every run.
  Samples claim_to_start, finish_to_reported;
  int completed_lines = 0, other_lines = 0;
  {
    std::ifstream log(log_path);
    std::string line;
    const std::regex run_line(
        R"(task (\S+) run (\d+): (\S+) claim->start ([0-9.]+) ms, )"
        R"(finish->reported ([0-9.]+) ms)");
    std::smatch m;
    while (std::getline(log, line)) {
      if (!std::regex_search(line, m, run_line)) continue;
      if (m[3] != "completed") {
        ++other_lines;
        if (error.empty()) error = "a run did not complete: " + line;
        continue;
      }
      ++completed_lines;
      claim_to_start.Add(std::stod(m[4]));
      finish_to_reported.Add(std::stod(m[5]));
    }
  }

  // The server's account: run started (claimed) -> resolved.
  Samples server_claim_to_resolved;
  for (const auto& request : requests) {
    v1::TaskIdRequest id;
    id.set_task_id(request.task_id());
    auto status = queue.GetTaskStatus(id);
    if (!status.ok() || status->status().runs().empty()) continue;
    const v1::RunStatus& run = status->status().runs(0);
    if (!run.has_started() || !run.has_resolved()) continue;
    server_claim_to_resolved.Add(
        (MicrosOf(run.resolved()) - MicrosOf(run.started())) / 1e3);
  }

  const double seconds = MillisBetween(start, end) / 1e3;
  Table table(
      absl::StrCat("worker overhead: real drover-worker, native "
                   "engine, ",
                   tasks, " tasks running `true`, capacity ", capacity));
  table.Add("claim->exec median", claim_to_start.Median(), "ms",
            "target <= 5 ms (worker log)");
  table.Add("claim->exec p99", claim_to_start.Percentile(99), "ms");
  table.Add("exit->reported median", finish_to_reported.Median(), "ms",
            "worker log");
  table.Add("exit->reported p99", finish_to_reported.Percentile(99), "ms");
  table.Add("claim->resolved median (server)",
            server_claim_to_resolved.Median(), "ms",
            "run.resolved - run.started, includes `true`");
  table.Add("claim->resolved p99 (server)",
            server_claim_to_resolved.Percentile(99), "ms");
  table.Add("tasks/s through one worker", completed_lines / seconds, "tasks/s");
  if (idle_cpu_percent >= 0) {
    table.Add("idle worker CPU", idle_cpu_percent, "% of a core",
              absl::StrCat("over ", idle_seconds, " s with nothing to run"));
  }
  if (idle_rss_kib >= 0) {
    table.Add("idle worker RSS", idle_rss_kib / 1024.0, "MiB");
  }
  table.Print(std::cout);
  const bool complete = drained && completed_lines == tasks;
  if (!complete) {
    std::cout << "  WARNING: " << completed_lines << " of " << tasks
              << " runs completed; " << error << " (log: " << log_path << ")\n";
  }

  nlohmann::json doc = {
      {"benchmark", "worker_overhead"},
      {"config",
       {{"tasks", tasks},
        {"capacity", capacity},
        {"engine", "native"},
        {"worker_binary", worker_binary},
        {"worker_log", log_path},
        {"task_queue_id", queue_id}}},
      {"load_before", load_before},
      {"complete", complete},
      {"results",
       {{"claim_to_exec", claim_to_start.ToJson()},
        {"exit_to_reported", finish_to_reported.ToJson()},
        {"server_claim_to_resolved", server_claim_to_resolved.ToJson()},
        {"completed_runs", completed_lines},
        {"other_runs", other_lines},
        {"tasks_per_second", completed_lines / seconds},
        {"idle_cpu_percent", idle_cpu_percent},
        {"idle_rss_kib", idle_rss_kib},
        {"error", error}}},
      {"table", table.ToJson()}};
  if (auto s = WriteJson(common.json_path, doc); !s.ok()) {
    std::cerr << "bench_worker_overhead: " << Describe(s) << "\n";
    return 1;
  }
  return complete ? 0 : 1;
}
