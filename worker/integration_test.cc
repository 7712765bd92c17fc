// The real drover-worker binary against the real drover-queue (embedded
// PostgreSQL in a temporary data directory) with the native engine: tasks
// run and resolve; capacity under a backlog; SIGTERM within and beyond the
// grace period; SIGKILL with the task retried on a second worker; a queue
// restart mid-task; metrics and an idle worker's CPU use; --check-config.
//
// Credential expiry: a worker registered through the worker manager with
// 60 s credentials re-registers before they expire and keeps working past
// the first expiry. The other workers call the queue as a permanent client
// that holds only the claim-work and worker-id scopes (created with the
// root client the queue bootstraps); reclaims and reports travel with the
// task credentials of each run.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/support/e2e_support.h"

namespace drover::worker {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using tests::support::Child;
using tests::support::Describe;
using tests::support::Eventually;
using tests::support::FreePort;
using tests::support::MakeTempDir;
using tests::support::PostgresUnavailableReason;
using tests::support::ReadFile;

// CPU ticks (user + system) a process has used, from /proc/<pid>/stat.
long CpuTicks(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  // Fields after the parenthesised command name: state is 3rd, utime 14th.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  std::vector<std::string> fields;
  std::string field;
  while (rest >> field) fields.push_back(field);
  if (fields.size() < 13) return -1;
  return std::stol(fields[11]) + std::stol(fields[12]);
}

// True when `pid` no longer runs (gone, or a zombie nobody reaped yet).
bool ProcessGone(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (stat.empty() || close == std::string::npos) return true;
  return stat.size() > close + 2 && stat[close + 2] == 'Z';
}

// The suite's drover-queue.
class QueueServer : public tests::support::QueueServer {
 public:
  QueueServer(fs::path dir, std::vector<std::string> extra_flags)
      : tests::support::QueueServer(DROVER_QUEUE_BINARY, std::move(dir),
                                    std::move(extra_flags)) {}
};

// Things every test needs: a temporary directory, worker processes, task
// creation and status polling.
class WorkerHarness {
 public:
  explicit WorkerHarness(fs::path dir) : dir_(std::move(dir)) {
    fs::create_directories(dir_ / "marks");
  }

  fs::path Mark(const std::string& name) const { return dir_ / "marks" / name; }

  // Starts a worker (native engine, default plugins) in group
  // "integration"; waits until it serves.
  std::unique_ptr<Child> StartWorker(QueueServer& queue,
                                     const std::string& pool,
                                     const std::string& worker_id, int capacity,
                                     double grace_seconds, int metrics_port = 0,
                                     const std::string& work_dir_name = "") {
    tests::support::WorkerOptions options;
    options.binary = DROVER_WORKER_BINARY;
    options.pool = pool;
    options.group = "integration";
    options.worker_id = worker_id;
    options.capacity = capacity;
    options.shutdown_grace_seconds = grace_seconds;
    options.metrics_port = metrics_port;
    if (!work_dir_name.empty()) options.work_dir = dir_ / work_dir_name;
    return tests::support::StartWorker(queue, options, dir_);
  }

  // Creates a task running `script` with sh; returns its id.
  std::string CreateTask(QueueServer& queue, const std::string& pool,
                         const std::string& script, int retries = 0,
                         json payload_extra = json::object(),
                         int max_run_time = 120) {
    json payload = {{"command", json::array({"sh", "-c", script})},
                    {"maxRunTime", max_run_time}};
    for (auto& [key, value] : payload_extra.items()) payload[key] = value;
    return CreateRaw(queue, pool, payload, retries);
  }

  std::string CreateRaw(QueueServer& queue, const std::string& pool,
                        const json& payload, int retries = 0) {
    return tests::support::CreateTask(queue.client(), pool, payload, retries,
                                      "worker integration test");
  }

  static std::optional<v1::TaskStatus> Status(QueueServer& queue,
                                              const std::string& task_id) {
    return tests::support::TaskStatus(queue.client(), task_id);
  }

  static bool IsResolved(const std::string& state) {
    return tests::support::IsResolved(state);
  }

