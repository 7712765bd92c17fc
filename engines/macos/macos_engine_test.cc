// The macOS engine: configuration, the environment whitelist, and the
// per-task user lifecycle (created at start, deleted afterwards, also after
// an abort, leftovers cleaned at start) with real processes. On Linux the
// lifecycle runs with the useradd manager for real, and with the dscl
// manager over the recording runner to check the exact dscl sequence of a
// whole task (root only; SKIPPED otherwise).
#include "engines/macos/macos_engine.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/process/command_runner.h"
#include "common/status.h"
#include "engines/users/dscl_user_manager.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace drover::engines::macos {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Argv = std::vector<std::string>;

class CaptureLog final : public LogSink {
 public:
  void Write(std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    text_.append(bytes);
    cv_.notify_all();
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  bool WaitFor(std::string_view needle) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] {
      return text_.find(needle) != std::string::npos;
    });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
};

class TempDir {
 public:
  TempDir() {
    std::random_device random;
    path_ = fs::temp_directory_path() /
            absl::StrCat("drover-macos-test-", ::getpid(), "-", random());
    fs::create_directories(path_);
    ::chmod(path_.c_str(), 0755);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

nlohmann::json Payload(const std::vector<std::string>& scripts) {
  nlohmann::json command = nlohmann::json::array();
  for (const auto& script : scripts)
    command.push_back({"/bin/sh", "-c", script});
  return {{"command", command}};
}

// Processes (not zombies) whose real or effective uid is `uid`.
int LiveProcessesOf(uid_t uid) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    int pid;
    if (!absl::SimpleAtoi(entry.path().filename().string(), &pid)) continue;
    std::ifstream status(entry.path() / "status");
    std::string line;
    bool zombie = false, mine = false;
    while (std::getline(status, line)) {
      if (line.rfind("State:", 0) == 0)
        zombie = line.find('Z') != std::string::npos;
      if (line.rfind("Uid:", 0) == 0) {
        std::vector<std::string> ids = absl::StrSplit(
            line.substr(4), absl::ByAnyChar(" \t"), absl::SkipEmpty());
        for (size_t i = 0; i < 2 && i < ids.size(); ++i) {
          if (ids[i] == absl::StrCat(uid)) mine = true;
        }
      }
    }
    if (mine && !zombie) ++count;
  }
  return count;
}

// ---------------------------------------------------------------------------
// Configuration.

TEST(ParseMacosEngineConfigTest, DefaultsCreateUsers) {
  auto options = ParseMacosEngineConfig(nullptr, "/var/lib/drover");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->create_user);
  EXPECT_EQ(options->user.name_prefix, "drover-task-");
  EXPECT_EQ(options->native.work_dir, "/var/lib/drover");
#ifdef __APPLE__
  EXPECT_EQ(options->user_manager, UserManagerKind::kDscl);
#else
  EXPECT_EQ(options->user_manager, UserManagerKind::kUseradd);
  EXPECT_EQ(options->user_manager_options.home_root, "/home");
#endif
}

TEST(ParseMacosEngineConfigTest, ReadsEveryKey) {
  nlohmann::json config = {
      {"createUser", true},
      {"user_manager", "dscl"},
      {"groups", {"_developer", "com.apple.access_ssh"}},
      {"user_prefix", "ci-"},
      {"uid_floor", 30000},
      {"uid_ceiling", 30999},
      {"home_root", "/Users/tasks"},
      {"primary_group_id", 20},
      {"shell", "/bin/zsh"},
      {"inherit_env", {"LANG"}},
      {"kill_grace_seconds", 2},
  };
  auto options = ParseMacosEngineConfig(config, "/w");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->user_manager, UserManagerKind::kDscl);
  EXPECT_EQ(options->user.groups,
            (std::vector<std::string>{"_developer", "com.apple.access_ssh"}));
  EXPECT_EQ(options->user.name_prefix, "ci-");
  EXPECT_EQ(options->user.uid_floor, 30000u);
  EXPECT_EQ(options->user.uid_ceiling, 30999u);
  EXPECT_EQ(options->user_manager_options.home_root, "/Users/tasks");
  EXPECT_EQ(options->user_manager_options.primary_gid, 20u);
  EXPECT_EQ(options->user_manager_options.shell, "/bin/zsh");
  EXPECT_EQ(options->native.inherit_env, (std::vector<std::string>{"LANG"}));
  EXPECT_EQ(options->native.kill_grace, absl::Seconds(2));

  // As read from a config file (non-negative numbers parse as unsigned).
  auto from_file = ParseMacosEngineConfig(
      nlohmann::json::parse(
          R"({"createUser": true, "uid_floor": 31000, "uid_ceiling": 31500,
                                "primary_group_id": 20, "groups": []})"),
      "/w");
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->user.uid_floor, 31000u);
  EXPECT_EQ(from_file->user.uid_ceiling, 31500u);
  EXPECT_TRUE(from_file->user.groups.empty());
}

