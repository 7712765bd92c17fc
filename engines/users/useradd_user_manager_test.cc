// UseraddUserManager: its command sequences against the recording runner,
// and the real thing (useradd, a process running as the user, userdel) when
// the test runs as root.
#include "engines/users/useradd_user_manager.h"

#include <dirent.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/process/command_runner.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace drover::engines::users {
namespace {

using process::CommandResult;
using process::RecordingCommandRunner;
using Argv = std::vector<std::string>;
using Commands = std::vector<Argv>;

const Argv kGetent = {"getent", "passwd"};

CommandResult Out(std::string out) {
  CommandResult result;
  result.out = std::move(out);
  return result;
}

CommandResult Exit(int code, std::string err = "") {
  CommandResult result;
  result.exit_code = code;
  result.err = std::move(err);
  return result;
}

constexpr char kPasswd[] =
    "root:x:0:0:root:/root:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "build:x:30000:30000::/home/build:/bin/sh\n";

CommandUserManagerOptions FakeOptions() {
  CommandUserManagerOptions options = UseraddUserManager::DefaultOptions();
  options.kill_pause = absl::ZeroDuration();
  return options;
}

NewUser Request(std::vector<std::string> groups = {}) {
  NewUser request;
  request.name_prefix = "drover-task-";
  request.uid_floor = 30000;
  request.uid_ceiling = 30100;
  request.groups = std::move(groups);
  return request;
}

Argv Useradd(const std::string& uid, const std::string& groups) {
  Argv argv = {"useradd",
               "--uid",
               uid,
               "--gid",
               "65534",
               "--no-user-group",
               "--home-dir",
               "/home/drover-task-" + uid,
               "--no-create-home",
               "--shell",
               "/bin/sh",
               "--comment",
               "Drover task user"};
  if (!groups.empty()) {
    argv.push_back("--groups");
    argv.push_back(groups);
  }
  argv.push_back("drover-task-" + uid);
  return argv;
}

TEST(UseraddUserManagerFakeTest, CreateRunsUseraddAndMakesTheHome) {
  RecordingCommandRunner runner;
  runner.Respond(kGetent, Out(kPasswd));
  UseraddUserManager manager(runner, FakeOptions());
  auto user = manager.CreateUser(Request({"users", "audio"}));
  ASSERT_TRUE(user.ok()) << user.status();
  // 30000 belongs to "build".
  EXPECT_EQ(*user, (OsUser{"drover-task-30001", 30001, 65534,
                           "/home/drover-task-30001"}));
  Commands expected = {
      kGetent,
      Useradd("30001", "users,audio"),
      kGetent,
      {"mkdir", "-m", "700", "/home/drover-task-30001"},
      {"chown", "30001:65534", "/home/drover-task-30001"},
  };
  EXPECT_EQ(runner.commands(), expected);
}

TEST(UseraddUserManagerFakeTest, UidRefusedByUseraddIsSkipped) {
  RecordingCommandRunner runner;
  runner.Respond(kGetent, Out(kPasswd));
  // Exit 4: uid already in use (taken by a concurrent process after our
  // listing).
  runner.Fail(Useradd("30001", ""), 4, "useradd: UID 30001 is not unique",
              /*times=*/1);
  UseraddUserManager manager(runner, FakeOptions());
  auto user = manager.CreateUser(Request());
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->uid, 30002u);
  Commands expected = {
      kGetent,
      Useradd("30001", ""),
      kGetent,
      Useradd("30002", ""),
      kGetent,
      {"mkdir", "-m", "700", "/home/drover-task-30002"},
      {"chown", "30002:65534", "/home/drover-task-30002"},
  };
  EXPECT_EQ(runner.commands(), expected);
}

