// The worker's task loop against the fake queue, running real tasks with
// the real native engine and the real env, maxruntime, exit-status and
// logprefix plugins.
#include "worker/worker.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "engines/native/native_engine.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "plugins/env/env_plugin.h"
#include "plugins/exitstatus/exitstatus_plugin.h"
#include "plugins/logprefix/logprefix_plugin.h"
#include "plugins/maxruntime/maxruntime_plugin.h"
#include "worker/testing/fake_queue.h"

namespace drover::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
namespace fakes = ::drover::worker::testing;
using fakes::FakeQueue;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Polls `condition` until it holds or `timeout` passes.
template <typename Condition>
bool Eventually(Condition condition,
                absl::Duration timeout = absl::Seconds(60)) {
  const absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    if (condition()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return condition();
}

// The real native engine with a switch for its health, to check that the
// worker stops claiming while its engine is unhealthy.
class SwitchableHealthEngine final : public engines::Engine {
 public:
  explicit SwitchableHealthEngine(std::unique_ptr<engines::Engine> engine)
      : engine_(std::move(engine)) {}
  std::string_view Name() const override { return engine_->Name(); }
  std::vector<std::string> PayloadKeys() const override {
    return engine_->PayloadKeys();
  }
  absl::Status ValidatePayload(const json& payload) const override {
    return engine_->ValidatePayload(payload);
  }
  absl::StatusOr<std::unique_ptr<engines::Sandbox>> NewSandbox(
      engines::SandboxSpec spec) override {
    return engine_->NewSandbox(std::move(spec));
  }
  absl::Status CleanUpLeftovers() override {
    return engine_->CleanUpLeftovers();
  }
  absl::Status CheckHealth() override {
    ++health_checks_;
    if (healthy_) return absl::OkStatus();
    return InternalError("the test says the engine is down");
  }
  void set_healthy(bool healthy) { healthy_ = healthy; }
  int health_checks() const { return health_checks_; }

 private:
  std::unique_ptr<engines::Engine> engine_;
  std::atomic<bool> healthy_{true};
  std::atomic<int> health_checks_{0};
};

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = drover::testing::MakeTempDir("drover-worker-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
    // Per-task users and the native engine's cgroups may need to traverse it.
    fs::permissions(dir_, fs::perms::all, fs::perm_options::replace);
    marks_ = dir_ / "marks";
    fs::create_directories(marks_);
    engines::native::NativeEngineOptions options;
    options.work_dir = dir_ / "work";
    options.kill_grace = absl::Seconds(2);
    auto engine = engines::native::NativeEngine::Create(options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::make_unique<SwitchableHealthEngine>(std::move(*engine));
  }

  void TearDown() override {
    StopWorker();
    // Every reclaim and report carried the run's current task credentials.
    if (queue_) EXPECT_EQ(queue_->AuthenticationFailures(), 0);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Builds the plugins (logprefix, env, maxruntime, exit-status, the
  // production order) and starts a worker on `queue`. `unit` is the
  // length of one maxRunTime second.
  void StartWorker(FakeQueue& queue, int capacity,
                   absl::Duration shutdown_grace = absl::Seconds(60),
                   absl::Duration unit = absl::Seconds(1)) {
    plugins_.clear();
    plugins_.push_back(std::make_unique<plugins::logprefix::LogPrefixPlugin>(
        plugins::logprefix::LogPrefixOptions{}, clock_));
    plugins_.push_back(std::make_unique<plugins::env::EnvPlugin>(
        plugins::env::EnvPluginOptions{}));
    plugins::maxruntime::MaxRunTimeOptions max_options;
    max_options.unit = unit;
    plugins_.push_back(
        std::make_unique<plugins::maxruntime::MaxRunTimePlugin>(max_options));
    plugins_.push_back(
        std::make_unique<plugins::exitstatus::ExitStatusPlugin>());
    std::vector<plugins::Plugin*> pointers;
    for (auto& plugin : plugins_) pointers.push_back(plugin.get());

    WorkerOptions options;
    options.run.worker = WorkerIdentity{"test/fake", "test-group", "test-id"};
    options.run.work_dir = dir_ / "work";
    options.run.queue_address = "127.0.0.1:1";
    options.run.min_reclaim_interval = absl::Milliseconds(50);
    options.run.report_backoff = absl::Milliseconds(50);
    options.capacity = capacity;
    options.shutdown_grace = shutdown_grace;
    options.min_backoff = absl::Milliseconds(20);
    options.max_backoff = absl::Milliseconds(200);
    options.health_interval = absl::Milliseconds(50);
    worker_ =
        std::make_unique<Worker>(queue, *engine_, pointers, options, clock_);
    worker_->SetRunObserver([this](const TaskRunSummary& summary) {
      std::lock_guard<std::mutex> lock(mu_);
      summaries_[summary.task_id] = summary;
    });
    run_done_ = false;
    thread_ = std::thread([this] {
      worker_->Run();
      run_done_ = true;
    });
  }

  // The queue outlives the worker: TearDown stops the worker first.
  FakeQueue& NewQueue() {
    queue_ = std::make_unique<FakeQueue>();
    return *queue_;
  }

  void StopWorker() {
    if (!worker_) return;
    worker_->Shutdown();
    if (thread_.joinable()) thread_.join();
    worker_.reset();
  }

  std::optional<TaskRunSummary> Summary(const std::string& task_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = summaries_.find(task_id);
    if (it == summaries_.end()) return std::nullopt;
    return it->second;
  }

  std::string LogOf(const std::string& task_id) {
    std::optional<TaskRunSummary> summary;
    Eventually([&] { return (summary = Summary(task_id)).has_value(); });
    if (!summary) return "";
    return ReadFile(summary->log_path);
  }

  // A payload running `script` with sh.
  static std::string ShellPayload(const std::string& script,
                                  int max_run_time = 120,
                                  json extra = json::object()) {
    json payload = {{"command", json::array({"sh", "-c", script})},
                    {"maxRunTime", max_run_time}};
    for (auto& [key, value] : extra.items()) payload[key] = value;
    return payload.dump();
  }

  std::string Mark(const std::string& name) const {
    return (marks_ / name).string();
  }

  static std::optional<fakes::Report> ReportFor(const FakeQueue& queue,
                                                const std::string& task_id) {
    for (const auto& report : queue.Reports()) {
      if (report.task_id == task_id) return report;
    }
    return std::nullopt;
  }

  fs::path dir_;
  fs::path marks_;
  SystemClock clock_;
  std::unique_ptr<SwitchableHealthEngine> engine_;
  std::unique_ptr<FakeQueue> queue_;
  std::vector<std::unique_ptr<plugins::Plugin>> plugins_;
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
  std::atomic<bool> run_done_{false};
  std::mutex mu_;
  std::map<std::string, TaskRunSummary> summaries_;
};

TEST_F(WorkerTest, RespectsCapacityUnderABacklog) {
  FakeQueue& queue = NewQueue();
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i)
    ids.push_back(queue.AddTask(ShellPayload("sleep 0.2")));
  StartWorker(queue, 3);
  ASSERT_TRUE(queue.WaitForReports(12, absl::Seconds(180)));
  // The first claim found the backlog and filled the capacity, never more.
  EXPECT_EQ(queue.MaxOutstanding(), 3);
  EXPECT_LE(queue.MaxAskedFor(), 3);
  for (const auto& request : queue.ClaimRequests()) {
    EXPECT_GE(request.max_tasks, 1);
    EXPECT_LE(request.max_tasks + request.outstanding, 3);
  }
  for (const auto& report : queue.Reports()) {
    EXPECT_EQ(report.state, "completed") << report.task_id;
  }
  // The worker counts a run once its report is through.
  EXPECT_TRUE(Eventually([&] { return worker_->Stats().completed == 12; }));
  EXPECT_EQ(worker_->Stats().claimed, 12);
}

TEST_F(WorkerTest, AsksForExactlyTheFreeCapacity) {
  FakeQueue& queue = NewQueue();
  const std::string wait_for_release = "touch " + Mark("$TASK_ID") +
                                       "; while [ ! -e " + Mark("release") +
                                       " ]; do sleep 0.05; done";
  const std::string a = queue.AddTask(ShellPayload(wait_for_release));
  StartWorker(queue, 3);
  // A claims one slot; the next ask is for the two left.
  ASSERT_TRUE(Eventually([&] { return queue.ClaimRequests().size() >= 2; }));
  const std::string b = queue.AddTask(ShellPayload(wait_for_release));
  const std::string c = queue.AddTask(ShellPayload(wait_for_release));
  ASSERT_TRUE(Eventually([&] {
    return fs::exists(Mark(a)) && fs::exists(Mark(b)) && fs::exists(Mark(c));
  }));
  // Full: no claim is in flight and none is made.
  const int calls_when_full = queue.claim_calls();
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_EQ(queue.claim_calls(), calls_when_full);

  auto requests = queue.ClaimRequests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].max_tasks, 3);
  EXPECT_EQ(requests[1].max_tasks, 2);
  for (const auto& request : requests) {
    // Nothing finished yet, so the worker's view and the queue's agree.
    EXPECT_EQ(request.max_tasks + request.outstanding, 3);
  }

  std::ofstream(Mark("release")).put('x');
  ASSERT_TRUE(queue.WaitForReports(3, absl::Seconds(60)));
  // With everything done, the worker asks for its whole capacity again.
  EXPECT_TRUE(Eventually([&] {
    auto all = queue.ClaimRequests();
    return all.back().max_tasks == 3 && all.size() > requests.size();
  }));
}