TEST(ParseMacosEngineConfigTest, ErrorsNameTheField) {
  struct Case {
    nlohmann::json config;
    std::string field;
  };
  std::vector<Case> cases = {
      {{{"createUser", "yes"}}, "engine.config.createUser"},
      {{{"create_user", 1}}, "engine.config.create_user"},
      {{{"user_manager", "ldap"}}, "engine.config.user_manager"},
      {{{"groups", "staff"}}, "engine.config.groups"},
      {{{"groups", {"staff", 7}}}, "engine.config.groups[1]"},
      {{{"groups", {"staff", "bad group"}}}, "engine.config.groups[1]"},
      {{{"user_prefix", "Bad"}}, "engine.config.user_prefix"},
      {{{"uid_floor", -5}}, "engine.config.uid_floor"},
      {{{"uid_floor", 600}}, "engine.config.uid_floor"},
      {{{"uid_floor", 30000}, {"uid_ceiling", 20000}},
       "engine.config.uid_ceiling"},
      {{{"home_root", "relative"}}, "engine.config.home_root"},
      {{{"home_root", "/"}}, "engine.config.home_root"},
      {{{"primary_group_id", 0}}, "engine.config.primary_group_id"},
      {{{"shell", "zsh"}}, "engine.config.shell"},
      {{{"run_as", "nobody"}}, "engine.config.run_as"},
      {{{"per_task_user", true}}, "engine.config.per_task_user"},
      {{{"bogus", 1}}, "engine.config.bogus"},
      {{{"limits", {{"memory_mb", 0}}}}, "engine.config.limits.memory_mb"},
  };
  for (const Case& c : cases) {
    auto options = ParseMacosEngineConfig(c.config, "/w");
    ASSERT_FALSE(options.ok()) << c.config.dump();
    ErrorInfo info = GetErrorInfo(options.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError) << c.config.dump();
    EXPECT_EQ(info.details["field"], c.field) << c.config.dump();
  }
  auto not_object = ParseMacosEngineConfig(nlohmann::json::array(), "/w");
  EXPECT_EQ(GetErrorInfo(not_object.status()).details["field"],
            "engine.config");
}

TEST(MacosEngineCreateTest, RejectsUsersWithoutManagerOrNativeUserSettings) {
  TempDir dir;
  MacosEngineOptions options =
      DefaultMacosEngineOptions(UserManagerKind::kUseradd);
  options.native.work_dir = dir.path();
  auto no_manager = MacosEngine::Create(options, nullptr);
  ASSERT_FALSE(no_manager.ok());
  EXPECT_EQ(GetErrorInfo(no_manager.status()).details["field"], "create_user");

  options.create_user = false;
  options.native.run_as = "nobody";
  auto run_as = MacosEngine::Create(options, nullptr);
  ASSERT_FALSE(run_as.ok());
  EXPECT_EQ(GetErrorInfo(run_as.status()).details["field"], "native.run_as");
}

// ---------------------------------------------------------------------------
// Without per-task users (any uid): the environment whitelist.