TEST(UseraddUserManagerFakeTest, OtherUseraddFailuresAreErrorsWithStderr) {
  RecordingCommandRunner runner;
  runner.Respond(kGetent, Out(kPasswd));
  runner.Fail({"useradd"}, 6, "useradd: group 'nosuch' does not exist");
  UseraddUserManager manager(runner, FakeOptions());
  auto user = manager.CreateUser(Request({"nosuch"}));
  ASSERT_FALSE(user.ok());
  ErrorInfo info = GetErrorInfo(user.status());
  EXPECT_EQ(info.code, ErrorCode::kInternalError);
  EXPECT_EQ(info.details["exit_code"], "6");
  EXPECT_EQ(info.details["stderr"], "useradd: group 'nosuch' does not exist");
  // useradd changes nothing when it fails: nothing to roll back.
  EXPECT_EQ(runner.commands(), (Commands{kGetent, Useradd("30001", "nosuch")}));
}

TEST(UseraddUserManagerFakeTest, FailedHomeRollsBackWithUserdel) {
  RecordingCommandRunner runner;
  runner.Respond(kGetent, Out(kPasswd));
  runner.Fail({"mkdir"}, 1, "mkdir: File exists");
  UseraddUserManager manager(runner, FakeOptions());
  auto user = manager.CreateUser(Request());
  ASSERT_FALSE(user.ok());
  Commands expected = {
      kGetent,
      Useradd("30001", ""),
      kGetent,
      {"mkdir", "-m", "700", "/home/drover-task-30001"},
      {"rm", "-rf", "/home/drover-task-30001"},
      {"userdel", "drover-task-30001"},
  };
  EXPECT_EQ(runner.commands(), expected);
}

TEST(UseraddUserManagerFakeTest, DeleteSequenceAndListing) {
  RecordingCommandRunner runner;
  runner.Respond(kGetent, Out(std::string(kPasswd) +
                              "drover-task-30007:x:30007:65534:Drover task "
                              "user:/home/drover-task-30007:/bin/sh\n"));
  runner.Respond({"pkill"}, Exit(1));
  UseraddUserManager manager(runner, FakeOptions());
  auto users = manager.ListManagedUsers("drover-task-");
  ASSERT_TRUE(users.ok()) << users.status();
  ASSERT_EQ(users->size(), 1u);
  EXPECT_EQ((*users)[0], (OsUser{"drover-task-30007", 30007, 65534,
                                 "/home/drover-task-30007"}));
  runner.ClearCommands();
  ASSERT_TRUE(manager.DeleteUser((*users)[0], "drover-task-").ok());
  Commands expected = {
      kGetent,
      {"pkill", "-KILL", "-U", "30007"},
      {"pkill", "-KILL", "-u", "30007"},
      {"rm", "-rf", "/home/drover-task-30007"},
      {"userdel", "drover-task-30007"},
  };
  EXPECT_EQ(runner.commands(), expected);
}

TEST(UseraddUserManagerFakeTest, UserdelOfAMissingUserIsNotAnError) {
  RecordingCommandRunner runner;
  runner.Respond(kGetent, Out("drover-task-30007:x:30007:65534::"
                              "/home/drover-task-30007:/bin/sh\n"));
  runner.Respond({"pkill"}, Exit(1));
  runner.Fail({"userdel"}, 6,
              "userdel: user 'drover-task-30007' does not exist");
  UseraddUserManager manager(runner, FakeOptions());
  EXPECT_TRUE(manager
                  .DeleteUser({"drover-task-30007", 30007, 65534,
                               "/home/drover-task-30007"},
                              "drover-task-")
                  .ok());
  runner.Fail({"userdel"}, 8, "userdel: user is currently used by process 1");
  absl::Status busy = manager.DeleteUser(
      {"drover-task-30007", 30007, 65534, "/home/drover-task-30007"},
      "drover-task-");
  EXPECT_EQ(GetErrorInfo(busy).details["exit_code"], "8");
}

// ---------------------------------------------------------------------------
// The real thing.

constexpr char kRealPrefix[] = "drovertest-";