TEST_F(WorkerTest, RunsTasksConcurrently) {
  FakeQueue& queue = NewQueue();
  // Each task announces itself, then waits until all four have: run one
  // at a time, the first would wait until its maxRunTime killed it.
  const std::string script = "touch " + Mark("$TASK_ID") + "; while [ $(ls " +
                             marks_.string() +
                             " | wc -l) -lt 4 ]; do sleep 0.05; done";
  for (int i = 0; i < 4; ++i) queue.AddTask(ShellPayload(script, 60));
  StartWorker(queue, 4);
  ASSERT_TRUE(queue.WaitForReports(4, absl::Seconds(120)));
  for (const auto& report : queue.Reports()) {
    EXPECT_EQ(report.state, "completed") << LogOf(report.task_id);
  }
}

TEST_F(WorkerTest, ReclaimsKeepALongTaskAlive) {
  FakeQueue& queue = NewQueue();
  // The claim lasts 2 s; the task needs 5. Each reclaim also renews the
  // task credentials, which expire with the claim: reports and later
  // reclaims only work with the renewed ones.
  const std::string id =
      queue.AddTask(ShellPayload("sleep 5"), absl::Seconds(2));
  StartWorker(queue, 1);
  ASSERT_TRUE(queue.WaitForReports(1, absl::Seconds(60)));
  auto report = ReportFor(queue, id);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->state, "completed") << LogOf(id);
  EXPECT_GE(queue.ReclaimCount(id), 3);
  EXPECT_TRUE(queue.ExpiredClaims().empty());
}