TEST(MacosEngineTest, TaskSeesOnlyPluginsEnvAndTheWhitelist) {
  TempDir dir;
  ::setenv("DROVER_TEST_WORKER_SECRET", "do-not-leak", 1);
  ::setenv("DROVER_TEST_WHITELISTED", "allowed", 1);
  MacosEngineOptions options =
      DefaultMacosEngineOptions(UserManagerKind::kUseradd);
  options.create_user = false;
  options.native.work_dir = dir.path() / "work";
  options.native.inherit_env = {"DROVER_TEST_WHITELISTED"};
  auto engine = MacosEngine::Create(options, nullptr);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->Name(), "macos");
  EXPECT_THAT((*engine)->PayloadKeys(), ::testing::Contains("command"));

  CaptureLog log;
  SandboxSpec spec;
  spec.task_id = "envtask";
  spec.task_dir = dir.path() / "task";
  fs::create_directories(spec.task_dir);
  spec.payload = Payload({"env"});
  spec.env = {{"TASK_ID", "envtask"}};
  spec.log = &log;
  auto sandbox = (*engine)->NewSandbox(spec);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_TRUE((*sandbox)->Start().ok());
  auto result = (*sandbox)->Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << log.text();
  std::string env = log.text();
  EXPECT_THAT(env, HasSubstr("TASK_ID=envtask\n"));
  EXPECT_THAT(env, HasSubstr("DROVER_TEST_WHITELISTED=allowed\n"));
  EXPECT_THAT(env,
              HasSubstr("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n"));
  EXPECT_THAT(env, ::testing::Not(HasSubstr("do-not-leak")));
  ::unsetenv("DROVER_TEST_WORKER_SECRET");
  ::unsetenv("DROVER_TEST_WHITELISTED");

  EXPECT_FALSE((*engine)->ValidatePayload({{"command", 5}}).ok());
}

// ---------------------------------------------------------------------------
// Per-task users for real (useradd).

constexpr char kPrefix[] = "drovermt-";

class MacosEngineUsersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "creating a user per task needs root; running as uid "
                   << ::geteuid();
    }
    if (::access("/usr/sbin/useradd", X_OK) != 0) {
      GTEST_SKIP() << "useradd is not installed";
    }
    dir_ = std::make_unique<TempDir>();
    fs::create_directories(dir_->path() / "homes");
    ::chmod((dir_->path() / "homes").c_str(), 0755);
    options_ = DefaultMacosEngineOptions(UserManagerKind::kUseradd);
    options_.native.work_dir = dir_->path() / "work";
    options_.user.name_prefix = kPrefix;
    options_.user.uid_floor = 44000;
    options_.user.uid_ceiling = 44999;
    options_.user.groups = {"users"};
    options_.user_manager_options.home_root = (dir_->path() / "homes").string();
    options_.user_manager_options.kill_pause = absl::Milliseconds(5);
    manager_ = MakeUserManager(options_, runner_);
    auto engine = MacosEngine::Create(options_, manager_.get());
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    ASSERT_TRUE(engine_->CleanUpLeftovers().ok());
  }

  void TearDown() override {
    if (engine_ != nullptr) (void)engine_->CleanUpLeftovers();
  }

  SandboxSpec Spec(const std::vector<std::string>& scripts, LogSink* log) {
    SandboxSpec spec;
    spec.task_id = absl::StrCat("task", next_++);
    spec.task_dir = dir_->path() / "tasks" / spec.task_id;
    fs::create_directories(spec.task_dir);
    ::chmod((dir_->path() / "tasks").c_str(), 0755);
    spec.payload = Payload(scripts);
    spec.log = log;
    return spec;
  }

  std::vector<users::OsUser> Managed() {
    auto users = manager_->ListManagedUsers(kPrefix);
    EXPECT_TRUE(users.ok()) << users.status();
    return users.ok() ? *users : std::vector<users::OsUser>{};
  }

  process::SubprocessCommandRunner runner_;
  std::unique_ptr<TempDir> dir_;
  MacosEngineOptions options_;
  std::unique_ptr<users::UserManager> manager_;
  std::unique_ptr<MacosEngine> engine_;
  int next_ = 0;
};