  static v1::TaskStatus WaitResolved(
      QueueServer& queue, const std::string& task_id,
      absl::Duration timeout = absl::Seconds(120)) {
    return tests::support::WaitResolved(queue.client(), task_id, timeout);
  }

 private:
  fs::path dir_;
};

// One queue for the whole suite (starting PostgreSQL is slow); each test
// uses its own worker pool so they do not see each other's tasks.
class WorkerIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = PostgresUnavailableReason();
    if (!skip_reason_.empty()) return;
    dir_ = MakeTempDir("drover-worker-it");
    // A short claim timeout so that a killed worker's claim expires
    // quickly; live workers reclaim well within it.
    queue_ = new QueueServer(
        dir_, {"--claim-timeout", "8s", "--claim-expiry-interval", "1s",
               "--poll-timeout", "5s"});
    std::string failed = queue_->Start();
    if (!failed.empty()) setup_error_ = failed;
  }

  static void TearDownTestSuite() {
    if (queue_ != nullptr) {
      queue_->Stop();
      delete queue_;
      queue_ = nullptr;
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    test_dir_ = dir_ / info->name();
    harness_ = std::make_unique<WorkerHarness>(test_dir_);
    pool_ = tests::support::PoolForTest("it");
  }

  static inline std::string skip_reason_;
  static inline std::string setup_error_;
  static inline fs::path dir_;
  static inline QueueServer* queue_ = nullptr;
  fs::path test_dir_;
  std::unique_ptr<WorkerHarness> harness_;
  std::string pool_;
};

TEST_F(WorkerIntegrationTest, TasksRunAndResolveWithMetricsAndAnIdleWorker) {
  const int metrics_port = FreePort();
  auto worker =
      harness_->StartWorker(*queue_, pool_, "resolver", 2, 30, metrics_port);
  const json retry_42 = {{"onExitStatus", {{"retry", json::array({42})}}}};
  const std::string ok = harness_->CreateTask(
      *queue_, pool_, "echo hello from $TASK_ID run $RUN_ID");
  const std::string fails = harness_->CreateTask(*queue_, pool_, "exit 3");
  const std::string intermittent =
      harness_->CreateTask(*queue_, pool_, "exit 42", 0, retry_42);
  const std::string malformed = harness_->CreateRaw(
      *queue_, pool_, json{{"command", 5}, {"maxRunTime", 10}});
  const std::string too_long =
      harness_->CreateTask(*queue_, pool_, "sleep 60", 0, json::object(), 1);

  struct Expect {
    std::string id, state, reason;
  };
  for (const Expect& e :
       std::vector<Expect>{{ok, "completed", "completed"},
                           {fails, "failed", "failed"},
                           {intermittent, "exception", "intermittent-task"},
                           {malformed, "exception", "malformed-payload"},
                           {too_long, "failed", "failed"}}) {
    v1::TaskStatus status = WorkerHarness::WaitResolved(*queue_, e.id);
    EXPECT_EQ(status.state(), e.state) << Describe(status);
    ASSERT_EQ(status.runs_size(), 1) << Describe(status);
    EXPECT_EQ(status.runs(0).reason_resolved(), e.reason) << Describe(status);
    EXPECT_EQ(status.runs(0).worker_group(), "integration");
    EXPECT_EQ(status.runs(0).worker_id(), "resolver");
  }
  ASSERT_TRUE(worker->Running()) << worker->Output();

  // The worker's own view, over HTTP.
  httplib::Client http("127.0.0.1", metrics_port);
  std::string metrics;
  ASSERT_TRUE(Eventually(
      [&] {
        auto response = http.Get("/metrics");
        if (!response || response->status != 200) return false;
        metrics = response->body;
        return metrics.find("drover_worker_tasks_exception_total 2\n") !=
               std::string::npos;
      },
      absl::Seconds(30)))
      << metrics;
  for (const char* line :
       {"drover_worker_tasks_claimed_total 5\n",
        "drover_worker_tasks_completed_total 1\n",
        "drover_worker_tasks_failed_total 2\n",
        "drover_worker_tasks_running 0\n", "drover_worker_capacity 2\n",
        "drover_worker_claim_to_start_seconds_count 4\n",
        "drover_worker_finish_to_reported_seconds_count 5\n"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << metrics;
  }

  // Idle: blocked in a long-poll, the worker burns (almost) no CPU.
  absl::SleepFor(absl::Seconds(1));
  const long before = CpuTicks(worker->pid());
  absl::SleepFor(absl::Seconds(4));
  const long after = CpuTicks(worker->pid());
  ASSERT_GE(before, 0);
  const long hz = sysconf(_SC_CLK_TCK);
  std::cout << "idle worker: " << (after - before) << " CPU ticks (1/" << hz
            << " s) in 4 s" << std::endl;
  EXPECT_LE(after - before, 4) << "an idle worker should not use CPU";

  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(absl::Seconds(60)), 0) << worker->Output();
}