TEST_F(WorkerTest, ReclaimConflictAbortsTheTaskAndReportsNothing) {
  FakeQueue& queue = NewQueue();
  const std::string id =
      queue.AddTask(ShellPayload("touch " + Mark("started") + "; sleep 60"),
                    absl::Seconds(1));
  StartWorker(queue, 1);
  ASSERT_TRUE(Eventually([&] { return fs::exists(Mark("started")); }));
  queue.CancelRun(id);
  const absl::Time canceled = absl::Now();
  ASSERT_TRUE(Eventually([&] { return Summary(id).has_value(); }));
  EXPECT_LT(absl::Now() - canceled, absl::Seconds(30));
  EXPECT_TRUE(Summary(id)->claim_lost);
  EXPECT_FALSE(Summary(id)->reported);
  EXPECT_TRUE(queue.Reports().empty());
  EXPECT_TRUE(Eventually([&] { return worker_->Stats().claim_lost == 1; }));
  EXPECT_NE(LogOf(id).find("reclaim refused"), std::string::npos) << LogOf(id);
}

TEST_F(WorkerTest, MalformedPayloadResolvesWithTheReasonInTheLog) {
  FakeQueue& queue = NewQueue();
  const std::string bad_command =
      queue.AddTask(json{{"command", "echo hi"}, {"maxRunTime", 10}}.dump());
  const std::string not_json = queue.AddTask("{not json");
  const std::string no_max_run_time =
      queue.AddTask(json{{"command", json::array({"true"})}}.dump());
  StartWorker(queue, 3);
  ASSERT_TRUE(queue.WaitForReports(3, absl::Seconds(60)));
  for (const auto& id : {bad_command, not_json, no_max_run_time}) {
    auto report = ReportFor(queue, id);
    ASSERT_TRUE(report.has_value());
    EXPECT_EQ(report->state, "exception");
    EXPECT_EQ(report->reason, "malformed-payload");
  }
  EXPECT_NE(LogOf(bad_command).find("payload.command"), std::string::npos)
      << LogOf(bad_command);
  EXPECT_NE(LogOf(not_json).find("not valid JSON"), std::string::npos)
      << LogOf(not_json);
  EXPECT_NE(LogOf(no_max_run_time).find("payload.maxRunTime"),
            std::string::npos)
      << LogOf(no_max_run_time);
  // Malformed runs never started, so they add nothing to the overhead.
  EXPECT_EQ(Summary(bad_command)->claim_to_start, absl::ZeroDuration());
}