// Processes (not zombies) whose real or effective uid is `uid`, from /proc.
std::vector<pid_t> LiveProcessesOf(uid_t uid) {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream status(entry.path() / "status");
    std::string line;
    bool zombie = false, mine = false;
    while (std::getline(status, line)) {
      if (line.rfind("State:", 0) == 0) {
        zombie = line.find('Z') != std::string::npos;
      } else if (line.rfind("Uid:", 0) == 0) {
        std::vector<std::string> ids = absl::StrSplit(
            line.substr(4), absl::ByAnyChar(" \t"), absl::SkipEmpty());
        for (size_t i = 0; i < ids.size() && i < 2; ++i) {
          if (ids[i] == absl::StrCat(uid)) mine = true;
        }
      }
    }
    if (mine && !zombie) pids.push_back(pid);
  }
  return pids;
}

class UseraddUserManagerRealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "creating OS users needs root; running as uid "
                   << ::geteuid();
    }
    if (::access("/usr/sbin/useradd", X_OK) != 0 ||
        ::access("/usr/sbin/userdel", X_OK) != 0) {
      GTEST_SKIP() << "useradd/userdel not installed";
    }
    auto dir = drover::testing::MakeTempDir("drover-users-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    home_root_ = dir->string();
    // Task users must be able to reach their homes.
    ASSERT_EQ(::chmod(home_root_.c_str(), 0755), 0);
    options_ = UseraddUserManager::DefaultOptions();
    options_.home_root = home_root_;
    manager_ = std::make_unique<UseraddUserManager>(runner_, options_);
    // Users a crashed earlier run of this test left behind.
    auto leftovers = manager_->ListManagedUsers(kRealPrefix);
    ASSERT_TRUE(leftovers.ok()) << leftovers.status();
    for (const OsUser& user : *leftovers) {
      (void)runner_.Run({"pkill", "-KILL", "-U", absl::StrCat(user.uid)});
      (void)runner_.Run({"userdel", user.name});
    }
  }

  void TearDown() override {
    if (manager_ != nullptr) {
      auto left = manager_->ListManagedUsers(kRealPrefix);
      if (left.ok()) {
        for (const OsUser& user : *left) {
          (void)manager_->DeleteUser(user, kRealPrefix);
        }
      }
    }
    if (!home_root_.empty()) std::filesystem::remove_all(home_root_);
  }

  NewUser RealRequest() {
    NewUser request;
    request.name_prefix = kRealPrefix;
    request.uid_floor = 42000;
    request.uid_ceiling = 42999;
    request.groups = {"users"};
    return request;
  }

  process::SubprocessCommandRunner runner_;
  CommandUserManagerOptions options_;
  std::unique_ptr<UseraddUserManager> manager_;
  std::string home_root_;
};

