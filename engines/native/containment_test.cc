#include "engines/native/containment.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "engines/native/process.h"
#include "engines/native/test_util.h"
#include "gtest/gtest.h"

namespace drover::engines::native {
namespace {

using testing::EventuallyGone;
using testing::ReadFile;
using testing::TempDir;

std::string UniqueNamespace(std::string_view tag) {
  return absl::StrCat("test-", std::string(tag), "-", ::getpid(), "-",
                      absl::ToUnixMicros(absl::Now()));
}

// Launches a task that double-forks a daemon (setsid: new session and
// group), waits for the task itself to exit and returns the daemon's pid.
pid_t StartDaemon(Containment& containment, const TempDir& dir) {
  LaunchOptions options;
  options.argv = {"/bin/sh", "-c",
                  "( setsid sh -c 'echo $$ > daemon.pid; exec sleep 600' "
                  "</dev/null >/dev/null 2>&1 & ); "
                  "while [ ! -s daemon.pid ]; do sleep 0.01; done"};
  options.env = {{"PATH", "/usr/bin:/bin"}};
  options.working_dir = dir.path();
  options.containment = &containment;
  PosixProcessLauncher launcher;
  auto process = launcher.Launch(options);
  EXPECT_TRUE(process.ok()) << process.status();
  if (!process.ok()) return -1;
  auto status = (*process)->WaitUntil(absl::Now() + absl::Seconds(20));
  EXPECT_TRUE(status.has_value());
  process->reset();  // Reaps the task and kills its process group.
  pid_t pid = -1;
  EXPECT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(ReadFile(dir.path() / "daemon.pid")), &pid));
  return pid;
}

class ContainmentTest : public ::testing::TestWithParam<ContainmentMode> {
 protected:
  void SetUp() override {
    name_space_ =
        UniqueNamespace(GetParam() == ContainmentMode::kCgroup ? "cg" : "env");
    auto provider = MakeContainmentProvider(GetParam(), name_space_);
    if (GetParam() == ContainmentMode::kCgroup && !provider.ok()) {
      GTEST_SKIP() << "no usable cgroup v2 hierarchy here: "
                   << provider.status().message();
    }
    ASSERT_TRUE(provider.ok()) << provider.status();
    provider_ = std::move(*provider);
  }

  std::string name_space_;
  std::unique_ptr<ContainmentProvider> provider_;
};

TEST_P(ContainmentTest, DoubleForkedDaemonIsMemberAndKilled) {
  TempDir dir;
  auto containment = provider_->Create("sandbox-1");
  ASSERT_TRUE(containment.ok()) << containment.status();
  pid_t daemon = StartDaemon(**containment, dir);
  ASSERT_GT(daemon, 0);
  // The daemon left the task's session and group, and its parent exited;
  // only the containment still knows it.
  EXPECT_FALSE(testing::ProcessGone(daemon));
  EXPECT_NE(::getpgid(daemon), ::getpgid(0));
  auto members = (*containment)->Members();
  ASSERT_TRUE(members.ok()) << members.status();
  EXPECT_NE(std::find(members->begin(), members->end(), daemon),
            members->end());

  ASSERT_TRUE((*containment)->KillAll(absl::Seconds(10)).ok());
  EXPECT_TRUE(EventuallyGone(daemon));
  members = (*containment)->Members();
  ASSERT_TRUE(members.ok());
  EXPECT_TRUE(members->empty());
}

TEST_P(ContainmentTest, DestroyingTheContainmentKillsEverything) {
  TempDir dir;
  auto containment = provider_->Create("sandbox-2");
  ASSERT_TRUE(containment.ok()) << containment.status();
  pid_t daemon = StartDaemon(**containment, dir);
  ASSERT_GT(daemon, 0);
  containment->reset();
  EXPECT_TRUE(EventuallyGone(daemon));
}