TEST_F(WorkerTest, UnknownPayloadKeyIsMalformed) {
  FakeQueue& queue = NewQueue();
  const std::string id =
      queue.AddTask(ShellPayload("true", 10, json{{"colour", "blue"}}));
  StartWorker(queue, 1);
  ASSERT_TRUE(queue.WaitForReports(1, absl::Seconds(60)));
  auto report = ReportFor(queue, id);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->state, "exception");
  EXPECT_EQ(report->reason, "malformed-payload");
  const std::string log = LogOf(id);
  EXPECT_NE(log.find("unknown payload field \"colour\""), std::string::npos)
      << log;
  // The message lists what the engine and the plugins understand.
  EXPECT_NE(log.find("onExitStatus"), std::string::npos) << log;
  EXPECT_NE(log.find("maxRunTime"), std::string::npos) << log;
}

TEST_F(WorkerTest, MaxRunTimeFailsTheTaskAndSaysSo) {
  FakeQueue& queue = NewQueue();
  const std::string id =
      queue.AddTask(ShellPayload("echo $$ > " + Mark("pid") + "; sleep 60", 5));
  // One maxRunTime second lasts 100 ms here: the limit is 0.5 s.
  StartWorker(queue, 1, absl::Seconds(60), absl::Milliseconds(100));
  ASSERT_TRUE(queue.WaitForReports(1, absl::Seconds(40)));
  auto report = ReportFor(queue, id);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->state, "failed");
  const std::string log = LogOf(id);
  EXPECT_NE(log.find("maxRunTime of 5 s exceeded"), std::string::npos) << log;
  // The task's processes are gone.
  const std::string pid_text = ReadFile(Mark("pid"));
  ASSERT_FALSE(pid_text.empty());
  const pid_t pid = std::stoi(pid_text);
  EXPECT_TRUE(Eventually([&] { return kill(pid, 0) != 0 && errno == ESRCH; },
                         absl::Seconds(10)));
}

TEST_F(WorkerTest, ExitStatusDecidesTheResolution) {
  FakeQueue& queue = NewQueue();
  const json retry = {{"onExitStatus", {{"retry", json::array({42})}}}};
  const std::string ok = queue.AddTask(ShellPayload("exit 0", 30, retry));
  const std::string intermittent =
      queue.AddTask(ShellPayload("exit 42", 30, retry));
  const std::string failed = queue.AddTask(ShellPayload("exit 3", 30, retry));
  StartWorker(queue, 3);
  ASSERT_TRUE(queue.WaitForReports(3, absl::Seconds(60)));
  EXPECT_EQ(ReportFor(queue, ok)->state, "completed");
  EXPECT_EQ(ReportFor(queue, intermittent)->state, "exception");
  EXPECT_EQ(ReportFor(queue, intermittent)->reason, "intermittent-task");
  EXPECT_EQ(ReportFor(queue, failed)->state, "failed");
  EXPECT_NE(LogOf(intermittent).find("onExitStatus.retry"), std::string::npos)
      << LogOf(intermittent);
}

TEST_F(WorkerTest, PluginsShapeTheTaskAndItsLog) {
  FakeQueue& queue = NewQueue();
  const std::string id = queue.AddTask(
      ShellPayload("echo \"task=$TASK_ID run=$RUN_ID greeting=$GREETING "
                   "client=$DROVER_CLIENT_ID\"",
                   30, json{{"env", {{"GREETING", "hello"}}}}));
  StartWorker(queue, 1);
  ASSERT_TRUE(queue.WaitForReports(1, absl::Seconds(60)));
  EXPECT_EQ(ReportFor(queue, id)->state, "completed");
  const std::string log = LogOf(id);
  // logprefix's header, then the task's own output with env's variables.
  EXPECT_NE(log.find("[drover] task: " + id), std::string::npos) << log;
  EXPECT_NE(log.find("[drover] worker: test-group/test-id"), std::string::npos)
      << log;
  // The task credentials of the claim reach the task.
  EXPECT_NE(
      log.find("task=" + id + " run=0 greeting=hello client=task-client/" + id),
      std::string::npos)
      << log;
  EXPECT_GT(Summary(id)->claim_to_start, absl::ZeroDuration());
  EXPECT_GT(Summary(id)->finish_to_reported, absl::ZeroDuration());
}

