#include "engines/native/process.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "engines/native/output_pump.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace drover::engines::native {
namespace {

using ::testing::HasSubstr;
using testing::ReadFile;
using testing::TempDir;

// Runs `options` to completion and returns the merged output.
struct Ran {
  ExitStatus status;
  std::string output;
};

absl::StatusOr<Ran> RunToEnd(LaunchOptions options) {
  std::string output;
  std::mutex mu;
  DROVER_ASSIGN_OR_RETURN(auto pump, OutputPump::Start([&](std::string_view b) {
                            std::lock_guard<std::mutex> lock(mu);
                            output.append(b);
                          }));
  options.output_fd = pump->write_fd();
  PosixProcessLauncher launcher;
  auto process = launcher.Launch(options);
  pump->CloseWriteEnd();
  if (!process.ok()) return process.status();
  auto status = (*process)->WaitUntil(absl::Now() + absl::Seconds(30));
  if (!status) return InternalError("the process did not exit in 30 s");
  process->reset();
  pump->Finish(absl::Seconds(5));
  std::lock_guard<std::mutex> lock(mu);
  return Ran{*status, output};
}

LaunchOptions Shell(const std::string& script, const TempDir& dir) {
  LaunchOptions options;
  options.argv = {"/bin/sh", "-c", script};
  options.env = {{"PATH", "/usr/bin:/bin"}};
  options.working_dir = dir.path();
  return options;
}

// Fields 5 and 6 of /proc/<pid>/stat: process group and session.
std::pair<pid_t, pid_t> GroupAndSession(pid_t pid) {
  std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
  std::vector<std::string> fields =
      absl::StrSplit(stat.substr(stat.rfind(')') + 2), ' ');
  pid_t group = 0, session = 0;
  EXPECT_TRUE(absl::SimpleAtoi(fields[2], &group));
  EXPECT_TRUE(absl::SimpleAtoi(fields[3], &session));
  return {group, session};
}

TEST(ProcessTest, RunsInItsOwnSessionAndProcessGroup) {
  TempDir dir;
  LaunchOptions options;
  options.argv = {"sleep", "30"};
  options.working_dir = dir.path();
  PosixProcessLauncher launcher;
  auto process = launcher.Launch(options);
  ASSERT_TRUE(process.ok()) << process.status();
  pid_t pid = (*process)->pid();
  auto [group, session] = GroupAndSession(pid);
  EXPECT_EQ(group, pid);
  EXPECT_EQ(session, pid);
  EXPECT_NE(session, ::getsid(0));

  (*process)->SignalGroup(SIGKILL);
  auto status = (*process)->WaitUntil(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->signal, SIGKILL);
  EXPECT_EQ(status->exit_code, 128 + SIGKILL);
}

TEST(ProcessTest, ExitCodesAreReported) {
  TempDir dir;
  for (int code : {0, 1, 42, 255}) {
    auto ran = RunToEnd(Shell(absl::StrCat("exit ", code), dir));
    ASSERT_TRUE(ran.ok()) << ran.status();
    EXPECT_EQ(ran->status.exit_code, code);
    EXPECT_FALSE(ran->status.signal.has_value());
  }
}

TEST(ProcessTest, StdoutAndStderrShareOneStreamInOrder) {
  TempDir dir;
  auto ran = RunToEnd(Shell("echo one; echo two >&2; echo three", dir));
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->output, "one\ntwo\nthree\n");
}

TEST(ProcessTest, EnvironmentIsExactlyAsGiven) {
  TempDir dir;
  ::setenv("DROVER_WORKER_SECRET_FOR_TEST", "must-not-leak", 1);
  LaunchOptions options;
  options.argv = {"/usr/bin/env"};
  options.env = {{"ONLY", "this"}, {"SPACES", "a b  c"}};
  options.working_dir = dir.path();
  auto ran = RunToEnd(options);
  ::unsetenv("DROVER_WORKER_SECRET_FOR_TEST");
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->output, "ONLY=this\nSPACES=a b  c\n");
}

TEST(ProcessTest, ProgramsAreFoundInTheTaskPath) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "bin");
  testing::WriteFile(dir.path() / "bin" / "hello",
                     "#!/bin/sh\necho hi from $0\n");
  std::filesystem::permissions(dir.path() / "bin" / "hello",
                               std::filesystem::perms::owner_all);
  LaunchOptions options;
  options.argv = {"hello"};
  options.env = {{"PATH", "bin:/usr/bin:/bin"}};
  options.working_dir = dir.path();
  auto ran = RunToEnd(options);
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_THAT(ran->output, HasSubstr("hi from"));
}

TEST(ProcessTest, WorkingDirectoryIsUsed) {
  TempDir dir;
  auto ran = RunToEnd(Shell("pwd -P", dir));
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->output,
            std::filesystem::canonical(dir.path()).string() + "\n");
}