TEST_F(MacosEngineUsersTest, TaskRunsAsAFreshUserThatIsDeletedAfterwards) {
  CaptureLog log;
  auto sandbox = engine_->NewSandbox(Spec(
      {"echo user=$(id -un) uid=$(id -u) groups=$(id -Gn | tr ' ' ,)",
       "echo home=$HOME shell=$SHELL logname=$LOGNAME",
       "touch \"$HOME/in-home\" && echo wrote-home", "echo running; sleep 1"},
      &log));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE(log.WaitFor("running"));
  std::vector<users::OsUser> during = Managed();
  ASSERT_EQ(during.size(), 1u);
  const users::OsUser user = during[0];
  auto result = (*sandbox)->Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << log.text();
  std::string text = log.text();
  EXPECT_THAT(text, HasSubstr(absl::StrCat("user=", user.name,
                                           " uid=", user.uid, " ")));
  EXPECT_THAT(text, HasSubstr("users"));
  EXPECT_THAT(text,
              HasSubstr(absl::StrCat("home=", user.home,
                                     " shell=/bin/sh logname=", user.name)));
  EXPECT_THAT(text, HasSubstr("wrote-home"));
  // Still there until the sandbox goes (artifacts are extracted first).
  EXPECT_EQ(Managed().size(), 1u);
  sandbox->reset();
  EXPECT_TRUE(Managed().empty());
  EXPECT_EQ(::getpwnam(user.name.c_str()), nullptr);
  EXPECT_FALSE(fs::exists(user.home));
  EXPECT_EQ(LiveProcessesOf(user.uid), 0);
}

TEST_F(MacosEngineUsersTest, AbortKillsEverythingAndTheUserIsDeleted) {
  CaptureLog log;
  auto sandbox = engine_->NewSandbox(
      Spec({"sleep 300 & setsid sh -c 'sleep 301' >/dev/null 2>&1 & "
            "echo started; wait"},
           &log));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE(log.WaitFor("started"));
  std::vector<users::OsUser> during = Managed();
  ASSERT_EQ(during.size(), 1u);
  const uid_t uid = during[0].uid;
  EXPECT_GE(LiveProcessesOf(uid), 2);
  (*sandbox)->Abort();
  auto result = (*sandbox)->Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->aborted);
  sandbox->reset();
  EXPECT_TRUE(Managed().empty());
  EXPECT_EQ(LiveProcessesOf(uid), 0);
  EXPECT_FALSE(fs::exists(during[0].home));
}

TEST_F(MacosEngineUsersTest, ConcurrentTasksGetDistinctUsers) {
  constexpr int kTasks = 3;
  std::vector<std::unique_ptr<CaptureLog>> logs;
  std::vector<std::unique_ptr<Sandbox>> sandboxes;
  for (int i = 0; i < kTasks; ++i) {
    logs.push_back(std::make_unique<CaptureLog>());
    auto sandbox =
        engine_->NewSandbox(Spec({"id -u; sleep 1"}, logs.back().get()));
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    ASSERT_TRUE((*sandbox)->Start().ok());
    sandboxes.push_back(std::move(*sandbox));
  }
  std::set<std::string> uids;
  for (int i = 0; i < kTasks; ++i) {
    auto result = sandboxes[i]->Wait();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 0);
    uids.insert(logs[i]->text());
  }
  EXPECT_EQ(uids.size(), static_cast<size_t>(kTasks));
  EXPECT_EQ(Managed().size(), static_cast<size_t>(kTasks));
  sandboxes.clear();
  EXPECT_TRUE(Managed().empty());
}

TEST_F(MacosEngineUsersTest, SandboxOutlivingTheEngineStillDeletesItsUser) {
  CaptureLog log;
  auto sandbox = engine_->NewSandbox(Spec({"id -un"}, &log));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE((*sandbox)->Wait().ok());
  ASSERT_EQ(Managed().size(), 1u);
  engine_.reset();
  sandbox->reset();
  EXPECT_TRUE(Managed().empty());
}

TEST_F(MacosEngineUsersTest, CleanUpLeftoversDeletesUsersOfACrashedWorker) {
  // A crashed worker's users: created, never deleted.
  users::NewUser request = options_.user;
  auto first = manager_->CreateUser(request);
  auto second = manager_->CreateUser(request);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(Managed().size(), 2u);
  ASSERT_TRUE(engine_->CleanUpLeftovers().ok());
  EXPECT_TRUE(Managed().empty());
  EXPECT_FALSE(fs::exists(first->home));
  EXPECT_FALSE(fs::exists(second->home));
}

