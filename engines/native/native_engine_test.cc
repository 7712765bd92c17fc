#include "engines/native/native_engine.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace drover::engines::native {
namespace {

namespace fs = std::filesystem;
using testing::CaptureSink;
using testing::EventuallyGone;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadFile;
using testing::TempDir;

nlohmann::json Shell(const std::vector<std::string>& scripts) {
  nlohmann::json command = nlohmann::json::array();
  for (const auto& s : scripts) command.push_back({"/bin/sh", "-c", s});
  return {{"command", command}};
}

std::unique_ptr<NativeEngine> MakeEngine(const fs::path& work_dir,
                                         NativeEngineOptions options = {}) {
  options.work_dir = work_dir;
  auto engine = NativeEngine::Create(std::move(options));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? std::move(*engine) : nullptr;
}

SandboxSpec Spec(nlohmann::json payload, LogSink* log,
                 std::map<std::string, std::string> env = {
                     {"PATH", "/usr/bin:/bin"}}) {
  SandboxSpec spec;
  spec.task_id = "nativeTestTask";
  spec.run_id = 0;
  spec.payload = std::move(payload);
  spec.env = std::move(env);
  spec.log = log;
  return spec;
}

// ------------------------------------------------------------------ config

TEST(NativeEngineConfigTest, ParsesEveryOption) {
  auto options = ParseNativeEngineConfig(nlohmann::json::parse(R"({
        "containment": "environ-marker",
        "cgroup_parent": "/sys/fs/cgroup/unified/x",
        "inherit_env": ["LANG", "TZ"],
        "limits": {"memory_mb": 512, "cpu_seconds": 60, "open_files": 128},
        "kill_grace_seconds": 1.5,
        "run_as": "nobody"
      })"),
                                         "/var/lib/drover");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->work_dir, "/var/lib/drover");
  EXPECT_EQ(options->containment, ContainmentMode::kEnvironMarker);
  EXPECT_EQ(options->cgroup_parent, "/sys/fs/cgroup/unified/x");
  EXPECT_EQ(options->inherit_env, (std::vector<std::string>{"LANG", "TZ"}));
  EXPECT_EQ(options->limits.memory_bytes, 512ull * 1024 * 1024);
  EXPECT_EQ(options->limits.cpu_seconds, 60u);
  EXPECT_EQ(options->limits.open_files, 128u);
  EXPECT_EQ(options->kill_grace, absl::Milliseconds(1500));
  EXPECT_EQ(options->run_as, "nobody");
}

TEST(NativeEngineConfigTest, ErrorsNameTheField) {
  auto field_of = [](const char* config) {
    auto parsed = ParseNativeEngineConfig(nlohmann::json::parse(config), "/w");
    EXPECT_TRUE(HasErrorCode(parsed.status(), ErrorCode::kInputError))
        << config;
    return GetErrorInfo(parsed.status()).details["field"];
  };
  EXPECT_EQ(field_of(R"({"containment": "jail"})"),
            "engine.config.containment");
  EXPECT_EQ(field_of(R"({"limits": {"memory_mb": 0}})"),
            "engine.config.limits.memory_mb");
  EXPECT_EQ(field_of(R"({"limits": {"stack": 1}})"),
            "engine.config.limits.stack");
  EXPECT_EQ(field_of(R"({"inherit_env": ["A", 3]})"),
            "engine.config.inherit_env[1]");
  EXPECT_EQ(field_of(R"({"kill_grace_seconds": -1})"),
            "engine.config.kill_grace_seconds");
  EXPECT_EQ(field_of(R"({"cgroup_parent": "relative"})"),
            "engine.config.cgroup_parent");
  EXPECT_EQ(field_of(R"({"colour": "blue"})"), "engine.config.colour");
  EXPECT_EQ(field_of(R"([])"), "engine.config");
}

TEST(NativeEngineConfigTest, CreateRefusesUnusableOptions) {
  NativeEngineOptions relative;
  relative.work_dir = "relative/dir";
  EXPECT_EQ(
      GetErrorInfo(NativeEngine::Create(relative).status()).details["field"],
      "work_dir");
  TempDir dir;
  NativeEngineOptions users;
  users.work_dir = dir.path();
  users.per_task_user = true;
  EXPECT_EQ(GetErrorInfo(NativeEngine::Create(users).status()).details["field"],
            "per_task_user");
  NativeEngineOptions unknown;
  unknown.work_dir = dir.path();
  unknown.run_as = "no-such-user-on-this-host";
  EXPECT_EQ(
      GetErrorInfo(NativeEngine::Create(unknown).status()).details["field"],
      "run_as");
}

// ------------------------------------------------------------------ engine