TEST_F(WorkerTest, ReportsOnceTheQueueIsBack) {
  FakeQueue& queue = NewQueue();
  const std::string id =
      queue.AddTask(ShellPayload("touch " + Mark("started") + "; sleep 1"));
  // A free slot keeps the claim loop going while the queue is down.
  StartWorker(queue, 2);
  ASSERT_TRUE(Eventually([&] { return fs::exists(Mark("started")); }));
  queue.SetUnavailable(true);
  // The task ends while the queue is down; the worker keeps trying.
  ASSERT_TRUE(Eventually([&] { return queue.RefusedReports() >= 2; }));
  EXPECT_TRUE(queue.Reports().empty());
  EXPECT_FALSE(Summary(id).has_value());
  queue.SetUnavailable(false);
  ASSERT_TRUE(queue.WaitForReports(1, absl::Seconds(30)));
  EXPECT_EQ(ReportFor(queue, id)->state, "completed");
  ASSERT_TRUE(Eventually([&] { return Summary(id).has_value(); }));
  EXPECT_TRUE(Summary(id)->reported);
  // Claims failed meanwhile too, and the worker is still claiming.
  EXPECT_GT(worker_->Stats().claim_errors, 0);
  const int calls = queue.claim_calls();
  EXPECT_TRUE(Eventually([&] { return queue.claim_calls() > calls; }));
}

TEST_F(WorkerTest, ShutdownLetsARunningTaskFinishWithinTheGracePeriod) {
  FakeQueue& queue = NewQueue();
  const std::string id =
      queue.AddTask(ShellPayload("touch " + Mark("started") + "; sleep 1"));
  StartWorker(queue, 2, absl::Seconds(60));
  ASSERT_TRUE(Eventually([&] { return fs::exists(Mark("started")); }));
  worker_->Shutdown();
  // No more claims once stopping, even with work waiting.
  const std::string late = queue.AddTask(ShellPayload("true"));
  thread_.join();
  EXPECT_TRUE(run_done_);
  auto report = ReportFor(queue, id);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->state, "completed") << LogOf(id);
  EXPECT_FALSE(ReportFor(queue, late).has_value());
  EXPECT_EQ(worker_->Stats().claimed, 1);
}

TEST_F(WorkerTest, ShutdownBeyondTheGracePeriodResolvesWorkerShutdown) {
  FakeQueue& queue = NewQueue();
  const std::string id =
      queue.AddTask(ShellPayload("echo $$ > " + Mark("pid") + "; touch " +
                                 Mark("started") + "; sleep 60"));
  StartWorker(queue, 1, absl::Milliseconds(300));
  ASSERT_TRUE(Eventually([&] { return fs::exists(Mark("started")); }));
  const absl::Time asked = absl::Now();
  worker_->Shutdown();
  thread_.join();
  EXPECT_LT(absl::Now() - asked, absl::Seconds(30));
  auto report = ReportFor(queue, id);
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->state, "exception");
  EXPECT_EQ(report->reason, "worker-shutdown");
  EXPECT_NE(LogOf(id).find("aborted: worker-shutdown"), std::string::npos)
      << LogOf(id);
  // Nothing the task started outlives it.
  const std::string pid_text = ReadFile(Mark("pid"));
  ASSERT_FALSE(pid_text.empty());
  const pid_t pid = std::stoi(pid_text);
  EXPECT_TRUE(Eventually([&] { return kill(pid, 0) != 0 && errno == ESRCH; },
                         absl::Seconds(10)));
}

TEST_F(WorkerTest, DoesNotClaimWhileTheEngineIsUnhealthy) {
  FakeQueue& queue = NewQueue();
  const std::string id = queue.AddTask(ShellPayload("true"));
  engine_->set_healthy(false);
  StartWorker(queue, 1);
  ASSERT_TRUE(Eventually([&] { return engine_->health_checks() >= 5; }));
  EXPECT_EQ(queue.claim_calls(), 0);
  EXPECT_FALSE(worker_->Stats().engine_healthy);
  EXPECT_TRUE(queue.Reports().empty());
  engine_->set_healthy(true);
  ASSERT_TRUE(queue.WaitForReports(1, absl::Seconds(60)));
  EXPECT_EQ(ReportFor(queue, id)->state, "completed");
  EXPECT_TRUE(worker_->Stats().engine_healthy);
}

}  // namespace
}  // namespace drover::worker