// The most task processes alive at once, from the "start <ns>" / "end <ns>"
// lines the tasks appended to `log`; an end sorts before a start at the
// same instant. -1 when a task did not write both of its lines.
int MostAtOnce(const std::string& log, int tasks) {
  std::vector<std::pair<int64_t, int>> events;  // (time, +1 start / -1 end)
  std::istringstream lines(log);
  std::string kind;
  int64_t ns = 0;
  while (lines >> kind >> ns) events.emplace_back(ns, kind == "start" ? 1 : -1);
  if (static_cast<int>(events.size()) != 2 * tasks) return -1;
  std::sort(events.begin(), events.end());
  int running = 0;
  int most = 0;
  for (const auto& [time, delta] : events) {
    running += delta;
    most = std::max(most, running);
  }
  return most;
}

TEST_F(WorkerIntegrationTest, RespectsCapacityUnderABacklog) {
  // The tasks themselves record when they run: the queue's view cannot
  // show capacity exactly, since a run stays "running" there until the
  // worker's report arrives, after the worker has freed its slot.
  const fs::path log = test_dir_ / "intervals.log";
  const std::string script =
      absl::StrCat("echo start $(date +%s%N) >> ", log.string(),
                   "; sleep 1.5; echo end $(date +%s%N) >> ", log.string());
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(harness_->CreateTask(*queue_, pool_, script));
  }
  auto worker = harness_->StartWorker(*queue_, pool_, "capacity", 2, 30);
  for (const auto& id : ids) {
    v1::TaskStatus status =
        WorkerHarness::WaitResolved(*queue_, id, absl::Seconds(180));
    EXPECT_EQ(status.state(), "completed") << Describe(status);
  }
  const std::string intervals = ReadFile(log);
  const int most = MostAtOnce(intervals, static_cast<int>(ids.size()));
  EXPECT_EQ(most, 2) << "at most 2 at once, and the backlog should fill the "
                        "capacity; the tasks wrote:\n"
                     << intervals;
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(absl::Seconds(60)), 0) << worker->Output();
}

TEST_F(WorkerIntegrationTest, SigtermWithinTheGracePeriodFinishesTheTask) {
  auto worker = harness_->StartWorker(*queue_, pool_, "graceful", 1, 60);
  const std::string id = harness_->CreateTask(
      *queue_, pool_,
      "touch " + harness_->Mark("started").string() + "; sleep 3");
  ASSERT_TRUE(Eventually([&] { return fs::exists(harness_->Mark("started")); },
                         absl::Seconds(60)))
      << worker->Output();
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(absl::Seconds(60)), 0) << worker->Output();
  v1::TaskStatus status = WorkerHarness::WaitResolved(*queue_, id);
  EXPECT_EQ(status.state(), "completed") << Describe(status);
  EXPECT_EQ(status.runs_size(), 1) << Describe(status);
}