TEST(NativeEngineTest, EnvironmentIsExactlySpecPlusInherited) {
  TempDir dir;
  ::setenv("DROVER_TEST_INHERITED", "from-worker", 1);
  ::setenv("DROVER_TEST_NOT_INHERITED", "secret", 1);
  NativeEngineOptions options;
  options.inherit_env = {"DROVER_TEST_INHERITED"};
  options.containment = ContainmentMode::kAuto;
  auto engine = MakeEngine(dir.path() / "work", options);
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  auto sandbox = engine->NewSandbox(
      Spec({{"command", {"/usr/bin/env"}}}, &log, {{"ONLY", "this"}}));
  ASSERT_TRUE(sandbox.ok());
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE((*sandbox)->Wait().ok());
  ::unsetenv("DROVER_TEST_INHERITED");
  ::unsetenv("DROVER_TEST_NOT_INHERITED");
  std::vector<std::string> lines =
      absl::StrSplit(log.text(), '\n', absl::SkipEmpty());
  std::vector<std::string> expected = {"DROVER_TEST_INHERITED=from-worker",
                                       "ONLY=this"};
  if (engine->containment_kind() == "environ-marker") {
    // The marker is the one addition, and only with this containment.
    ASSERT_EQ(lines.size(), 3u) << log.text();
    EXPECT_THAT(lines[2], ::testing::StartsWith("DROVER_SANDBOX=native-"));
    lines.pop_back();
  }
  EXPECT_EQ(lines, expected);
}

TEST(NativeEngineTest, OwnTaskDirectoryIsMadeAndRemoved) {
  TempDir dir;
  auto engine = MakeEngine(dir.path() / "work");
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  auto sandbox =
      engine->NewSandbox(Spec(Shell({"pwd -P; touch made-here"}), &log));
  ASSERT_TRUE(sandbox.ok());
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE((*sandbox)->Wait().ok());
  fs::path task_dir(std::string(absl::StripAsciiWhitespace(log.text())));
  EXPECT_TRUE(fs::exists(task_dir / "made-here"));
  EXPECT_THAT(
      task_dir.string(),
      HasSubstr(
          (fs::canonical(dir.path()) / "work" / "native" / "tasks").string()));
  sandbox->reset();
  EXPECT_FALSE(fs::exists(task_dir));
  EXPECT_TRUE(fs::is_empty(dir.path() / "work" / "native" / "state"));
}

TEST(NativeEngineTest, GivenTaskDirectoryIsUsedAndKept) {
  TempDir dir;
  auto engine = MakeEngine(dir.path() / "work");
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  SandboxSpec spec =
      Spec(Shell({"cat input.txt; echo out > output.txt"}), &log);
  spec.task_dir = dir.path() / "given";
  fs::create_directories(spec.task_dir);
  testing::WriteFile(spec.task_dir / "input.txt", "prepared by a plugin\n");
  auto sandbox = engine->NewSandbox(spec);
  ASSERT_TRUE(sandbox.ok());
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE((*sandbox)->Wait().ok());
  EXPECT_EQ(log.text(), "prepared by a plugin\n");
  sandbox->reset();
  // The worker owns the directory it passed in.
  EXPECT_EQ(ReadFile(dir.path() / "given" / "output.txt"), "out\n");
}

TEST(NativeEngineTest, MissingProgramFailsLikeAShell) {
  TempDir dir;
  auto engine = MakeEngine(dir.path() / "work");
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  auto sandbox = engine->NewSandbox(
      Spec({{"command",
             {{"echo", "before"}, {"no-such-program-x"}, {"echo", "after"}}}},
           &log));
  ASSERT_TRUE(sandbox.ok());
  ASSERT_TRUE((*sandbox)->Start().ok());
  auto result = (*sandbox)->Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 127);
  EXPECT_THAT(log.text(), HasSubstr("before\n"));
  EXPECT_THAT(log.text(), HasSubstr("[drover] command 2 could not start"));
  EXPECT_THAT(log.text(), HasSubstr("no-such-program-x"));
  EXPECT_THAT(log.text(), Not(HasSubstr("after")));
}

TEST(NativeEngineTest, ConfiguredLimitsApplyToTasks) {
  TempDir dir;
  NativeEngineOptions options;
  options.limits.open_files = 99;
  options.limits.memory_bytes = 1024ull * 1024 * 1024;
  options.limits.cpu_seconds = 120;
  auto engine = MakeEngine(dir.path() / "work", options);
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  auto sandbox = engine->NewSandbox(
      Spec(Shell({"ulimit -n; ulimit -v; ulimit -t"}), &log));
  ASSERT_TRUE(sandbox.ok());
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE((*sandbox)->Wait().ok());
  EXPECT_EQ(log.text(), "99\n1048576\n120\n");
}