TEST_P(ContainmentTest, ForkingLoopIsKilled) {
  TempDir dir;
  auto containment = provider_->Create("sandbox-forks");
  ASSERT_TRUE(containment.ok()) << containment.status();
  LaunchOptions options;
  // Keeps spawning short-lived children while it is being killed.
  options.argv = {"/bin/sh", "-c",
                  "while :; do ( sleep 5 & ) ; sleep 0.001; done"};
  options.env = {{"PATH", "/usr/bin:/bin"}};
  options.working_dir = dir.path();
  options.containment = containment->get();
  PosixProcessLauncher launcher;
  auto process = launcher.Launch(options);
  ASSERT_TRUE(process.ok()) << process.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE((*containment)->KillAll(absl::Seconds(10)).ok());
  auto members = (*containment)->Members();
  ASSERT_TRUE(members.ok());
  EXPECT_TRUE(members->empty());
}

TEST_P(ContainmentTest, CleanUpLeftoversKillsOnlyItsNamespace) {
  TempDir mine_dir, other_dir;
  // A worker that crashed leaves its containment behind (leaked here).
  auto mine = provider_->Create("crashed");
  ASSERT_TRUE(mine.ok());
  pid_t my_daemon = StartDaemon(**mine, mine_dir);
  mine->release();

  auto other_provider =
      MakeContainmentProvider(GetParam(), name_space_ + "-other");
  ASSERT_TRUE(other_provider.ok());
  auto other = (*other_provider)->Create("alive");
  ASSERT_TRUE(other.ok());
  pid_t other_daemon = StartDaemon(**other, other_dir);

  auto restarted = MakeContainmentProvider(GetParam(), name_space_);
  ASSERT_TRUE(restarted.ok());
  ASSERT_TRUE((*restarted)->CleanUpLeftovers().ok());
  EXPECT_TRUE(EventuallyGone(my_daemon));
  EXPECT_FALSE(testing::ProcessGone(other_daemon))
      << "cleanup killed another namespace's process";
  other->reset();
  EXPECT_TRUE(EventuallyGone(other_daemon));
}

TEST_P(ContainmentTest, BadIdsAreRefused) {
  auto made = provider_->Create("../escape");
  EXPECT_TRUE(HasErrorCode(made.status(), ErrorCode::kInputError));
  EXPECT_EQ(GetErrorInfo(made.status()).details["field"], "id");
}

INSTANTIATE_TEST_SUITE_P(Modes, ContainmentTest,
                         ::testing::Values(ContainmentMode::kCgroup,
                                           ContainmentMode::kEnvironMarker),
                         [](const auto& info) {
                           return info.param == ContainmentMode::kCgroup
                                      ? "Cgroup"
                                      : "EnvironMarker";
                         });

TEST(ContainmentModeTest, ParsesNamesAndNamesTheField) {
  EXPECT_EQ(*ParseContainmentMode("auto", "f"), ContainmentMode::kAuto);
  EXPECT_EQ(*ParseContainmentMode("cgroup", "f"), ContainmentMode::kCgroup);
  EXPECT_EQ(*ParseContainmentMode("environ-marker", "f"),
            ContainmentMode::kEnvironMarker);
  auto bad = ParseContainmentMode("jail", "engine.config.containment");
  EXPECT_EQ(GetErrorInfo(bad.status()).details["field"],
            "engine.config.containment");
  EXPECT_TRUE(HasErrorCode(
      MakeContainmentProvider(ContainmentMode::kAuto, "bad/ns").status(),
      ErrorCode::kInputError));
}

TEST(ContainmentModeTest, AutoPrefersCgroupWhenItWorks) {
  auto cgroup = MakeContainmentProvider(ContainmentMode::kCgroup,
                                        UniqueNamespace("probe"));
  auto automatic =
      MakeContainmentProvider(ContainmentMode::kAuto, UniqueNamespace("auto"));
  ASSERT_TRUE(automatic.ok()) << automatic.status();
  EXPECT_EQ((*automatic)->Kind(), cgroup.ok() ? "cgroup" : "environ-marker");
}

}  // namespace
}  // namespace drover::engines::native
