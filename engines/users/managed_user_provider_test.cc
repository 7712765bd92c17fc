// ManagedUserProvider over DsclUserManager and the recording command
// runner: what a task run asks of the user directory.
#include "engines/users/managed_user_provider.h"

#include <grp.h>

#include "common/process/command_runner.h"
#include "common/status.h"
#include "engines/users/dscl_user_manager.h"
#include "gtest/gtest.h"

namespace drover::engines::users {
namespace {

using process::CommandResult;
using process::RecordingCommandRunner;
using Argv = std::vector<std::string>;
using Commands = std::vector<Argv>;

const Argv kListUids = {"dscl", ".", "-list", "/Users", "UniqueID"};
const Argv kListMemberships = {"dscl", ".", "-list", "/Groups",
                               "GroupMembership"};

CommandResult Out(std::string out) {
  CommandResult result;
  result.out = std::move(out);
  return result;
}

// The name of group 0 ("root" on Linux, "wheel" on macOS): a group that
// exists on every host.
std::string GroupZero() {
  struct group* entry = ::getgrgid(0);
  return entry != nullptr ? entry->gr_name : "root";
}

class ManagedUserProviderTest : public ::testing::Test {
 protected:
  ManagedUserProviderTest() : manager_(runner_, Options()) {}

  static CommandUserManagerOptions Options() {
    CommandUserManagerOptions options = DsclUserManager::DefaultOptions();
    options.kill_pause = absl::ZeroDuration();
    return options;
  }

  NewUser Request(std::vector<std::string> groups) {
    NewUser request;
    request.uid_floor = 25000;
    request.uid_ceiling = 25100;
    request.groups = std::move(groups);
    return request;
  }

  RecordingCommandRunner runner_;
  DsclUserManager manager_;
};

TEST_F(ManagedUserProviderTest, AcquireCreatesAUserAndResolvesGroups) {
  auto provider =
      ManagedUserProvider::Create(&manager_, Request({GroupZero()}));
  ASSERT_TRUE(provider.ok()) << provider.status();
  auto user = (*provider)->Acquire("task", 0);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->name, "drover-task-25000");
  EXPECT_EQ(user->uid, 25000u);
  EXPECT_EQ(user->gid, 20u);
  EXPECT_EQ(user->home, "/Users/drover-task-25000");
  EXPECT_EQ(user->groups, (std::vector<gid_t>{20, 0}));
  Commands commands = runner_.commands();
  ASSERT_GE(commands.size(), 2u);
  EXPECT_EQ(commands[1], (Argv{"dscl", ".", "-create", user->home}));
  EXPECT_EQ(commands.back(),
            (Argv{"chown", "25000:20", "/Users/drover-task-25000"}));
}

TEST_F(ManagedUserProviderTest, ReleaseDeletesTheUser) {
  auto provider = ManagedUserProvider::Create(&manager_, Request({}));
  ASSERT_TRUE(provider.ok());
  auto user = (*provider)->Acquire("task", 1);
  ASSERT_TRUE(user.ok());
  runner_.Respond(kListUids, Out("drover-task-25000 25000\n"));
  runner_.Respond({"pkill"}, [] {
    CommandResult none;
    none.exit_code = 1;
    return none;
  }());
  runner_.ClearCommands();
  ASSERT_TRUE((*provider)->Release(*user).ok());
  Commands expected = {
      kListUids,
      {"pkill", "-KILL", "-U", "25000"},
      {"pkill", "-KILL", "-u", "25000"},
      {"rm", "-rf", "/Users/drover-task-25000"},
      kListMemberships,
      {"dscl", ".", "-delete", "/Users/drover-task-25000"},
  };
  EXPECT_EQ(runner_.commands(), expected);
}

TEST_F(ManagedUserProviderTest, UnknownGroupFailsAndDeletesTheUserAgain) {
  auto provider = ManagedUserProvider::Create(
      &manager_, Request({"drover-no-such-group-anywhere"}));
  ASSERT_TRUE(provider.ok());
  // From the re-check on, the directory shows the new user.
  runner_.Respond(kListUids, Out("drover-task-25000 25000\n"));
  runner_.RespondSequence(kListUids, {Out("")});
  runner_.Respond({"pkill"}, [] {
    CommandResult none;
    none.exit_code = 1;
    return none;
  }());
  auto user = (*provider)->Acquire("task", 0);
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(GetErrorInfo(user.status()).details["group"],
            "drover-no-such-group-anywhere");
  Commands commands = runner_.commands();
  ASSERT_FALSE(commands.empty());
  EXPECT_EQ(commands.back(),
            (Argv{"dscl", ".", "-delete", "/Users/drover-task-25000"}));
}

TEST_F(ManagedUserProviderTest, DeleteLeftoverUsersDeletesEveryPrefixedUser) {
  auto provider = ManagedUserProvider::Create(&manager_, Request({}));
  ASSERT_TRUE(provider.ok());
  runner_.Respond(kListUids, Out("alice 501\n"
                                 "drover-task-25003 25003\n"
                                 "drover-task-25001 25001\n"));
  for (const char* id : {"25001", "25003"}) {
    std::string name = std::string("drover-task-") + id;
    runner_.Respond({"dscl", ".", "-read", "/Users/" + name},
                    Out("NFSHomeDirectory: /Users/" + name +
                        "\nPrimaryGroupID: 20\nUniqueID: " + id + "\n"));
  }
  runner_.Respond({"pkill"}, [] {
    CommandResult none;
    none.exit_code = 1;
    return none;
  }());
  ASSERT_TRUE((*provider)->DeleteLeftoverUsers().ok());
  std::vector<std::string> deleted;
  for (const Argv& command : runner_.commands()) {
    if (command.size() == 4 && command[2] == "-delete") {
      deleted.push_back(command[3]);
    }
  }
  EXPECT_EQ(deleted, (std::vector<std::string>{"/Users/drover-task-25001",
                                               "/Users/drover-task-25003"}));
}

TEST_F(ManagedUserProviderTest, CreateRejectsBadInput) {
  auto no_manager = ManagedUserProvider::Create(nullptr, Request({}));
  ASSERT_FALSE(no_manager.ok());
  EXPECT_EQ(GetErrorInfo(no_manager.status()).details["field"], "user_manager");
  NewUser bad = Request({});
  bad.uid_floor = 0;
  auto bad_floor = ManagedUserProvider::Create(&manager_, bad);
  ASSERT_FALSE(bad_floor.ok());
  EXPECT_EQ(GetErrorInfo(bad_floor.status()).details["field"], "uid_floor");
  EXPECT_TRUE(runner_.commands().empty());
}

}  // namespace
}  // namespace drover::engines::users