TEST(NativeEngineTest, AbortEscalatesToSigkillAfterTheGrace) {
  TempDir dir;
  NativeEngineOptions options;
  options.kill_grace = absl::Milliseconds(300);
  auto engine = MakeEngine(dir.path() / "work", options);
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  auto sandbox = engine->NewSandbox(
      Spec(Shell({"trap '' TERM; echo ready; sleep 600"}), &log));
  ASSERT_TRUE(sandbox.ok());
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE(log.WaitFor("ready"));
  absl::Time start = absl::Now();
  (*sandbox)->Abort();
  auto result = (*sandbox)->Wait();
  absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->aborted);
  EXPECT_EQ(result->signal, SIGKILL);
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST(NativeEngineTest, AbortBeforeStartRunsNothing) {
  TempDir dir;
  auto engine = MakeEngine(dir.path() / "work");
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  auto sandbox = engine->NewSandbox(Spec(Shell({"echo must-not-run"}), &log));
  ASSERT_TRUE(sandbox.ok());
  (*sandbox)->Abort();
  ASSERT_TRUE((*sandbox)->Start().ok());
  auto result = (*sandbox)->Wait();
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->aborted);
  EXPECT_NE(result->exit_code, 0);
  EXPECT_EQ(log.text(), "");
}

TEST(NativeEngineTest, CallsOutOfOrderAreConflicts) {
  TempDir dir;
  auto engine = MakeEngine(dir.path() / "work");
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  auto sandbox = engine->NewSandbox(Spec(Shell({"sleep 0.2"}), &log));
  ASSERT_TRUE(sandbox.ok());
  EXPECT_TRUE(
      HasErrorCode((*sandbox)->Wait().status(), ErrorCode::kRequestConflict));
  ASSERT_TRUE((*sandbox)->Start().ok());
  EXPECT_TRUE(HasErrorCode((*sandbox)->Start(), ErrorCode::kRequestConflict));
  EXPECT_TRUE(HasErrorCode((*sandbox)->Extract("x", dir.path() / "x"),
                           ErrorCode::kRequestConflict));
  EXPECT_TRUE((*sandbox)->Wait().ok());
}

TEST(NativeEngineTest, NewSandboxChecksThePayloadAndLog) {
  TempDir dir;
  auto engine = MakeEngine(dir.path() / "work");
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  auto bad = engine->NewSandbox(Spec({{"command", 1}}, &log));
  EXPECT_TRUE(HasErrorCode(bad.status(), ErrorCode::kMalformedPayload));
  auto no_log = engine->NewSandbox(Spec(Shell({"true"}), nullptr));
  EXPECT_EQ(GetErrorInfo(no_log.status()).details["field"], "log");
}

TEST(NativeEngineTest, DestroyingARunningSandboxKillsEverything) {
  TempDir dir;
  auto engine = MakeEngine(dir.path() / "work");
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  SandboxSpec spec =
      Spec(Shell({"( setsid sh -c 'echo $$ > daemon.pid; exec sleep 600' "
                  "</dev/null >/dev/null 2>&1 & ); "
                  "while [ ! -s daemon.pid ]; do sleep 0.01; done; echo ready; "
                  "sleep 600"}),
           &log);
  spec.task_dir = dir.path() / "task";
  auto sandbox = engine->NewSandbox(spec);
  ASSERT_TRUE(sandbox.ok());
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE(log.WaitFor("ready"));
  pid_t daemon = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadFile(dir.path() / "task" / "daemon.pid")),
      &daemon));
  absl::Time start = absl::Now();
  sandbox->reset();  // no Wait()
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE(EventuallyGone(daemon));
}

// A worker that dies mid-task (SIGKILL) leaves a daemon, the task's
// processes and its directory; the next worker's CleanUpLeftovers removes
// all of them. The crashed worker is a forked copy of this test.
class CrashRecoveryTest : public ::testing::TestWithParam<ContainmentMode> {};