TEST_F(WorkerIntegrationTest, SigtermBeyondTheGracePeriodIsRetriedElsewhere) {
  auto first = harness_->StartWorker(*queue_, pool_, "impatient", 1, 1);
  // Run 0 outlives the grace period; the retry finishes at once.
  const std::string id = harness_->CreateTask(
      *queue_, pool_,
      "if [ \"$RUN_ID\" = 0 ]; then touch " +
          harness_->Mark("started").string() + "; sleep 60; fi",
      /*retries=*/2);
  ASSERT_TRUE(Eventually([&] { return fs::exists(harness_->Mark("started")); },
                         absl::Seconds(60)))
      << first->Output();
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(absl::Seconds(60)), 0) << first->Output();
  std::optional<v1::TaskStatus> status = WorkerHarness::Status(*queue_, id);
  ASSERT_TRUE(status.has_value());
  ASSERT_GE(status->runs_size(), 2) << Describe(*status);
  EXPECT_EQ(status->runs(0).state(), "exception") << Describe(*status);
  EXPECT_EQ(status->runs(0).reason_resolved(), "worker-shutdown");
  EXPECT_EQ(status->runs(1).state(), "pending") << Describe(*status);

  auto second = harness_->StartWorker(*queue_, pool_, "successor", 1, 30);
  v1::TaskStatus done = WorkerHarness::WaitResolved(*queue_, id);
  EXPECT_EQ(done.state(), "completed") << Describe(done);
  ASSERT_EQ(done.runs_size(), 2) << Describe(done);
  EXPECT_EQ(done.runs(1).worker_id(), "successor");
  second->Signal(SIGTERM);
  EXPECT_EQ(second->Wait(absl::Seconds(60)), 0) << second->Output();
}

TEST_F(WorkerIntegrationTest, SigkillMidTaskIsRetriedOnASecondWorker) {
  auto first =
      harness_->StartWorker(*queue_, pool_, "doomed", 1, 30, 0, "shared-work");
  const std::string id = harness_->CreateTask(
      *queue_, pool_,
      "if [ \"$RUN_ID\" = 0 ]; then echo $$ > " +
          harness_->Mark("pid").string() + "; sleep 120; fi",
      /*retries=*/2);
  ASSERT_TRUE(
      Eventually([&] { return !ReadFile(harness_->Mark("pid")).empty(); },
                 absl::Seconds(60)))
      << first->Output();
  const pid_t orphan = std::stoi(ReadFile(harness_->Mark("pid")));
  first->Signal(SIGKILL);
  EXPECT_EQ(first->Wait(absl::Seconds(30)), 128 + SIGKILL);

  // Nobody reclaims: the claim expires and the queue schedules a retry.
  std::optional<v1::TaskStatus> status;
  ASSERT_TRUE(Eventually(
      [&] {
        status = WorkerHarness::Status(*queue_, id);
        return status && status->runs_size() >= 2;
      },
      absl::Seconds(90)))
      << (status ? Describe(*status) : "no status");
  EXPECT_EQ(status->runs(0).reason_resolved(), "claim-expired")
      << Describe(*status);

  // The second worker shares the work directory, so it also cleans up what
  // the killed one left running.
  auto second =
      harness_->StartWorker(*queue_, pool_, "rescuer", 1, 30, 0, "shared-work");
  v1::TaskStatus done = WorkerHarness::WaitResolved(*queue_, id);
  EXPECT_EQ(done.state(), "completed") << Describe(done);
  ASSERT_EQ(done.runs_size(), 2) << Describe(done);
  EXPECT_EQ(done.runs(1).worker_id(), "rescuer");
  EXPECT_TRUE(
      Eventually([&] { return ProcessGone(orphan); }, absl::Seconds(20)))
      << "the killed worker's task (pid " << orphan << ") is still running";
  second->Signal(SIGTERM);
  EXPECT_EQ(second->Wait(absl::Seconds(60)), 0) << second->Output();
}