TEST_F(MacosEngineUsersTest, UserCreationFailureFailsStartAndLeavesNothing) {
  MacosEngineOptions options = options_;
  options.native.work_dir = dir_->path() / "work2";
  options.user.groups = {"drover-no-such-group"};
  auto engine = MacosEngine::Create(options, manager_.get());
  ASSERT_TRUE(engine.ok()) << engine.status();
  CaptureLog log;
  auto sandbox = (*engine)->NewSandbox(Spec({"true"}, &log));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  absl::Status started = (*sandbox)->Start();
  EXPECT_FALSE(started.ok());
  sandbox->reset();
  EXPECT_TRUE(Managed().empty());
}

// ---------------------------------------------------------------------------
// The dscl manager over the recording runner, with the task's processes
// running for real under the uid dscl was told to create.

TEST(MacosEngineDsclTest, WholeTaskRunsTheDsclSequence) {
  if (::geteuid() != 0) {
    GTEST_SKIP() << "running a task under another uid needs root; running as "
                 << "uid " << ::geteuid();
  }
  TempDir dir;
  process::RecordingCommandRunner runner;
  // The directory shows the user from the re-check on.
  process::CommandResult with_user;
  with_user.out = "root 0\ndrover-task-45000 45000\n";
  runner.Respond({"dscl", ".", "-list", "/Users"}, with_user);
  runner.RespondSequence({"dscl", ".", "-list", "/Users"},
                         {process::CommandResult{0, {}, "root 0\n", ""}});
  process::CommandResult none;
  none.exit_code = 1;
  runner.Respond({"pkill"}, none);
  process::CommandResult memberships;
  memberships.out = "staff root\nci drover-task-45000\n";
  runner.Respond({"dscl", ".", "-list", "/Groups"}, memberships);

  MacosEngineOptions options =
      DefaultMacosEngineOptions(UserManagerKind::kDscl);
  options.native.work_dir = dir.path() / "work";
  options.user.uid_floor = 45000;
  options.user.uid_ceiling = 45999;
  options.user.groups = {};
  options.user_manager_options.kill_pause = absl::ZeroDuration();
  std::unique_ptr<users::UserManager> manager =
      MakeUserManager(options, runner);
  auto engine = MacosEngine::Create(options, manager.get());
  ASSERT_TRUE(engine.ok()) << engine.status();

  CaptureLog log;
  SandboxSpec spec;
  spec.task_id = "dscltask";
  spec.task_dir = dir.path() / "task";
  fs::create_directories(spec.task_dir);
  spec.payload = Payload({"echo uid=$(id -u) home=$HOME; touch mine"});
  spec.log = &log;
  auto sandbox = (*engine)->NewSandbox(spec);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_TRUE((*sandbox)->Start().ok());
  auto result = (*sandbox)->Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << log.text();
  EXPECT_THAT(log.text(), HasSubstr("uid=45000 home=/Users/drover-task-45000"));
  struct stat st;
  ASSERT_EQ(::stat((spec.task_dir / "mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 45000u);
  sandbox->reset();

  const std::string path = "/Users/drover-task-45000";
  std::vector<Argv> expected = {
      {"dscl", ".", "-list", "/Users", "UniqueID"},
      {"dscl", ".", "-create", path},
      {"dscl", ".", "-create", path, "UniqueID", "45000"},
      {"dscl", ".", "-create", path, "PrimaryGroupID", "20"},
      {"dscl", ".", "-create", path, "NFSHomeDirectory", path},
      {"dscl", ".", "-create", path, "UserShell", "/bin/bash"},
      {"dscl", ".", "-create", path, "RealName", "Drover task user"},
      {"dscl", ".", "-create", path, "IsHidden", "1"},
      {"dscl", ".", "-create", path, "Password", "*"},
      {"dscl", ".", "-list", "/Users", "UniqueID"},
      {"mkdir", "-m", "700", path},
      {"chown", "45000:20", path},
      // The task ran here; then the sandbox is destroyed:
      {"dscl", ".", "-list", "/Users", "UniqueID"},
      {"pkill", "-KILL", "-U", "45000"},
      {"pkill", "-KILL", "-u", "45000"},
      {"rm", "-rf", path},
      {"dscl", ".", "-list", "/Groups", "GroupMembership"},
      {"dscl", ".", "-delete", "/Groups/ci", "GroupMembership",
       "drover-task-45000"},
      {"dscl", ".", "-delete", path},
  };
  EXPECT_EQ(runner.commands(), expected);
}

}  // namespace
}  // namespace drover::engines::macos