TEST_P(CrashRecoveryTest, CleanUpLeftoversAfterAWorkerCrash) {
  TempDir dir;
  fs::path work_dir = dir.path() / "work";
  fs::path task_dir = dir.path() / "tasks" / "crashed";
  {
    // Skip cleanly where the mode cannot work here.
    NativeEngineOptions probe;
    probe.work_dir = work_dir;
    probe.containment = GetParam();
    auto engine = NativeEngine::Create(probe);
    if (!engine.ok()) GTEST_SKIP() << engine.status().message();
  }
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t worker = ::fork();
  ASSERT_GE(worker, 0);
  if (worker == 0) {
    ::close(report[0]);
    NativeEngineOptions options;
    options.work_dir = work_dir;
    options.containment = GetParam();
    auto engine = NativeEngine::Create(options);
    if (!engine.ok()) _exit(2);
    static CaptureSink log;
    SandboxSpec spec =
        Spec(Shell({"( setsid sh -c 'echo $$ > daemon.pid; exec sleep 600' "
                    "</dev/null >/dev/null 2>&1 & ); "
                    "while [ ! -s daemon.pid ]; do sleep 0.01; done; "
                    "echo $$ > task.pid; echo ready; sleep 600"}),
             &log);
    spec.task_dir = task_dir;
    auto sandbox = (*engine)->NewSandbox(spec);
    if (!sandbox.ok() || !(*sandbox)->Start().ok()) _exit(3);
    if (!log.WaitFor("ready")) _exit(4);
    ssize_t ignored = ::write(report[1], "r", 1);
    (void)ignored;
    ::kill(::getpid(), SIGKILL);  // no destructors, like a real crash
    _exit(5);
  }
  ::close(report[1]);
  char byte = 0;
  ASSERT_EQ(::read(report[0], &byte, 1), 1) << "the crashing worker failed";
  ::close(report[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(worker, &status, 0), worker);
  ASSERT_TRUE(WIFSIGNALED(status));

  pid_t daemon = 0, task = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadFile(task_dir / "daemon.pid")), &daemon));
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadFile(task_dir / "task.pid")), &task));
  ASSERT_FALSE(testing::ProcessGone(daemon));
  ASSERT_FALSE(testing::ProcessGone(task));

  NativeEngineOptions options;
  options.work_dir = work_dir;
  options.containment = GetParam();
  auto restarted = NativeEngine::Create(options);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  absl::Status cleaned = (*restarted)->CleanUpLeftovers();
  EXPECT_TRUE(cleaned.ok()) << cleaned;
  EXPECT_TRUE(EventuallyGone(daemon));
  EXPECT_TRUE(EventuallyGone(task));
  EXPECT_FALSE(fs::exists(task_dir));
  EXPECT_TRUE(fs::is_empty(work_dir / "native" / "state"));
}

INSTANTIATE_TEST_SUITE_P(Modes, CrashRecoveryTest,
                         ::testing::Values(ContainmentMode::kCgroup,
                                           ContainmentMode::kEnvironMarker),
                         [](const auto& info) {
                           return info.param == ContainmentMode::kCgroup
                                      ? "Cgroup"
                                      : "EnvironMarker";
                         });

// Counts Acquire/Release and hands out the "nobody" account.
class RecordingUserProvider final : public TaskUserProvider {
 public:
  absl::StatusOr<TaskUser> Acquire(const std::string& task_id,
                                   int run_id) override {
    acquired_.push_back(task_id);
    return TaskUser{"nobody", 65534, 65534, {}, "/nonexistent"};
  }
  absl::Status Release(const TaskUser& user) override {
    // Every process of the task must be gone by now.
    released_with_live_pid_ = !testing::ProcessGone(watch_pid_);
    ++released_;
    return absl::OkStatus();
  }
  std::vector<std::string> acquired_;
  int released_ = 0;
  pid_t watch_pid_ = 0;
  bool released_with_live_pid_ = false;
};

TEST(NativeEngineUserTest, TaskRunsAsTheProvidedUserAndIsReleasedAfter) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  TempDir dir;
  RecordingUserProvider users;
  NativeEngineOptions options;
  options.user_provider = &users;
  options.per_task_user = true;
  auto engine = MakeEngine(dir.path() / "work", options);
  ASSERT_NE(engine, nullptr);
  CaptureSink log;
  SandboxSpec spec =
      Spec(Shell({"id -u; echo HOME=$HOME USER=$USER; touch owned; "
                  "( sleep 600 & echo $! > bg.pid )"}),
           &log);
  spec.task_dir = dir.path() / "task";
  fs::create_directories(spec.task_dir);
  testing::WriteFile(spec.task_dir / "prepared.txt", "x");
  auto sandbox = engine->NewSandbox(spec);
  ASSERT_TRUE(sandbox.ok());
  ASSERT_TRUE((*sandbox)->Start().ok());
  auto result = (*sandbox)->Wait();
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exit_code, 0) << log.text();
  EXPECT_THAT(log.text(), HasSubstr("65534\nHOME=/nonexistent USER=nobody\n"));
  struct stat st;
  ASSERT_EQ(::stat((dir.path() / "task" / "owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  ASSERT_EQ(::stat((dir.path() / "task" / "prepared.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u) << "the task directory was not handed over";
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadFile(dir.path() / "task" / "bg.pid")),
      &users.watch_pid_));
  EXPECT_EQ(users.acquired_, std::vector<std::string>{"nativeTestTask"});
  sandbox->reset();
  EXPECT_EQ(users.released_, 1);
  EXPECT_FALSE(users.released_with_live_pid_);
}

}  // namespace
}  // namespace drover::engines::native