// Registered through the worker manager with credentials that live 60 s
// (the shortest reregistration_timeout a pool accepts): the worker
// re-registers before they expire, so the worker row's credentials_expire
// moves on, and it keeps claiming and completing tasks well past the
// first expiry.
TEST_F(WorkerIntegrationTest, ReregistersBeforeItsCredentialsExpire) {
  v1::WorkerPoolConfig pool_config;
  pool_config.set_reregistration_timeout_seconds(60);
  auto pool = queue_->CreateWorkerPool(pool_, pool_config);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto secret = queue_->CreateWorker(pool_, "integration", "renewer", 1);
  ASSERT_TRUE(secret.ok()) << secret.status();
  const fs::path secret_file = test_dir_ / "renewer.secret";
  std::ofstream(secret_file) << *secret;

  tests::support::WorkerOptions options;
  options.binary = DROVER_WORKER_BINARY;
  options.pool = pool_;
  options.group = "integration";
  options.worker_id = "renewer";
  options.registration_secret_file = secret_file;
  // Re-register a third of the way through each 60 s lifetime.
  options.registration = {{"reregister_fraction", 0.33},
                          {"heartbeat_seconds", 5}};
  auto worker = tests::support::StartWorker(*queue_, options, test_dir_);

  v1::WorkerKey key;
  key.set_worker_pool_id(pool_);
  key.set_worker_group("integration");
  key.set_worker_id("renewer");
  auto first = queue_->worker_manager().GetWorker(key);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_credentials_expire()) << first->DebugString();
  const int64_t first_expiry = first->credentials_expire().seconds();
  const absl::Time first_expires = absl::FromUnixSeconds(first_expiry);
  EXPECT_LE(first_expires, absl::Now() + absl::Seconds(61));

  // Tasks keep completing, one after the other, until well past the first
  // expiry; meanwhile the expiry must advance.
  std::vector<int64_t> expiries = {first_expiry};
  int completed = 0;
  while (absl::Now() < first_expires + absl::Seconds(10)) {
    const std::string id = harness_->CreateTask(*queue_, pool_, "true");
    v1::TaskStatus status = WorkerHarness::WaitResolved(*queue_, id);
    ASSERT_EQ(status.state(), "completed") << Describe(status) << "\n"
                                           << worker->Output();
    ++completed;
    auto now = queue_->worker_manager().GetWorker(key);
    ASSERT_TRUE(now.ok()) << now.status();
    ASSERT_EQ(now->state(), "running") << now->DebugString();
    if (now->credentials_expire().seconds() != expiries.back()) {
      expiries.push_back(now->credentials_expire().seconds());
    }
    absl::SleepFor(absl::Seconds(2));
  }
  // Claimed after the first credentials expired: with new ones.
  const std::string late = harness_->CreateTask(*queue_, pool_, "true");
  v1::TaskStatus status = WorkerHarness::WaitResolved(*queue_, late);
  EXPECT_EQ(status.state(), "completed") << Describe(status);
  EXPECT_EQ(status.runs(0).worker_id(), "renewer");
  std::cout << completed + 1 << " tasks completed; credentials expiry "
            << "advanced " << expiries.size() - 1 << " times" << std::endl;
  ASSERT_GE(expiries.size(), 2u) << worker->Output();
  for (size_t i = 1; i < expiries.size(); ++i) {
    EXPECT_GT(expiries[i], expiries[i - 1]);
  }
  EXPECT_NE(worker->Output().find("re-registered; credentials until"),
            std::string::npos)
      << worker->Output();
  EXPECT_TRUE(worker->Running()) << worker->Output();
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(absl::Seconds(60)), 0) << worker->Output();
}