TEST_F(UseraddUserManagerRealTest, CreateRunAsUserDeleteLeavesNothing) {
  auto created = manager_->CreateUser(RealRequest());
  ASSERT_TRUE(created.ok()) << created.status();
  const OsUser user = *created;
  EXPECT_EQ(user.name.rfind(kRealPrefix, 0), 0u);
  EXPECT_GE(user.uid, 42000u);

  // The system agrees about the user, its group and its home.
  struct passwd* pw = ::getpwnam(user.name.c_str());
  ASSERT_NE(pw, nullptr);
  EXPECT_EQ(pw->pw_uid, user.uid);
  EXPECT_EQ(pw->pw_gid, user.gid);
  EXPECT_EQ(std::string(pw->pw_dir), user.home);
  auto id = runner_.Run({"id", "-Gn", user.name});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_NE(id->out.find("users"), std::string::npos) << id->out;
  struct stat st;
  ASSERT_EQ(::stat(user.home.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_uid, user.uid);
  EXPECT_EQ(st.st_gid, user.gid);
  auto listed = manager_->ListManagedUsers(kRealPrefix);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0], user);

  // Run processes as the user, including one that escapes into its own
  // session: deletion must find them by uid.
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    gid_t groups[] = {user.gid};
    if (::setgroups(1, groups) != 0 || ::setgid(user.gid) != 0 ||
        ::setuid(user.uid) != 0) {
      ::_exit(120);
    }
    ::setenv("HOME", user.home.c_str(), 1);
    ::execl("/bin/sh", "sh", "-c",
            "echo hello > \"$HOME/proof\"; sleep 300 & "
            "setsid sleep 301 >/dev/null 2>&1 & exec sleep 302",
            static_cast<char*>(nullptr));
    ::_exit(121);
  }
  // The worker reaps its own child; do the same so it does not linger as a
  // zombie.
  int child_status = 0;
  std::thread reaper([&] { ::waitpid(pid, &child_status, 0); });

  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (LiveProcessesOf(user.uid).size() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(LiveProcessesOf(user.uid).size(), 3u);
  std::ifstream proof(user.home + "/proof");
  std::string word;
  proof >> word;
  EXPECT_EQ(word, "hello") << "the user could not write to its home";

  absl::Status deleted = manager_->DeleteUser(user, kRealPrefix);
  ASSERT_TRUE(deleted.ok()) << deleted;
  reaper.join();
  EXPECT_TRUE(WIFSIGNALED(child_status));
  EXPECT_EQ(WTERMSIG(child_status), SIGKILL);

  EXPECT_TRUE(LiveProcessesOf(user.uid).empty());
  EXPECT_FALSE(std::filesystem::exists(user.home));
  EXPECT_EQ(::getpwnam(user.name.c_str()), nullptr);
  auto group = runner_.Run({"getent", "group", "users"});
  ASSERT_TRUE(group.ok());
  EXPECT_EQ(group->out.find(user.name), std::string::npos) << group->out;
  auto after = manager_->ListManagedUsers(kRealPrefix);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());

  // Deleting again is harmless.
  EXPECT_TRUE(manager_->DeleteUser(user, kRealPrefix).ok());
}

TEST_F(UseraddUserManagerRealTest, CrashLeftoversAreFoundAndDeleted) {
  NewUser request = RealRequest();
  request.groups = {};
  auto first = manager_->CreateUser(request);
  auto second = manager_->CreateUser(request);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(first->uid, second->uid);

  // A new manager, as after a worker restart, finds both and deletes them.
  UseraddUserManager restarted(runner_, options_);
  auto leftovers = restarted.ListManagedUsers(kRealPrefix);
  ASSERT_TRUE(leftovers.ok()) << leftovers.status();
  ASSERT_EQ(leftovers->size(), 2u);
  for (const OsUser& user : *leftovers) {
    ASSERT_TRUE(restarted.DeleteUser(user, kRealPrefix).ok());
    EXPECT_FALSE(std::filesystem::exists(user.home));
    EXPECT_EQ(::getpwnam(user.name.c_str()), nullptr);
  }
  auto none = restarted.ListManagedUsers(kRealPrefix);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(UseraddUserManagerRealTest, TakenUidIsSkippedForReal) {
  // Someone else holds the floor uid.
  auto other =
      runner_.Run({"useradd", "--uid", "42000", "--no-create-home",
                   "--no-user-group", "--gid", "65534", "drover-other-42000"});
  ASSERT_TRUE(other.ok() && other->ok()) << (other.ok() ? other->err : "");
  auto user = manager_->CreateUser(RealRequest());
  (void)runner_.Run({"userdel", "drover-other-42000"});
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->uid, 42001u);
  EXPECT_TRUE(manager_->DeleteUser(*user, kRealPrefix).ok());
}

TEST_F(UseraddUserManagerRealTest, MissingGroupFailsAndLeavesNoUser) {
  NewUser request = RealRequest();
  request.groups = {"drover-no-such-group"};
  auto user = manager_->CreateUser(request);
  ASSERT_FALSE(user.ok());
  EXPECT_TRUE(HasErrorCode(user.status(), ErrorCode::kInternalError));
  auto listed = manager_->ListManagedUsers(kRealPrefix);
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->empty());
  EXPECT_TRUE(std::filesystem::is_empty(home_root_));
}

}  // namespace
}  // namespace drover::engines::users