TEST(ProcessTest, LaunchErrorsNameTheProblem) {
  TempDir dir;
  PosixProcessLauncher launcher;
  LaunchOptions missing = Shell("true", dir);
  missing.argv = {"no-such-program-anywhere"};
  EXPECT_TRUE(HasErrorCode(launcher.Launch(missing).status(),
                           ErrorCode::kResourceNotFound));

  testing::WriteFile(dir.path() / "not-executable", "echo hi\n");
  LaunchOptions not_exec = Shell("true", dir);
  not_exec.argv = {(dir.path() / "not-executable").string()};
  absl::Status status = launcher.Launch(not_exec).status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << status;
  EXPECT_EQ(GetErrorInfo(status).details["field"], "argv[0]");

  LaunchOptions bad_dir = Shell("true", dir);
  bad_dir.working_dir = dir.path() / "missing";
  status = launcher.Launch(bad_dir).status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << status;
  EXPECT_EQ(GetErrorInfo(status).details["field"], "working_dir");

  LaunchOptions empty = Shell("true", dir);
  empty.argv.clear();
  EXPECT_EQ(GetErrorInfo(launcher.Launch(empty).status()).details["field"],
            "argv");

  LaunchOptions nul = Shell("true", dir);
  nul.argv.push_back(std::string("a\0b", 3));
  EXPECT_EQ(GetErrorInfo(launcher.Launch(nul).status()).details["field"],
            "argv[3]");
}

TEST(ProcessTest, ResourceLimitsApply) {
  TempDir dir;
  LaunchOptions options = Shell("ulimit -n; ulimit -t; ulimit -v", dir);
  options.limits.open_files = 77;
  options.limits.cpu_seconds = 9;
  options.limits.memory_bytes = 512ull * 1024 * 1024;
  auto ran = RunToEnd(options);
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->output, "77\n9\n524288\n");
}

TEST(ProcessTest, MemoryLimitStopsAGreedyTask) {
  TempDir dir;
  // Doubling a shell string quickly needs far more than 64 MB.
  LaunchOptions options = Shell(
      "x=0123456789; i=0; while [ $i -lt 30 ]; do x=$x$x; i=$((i+1)); done; "
      "echo survived",
      dir);
  options.limits.memory_bytes = 64ull * 1024 * 1024;
  auto ran = RunToEnd(options);
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_NE(ran->status.exit_code, 0);
  EXPECT_THAT(ran->output, ::testing::Not(HasSubstr("survived")));
}

TEST(ProcessTest, SignalDispositionsAndMaskAreReset) {
  TempDir dir;
  struct sigaction ignore {
  }, old_pipe{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &old_pipe);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old_mask);
  LaunchOptions options;
  options.argv = {"/bin/cat", "/proc/self/status"};
  options.working_dir = dir.path();
  auto ran = RunToEnd(options);
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_THAT(ran->output, HasSubstr("SigIgn:\t0000000000000000"));
  EXPECT_THAT(ran->output, HasSubstr("SigBlk:\t0000000000000000"));
}

TEST(ProcessTest, WorkerDescriptorsDoNotLeak) {
  TempDir dir;
  int leaky = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
  ASSERT_GE(leaky, 0);
  ASSERT_EQ(::dup2(leaky, 200), 200);
  LaunchOptions options;
  options.argv = {"/bin/ls", "/proc/self/fd"};
  options.working_dir = dir.path();
  auto ran = RunToEnd(options);
  ::close(200);
  ::close(leaky);
  ASSERT_TRUE(ran.ok()) << ran.status();
  std::vector<std::string> fds =
      absl::StrSplit(ran->output, '\n', absl::SkipEmpty());
  // 0-2 plus the directory ls itself is reading.
  EXPECT_LE(fds.size(), 4u) << ran->output;
  EXPECT_EQ(std::find(fds.begin(), fds.end(), "200"), fds.end());
}

TEST(ProcessTest, CredentialsSwitch) {
  if (::geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  TempDir dir;
  LaunchOptions options = Shell("id -u; id -g; id -G", dir);
  options.credentials = ProcessCredentials{65534, 65534, {}};
  auto ran = RunToEnd(options);
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ran->output, "65534\n65534\n65534\n");
}

TEST(ProcessTest, WaitUntilHonoursDeadlineAndWakeDescriptor) {
  TempDir dir;
  LaunchOptions options;
  options.argv = {"sleep", "30"};
  options.working_dir = dir.path();
  PosixProcessLauncher launcher;
  auto process = launcher.Launch(options);
  ASSERT_TRUE(process.ok()) << process.status();

  absl::Time start = absl::Now();
  EXPECT_FALSE((*process)->WaitUntil(start + absl::Milliseconds(100)));
  absl::Duration waited = absl::Now() - start;
  EXPECT_GE(waited, absl::Milliseconds(90));
  EXPECT_LT(waited, absl::Seconds(2));

  int wake[2];
  ASSERT_EQ(::pipe(wake), 0);
  std::thread waker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(::write(wake[1], "x", 1), 1);
  });
  start = absl::Now();
  EXPECT_FALSE((*process)->WaitUntil(absl::InfiniteFuture(), wake[0]));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  waker.join();
  ::close(wake[0]);
  ::close(wake[1]);
}

TEST(ProcessTest, DestructorKillsTheGroup) {
  TempDir dir;
  PosixProcessLauncher launcher;
  auto process =
      launcher.Launch(Shell("sleep 30 & echo $! > bg.pid; wait", dir));
  ASSERT_TRUE(process.ok()) << process.status();
  for (int i = 0; i < 500 && ReadFile(dir.path() / "bg.pid").empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_t background = 0;
  ASSERT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadFile(dir.path() / "bg.pid")),
      &background));
  pid_t leader = (*process)->pid();
  process->reset();
  EXPECT_TRUE(testing::EventuallyGone(background));
  EXPECT_TRUE(testing::ProcessGone(leader));
}

}  // namespace
}  // namespace drover::engines::native