// A queue of its own, restarted mid-task on the same data directory.
TEST(WorkerQueueRestartTest,
     TheWorkerKeepsTheTaskAndReportsOnceTheQueueIsBack) {
  const std::string skip_reason = PostgresUnavailableReason();
  if (!skip_reason.empty()) GTEST_SKIP() << skip_reason;
  const fs::path dir = MakeTempDir("drover-worker-restart");
  ASSERT_FALSE(dir.empty());
  {
    // The claim outlives the restart (a real outage longer than the claim
    // timeout loses the run to claim-expired, and it is retried).
    QueueServer queue(dir, {"--claim-timeout", "5m", "--poll-timeout", "5s"});
    std::string failed = queue.Start();
    ASSERT_TRUE(failed.empty()) << failed;
    WorkerHarness harness(dir / "test");
    auto worker = harness.StartWorker(queue, "it/restart", "steadfast", 1, 30);
    const std::string id = harness.CreateTask(
        queue, "it/restart",
        "touch " + harness.Mark("started").string() + "; sleep 8; echo done");
    ASSERT_TRUE(Eventually([&] { return fs::exists(harness.Mark("started")); },
                           absl::Seconds(60)))
        << worker->Output();

    ASSERT_EQ(queue.Stop(), 0) << queue.process().Output();
    std::string restarted = queue.Start();
    ASSERT_TRUE(restarted.empty()) << restarted;

    v1::TaskStatus status = WorkerHarness::WaitResolved(queue, id);
    EXPECT_EQ(status.state(), "completed") << Describe(status);
    EXPECT_EQ(status.runs_size(), 1) << Describe(status);
    EXPECT_TRUE(worker->Running()) << worker->Output();
    // And it claims new work from the restarted queue.
    const std::string next = harness.CreateTask(queue, "it/restart", "true");
    EXPECT_EQ(WorkerHarness::WaitResolved(queue, next).state(), "completed");

    worker->Signal(SIGTERM);
    EXPECT_EQ(worker->Wait(absl::Seconds(60)), 0) << worker->Output();
    EXPECT_EQ(queue.Stop(), 0);
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// --check-config needs no queue.
class CheckConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("drover-worker-check");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs `drover-worker --check-config` on `config`; returns the exit code.
  int Check(const json& config, std::string* out, std::string* err) {
    std::ofstream(dir_ / "config.json") << config.dump();
    Child child;
    EXPECT_TRUE(child.Spawn({DROVER_WORKER_BINARY, "--check-config", "--config",
                             (dir_ / "config.json").string()},
                            dir_ / "check.out", dir_ / "check.err"));
    int code = child.Wait(absl::Seconds(60));
    *out = child.Stdout();
    *err = child.Stderr();
    fs::remove(dir_ / "check.out");
    fs::remove(dir_ / "check.err");
    return code;
  }

  json Valid() const {
    return json{{"queue_url", "127.0.0.1:50051"},
                {"worker_pool_id", "proj/linux"},
                {"worker_id", "checked"},
                {"work_dir", (dir_ / "work").string()}};
  }

  fs::path dir_;
};

TEST_F(CheckConfigTest, AcceptsAValidConfigAndExplainsBadOnes) {
  std::string out, err;
  EXPECT_EQ(Check(Valid(), &out, &err), 0) << out << err;
  EXPECT_NE(out.find("configuration is valid"), std::string::npos) << out;
  EXPECT_NE(out.find("engine native"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir_ / "work")) << "a check must change nothing";

  json bad = Valid();
  bad["capacity"] = 0;
  EXPECT_EQ(Check(bad, &out, &err), 2);
  EXPECT_NE(err.find("field=capacity"), std::string::npos) << err;

  bad = Valid();
  bad["engine"] = {{"name", "native"},
                   {"config", {{"limits", {{"memory_mb", -5}}}}}};
  EXPECT_EQ(Check(bad, &out, &err), 2);
  EXPECT_NE(err.find("engine.config.limits.memory_mb"), std::string::npos)
      << err;

  bad = Valid();
  bad["plugins"] = {{"maxruntime", {{"max_seconds", 60}}}};
  EXPECT_EQ(Check(bad, &out, &err), 2);
  EXPECT_NE(err.find("plugins.maxruntime.max_seconds"), std::string::npos)
      << err;
}

TEST_F(CheckConfigTest, TheShippedExampleConfigsParse) {
  // Each deploy/worker-configs example must at least parse and name a known
  // engine and plugins; machine-specific checks (root for per-task users,
  // CA files) are expected to fail here and are filtered out.
  const fs::path examples =
      fs::path(DROVER_SOURCE_DIR) / "deploy" / "worker-configs";
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(examples)) {
    if (entry.path().extension() != ".json") continue;
    json config = json::parse(ReadFile(entry.path()));
    config["work_dir"] = (dir_ / "work").string();
    config.erase("tls_ca_file");
    config.erase("registration");
    config.erase("credentials");
    std::string out, err;
    int code = Check(config, &out, &err);
    if (code != 0) {
      // Only settings this test machine cannot satisfy may fail.
      EXPECT_TRUE(err.find("needs a worker running as root") !=
                  std::string::npos)
          << entry.path() << ": " << err;
    }
    ++checked;
  }
  EXPECT_EQ(checked, 3);
}

}  // namespace
}  // namespace drover::worker
