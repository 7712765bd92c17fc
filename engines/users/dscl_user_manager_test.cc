// The exact dscl command sequences of DsclUserManager, checked against the
// recording command runner (dscl exists only on macOS).
#include "engines/users/dscl_user_manager.h"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/process/command_runner.h"
#include "common/status.h"
#include "gmock/gmock.h"
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
const Argv kPs = {"ps", "-A", "-o", "ruid=,uid=,stat="};

// What a fresh Mac's local node looks like, plus a person at 501.
constexpr char kBaseListing[] =
    "_amavisd                 83\n"
    "daemon                   1\n"
    "nobody                   -2\n"
    "root                     0\n"
    "alice                    501\n";

CommandResult Out(std::string out) {
  CommandResult result;
  result.out = std::move(out);
  return result;
}

CommandResult Exit(int code) {
  CommandResult result;
  result.exit_code = code;
  return result;
}

CommandUserManagerOptions TestOptions() {
  CommandUserManagerOptions options = DsclUserManager::DefaultOptions();
  options.kill_pause = absl::ZeroDuration();
  return options;
}

NewUser Request(std::vector<std::string> groups = {}) {
  NewUser request;
  request.name_prefix = "drover-task-";
  request.uid_floor = 20000;
  request.uid_ceiling = 20010;
  request.groups = std::move(groups);
  return request;
}

// The commands that create user <name> with <uid> in <groups>, from the
// first listing to the chown of the home.
Commands CreateSequence(const std::string& name, const std::string& uid,
                        const std::vector<std::string>& groups) {
  const std::string path = "/Users/" + name;
  Commands commands = {
      kListUids,
      {"dscl", ".", "-create", path},
      {"dscl", ".", "-create", path, "UniqueID", uid},
      {"dscl", ".", "-create", path, "PrimaryGroupID", "20"},
      {"dscl", ".", "-create", path, "NFSHomeDirectory", path},
      {"dscl", ".", "-create", path, "UserShell", "/bin/bash"},
      {"dscl", ".", "-create", path, "RealName", "Drover task user"},
      {"dscl", ".", "-create", path, "IsHidden", "1"},
      {"dscl", ".", "-create", path, "Password", "*"},
  };
  for (const std::string& group : groups) {
    commands.push_back(
        {"dscl", ".", "-append", "/Groups/" + group, "GroupMembership", name});
  }
  commands.push_back(kListUids);
  commands.push_back({"mkdir", "-m", "700", path});
  commands.push_back({"chown", uid + ":20", path});
  return commands;
}

class DsclUserManagerTest : public ::testing::Test {
 protected:
  DsclUserManagerTest() : manager_(runner_, TestOptions()) {
    runner_.Respond(kListUids, Out(kBaseListing));
  }

  RecordingCommandRunner runner_;
  DsclUserManager manager_;
};

TEST_F(DsclUserManagerTest, CreateRunsTheDsclSequence) {
  auto user = manager_.CreateUser(Request());
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(*user, (OsUser{"drover-task-20000", 20000, 20,
                           "/Users/drover-task-20000"}));
  EXPECT_EQ(runner_.commands(),
            CreateSequence("drover-task-20000", "20000", {}));
}

TEST_F(DsclUserManagerTest, CreateAddsGroupMemberships) {
  auto user = manager_.CreateUser(Request({"_developer", "docker-users"}));
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(runner_.commands(), CreateSequence("drover-task-20000", "20000",
                                               {"_developer", "docker-users"}));
}

TEST_F(DsclUserManagerTest, CreateSkipsTakenUidsAndNames) {
  // 20000 and 20001 are taken by uid; drover-task-20002 exists under
  // another uid (left by someone else), so its name is taken.
  runner_.Respond(kListUids, Out(std::string(kBaseListing) +
                                 "build                    20000\n"
                                 "ci                       20001\n"
                                 "drover-task-20002        7000\n"));
  auto user = manager_.CreateUser(Request());
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->uid, 20003u);
  EXPECT_EQ(user->name, "drover-task-20003");
  EXPECT_EQ(runner_.commands(),
            CreateSequence("drover-task-20003", "20003", {}));
}

TEST_F(DsclUserManagerTest, CollisionFoundByRecheckRollsBackAndRetries) {
  // Between our listing and our record another worker created a user with
  // uid 20000; dscl accepts the duplicate, the re-check catches it.
  std::string other = std::string(kBaseListing) + "intruder 20000\n";
  runner_.RespondSequence(
      kListUids, {Out(kBaseListing), Out(other + "drover-task-20000 20000\n"),
                  Out(other), Out(other + "drover-task-20001 20001\n")});
  auto user = manager_.CreateUser(Request({"staff-extra"}));
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->name, "drover-task-20001");

  Commands expected =
      CreateSequence("drover-task-20000", "20000", {"staff-extra"});
  expected.resize(expected.size() - 2);  // Stops before mkdir/chown.
  expected.push_back({"dscl", ".", "-delete", "/Groups/staff-extra",
                      "GroupMembership", "drover-task-20000"});
  expected.push_back({"dscl", ".", "-delete", "/Users/drover-task-20000"});
  Commands retry =
      CreateSequence("drover-task-20001", "20001", {"staff-extra"});
  expected.insert(expected.end(), retry.begin(), retry.end());
  EXPECT_EQ(runner_.commands(), expected);
}

TEST_F(DsclUserManagerTest, FailedGroupAppendRollsBackEverything) {
  runner_.Fail({"dscl", ".", "-append", "/Groups/missing"}, 56,
               "<main> attribute status: eDSRecordNotFound");
  auto user = manager_.CreateUser(Request({"wheel-ish", "missing", "later"}));
  ASSERT_FALSE(user.ok());
  ErrorInfo info = GetErrorInfo(user.status());
  EXPECT_EQ(info.code, ErrorCode::kInternalError);
  EXPECT_EQ(info.details["exit_code"], "56");
  EXPECT_THAT(info.details["command"], ::testing::HasSubstr("/Groups/missing"));

  Commands expected =
      CreateSequence("drover-task-20000", "20000", {"wheel-ish", "missing"});
  expected.resize(expected.size() - 3);  // Stops at the failed append.
  expected.push_back({"dscl", ".", "-delete", "/Groups/wheel-ish",
                      "GroupMembership", "drover-task-20000"});
  expected.push_back({"dscl", ".", "-delete", "/Users/drover-task-20000"});
  EXPECT_EQ(runner_.commands(), expected);
}

TEST_F(DsclUserManagerTest, FailedAttributeDeletesTheRecord) {
  runner_.Fail(
      {"dscl", ".", "-create", "/Users/drover-task-20000", "NFSHomeDirectory"});
  auto user = manager_.CreateUser(Request({"g"}));
  ASSERT_FALSE(user.ok());
  const std::string path = "/Users/drover-task-20000";
  Commands expected = {
      kListUids,
      {"dscl", ".", "-create", path},
      {"dscl", ".", "-create", path, "UniqueID", "20000"},
      {"dscl", ".", "-create", path, "PrimaryGroupID", "20"},
      {"dscl", ".", "-create", path, "NFSHomeDirectory", path},
      {"dscl", ".", "-delete", path},
  };
  EXPECT_EQ(runner_.commands(), expected);
}

TEST_F(DsclUserManagerTest, FailedBareCreateLeavesNothingToUndo) {
  runner_.Fail({"dscl", ".", "-create"}, 1, "permission denied");
  auto user = manager_.CreateUser(Request());
  ASSERT_FALSE(user.ok());
  Commands expected = {kListUids,
                       {"dscl", ".", "-create", "/Users/drover-task-20000"}};
  EXPECT_EQ(runner_.commands(), expected);
}

TEST_F(DsclUserManagerTest, FailedHomeRollsBackHomeGroupsAndRecord) {
  runner_.Fail({"chown"}, 1, "chown: invalid");
  auto user = manager_.CreateUser(Request({"g1", "g2"}));
  ASSERT_FALSE(user.ok());
  const std::string path = "/Users/drover-task-20000";
  Commands expected =
      CreateSequence("drover-task-20000", "20000", {"g1", "g2"});
  expected.push_back({"rm", "-rf", path});
  expected.push_back({"dscl", ".", "-delete", "/Groups/g2", "GroupMembership",
                      "drover-task-20000"});
  expected.push_back({"dscl", ".", "-delete", "/Groups/g1", "GroupMembership",
                      "drover-task-20000"});
  expected.push_back({"dscl", ".", "-delete", path});
  EXPECT_EQ(runner_.commands(), expected);
}

TEST_F(DsclUserManagerTest, ListingFailureChangesNothing) {
  runner_.Fail(kListUids, 1, "DS error");
  auto user = manager_.CreateUser(Request());
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(runner_.commands(), Commands{kListUids});
}

TEST_F(DsclUserManagerTest, ConsecutiveCreatesDoNotReuseAUidAtOnce) {
  auto first = manager_.CreateUser(Request());
  ASSERT_TRUE(first.ok()) << first.status();
  // The listing does not show the first user (as if it was deleted); the
  // next user still gets the next uid.
  auto second = manager_.CreateUser(Request());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->uid, 20000u);
  EXPECT_EQ(second->uid, 20001u);
}

TEST_F(DsclUserManagerTest, WrapsAroundAndReportsAFullRange) {
  NewUser request = Request();
  request.uid_floor = 20000;
  request.uid_ceiling = 20001;
  ASSERT_TRUE(manager_.CreateUser(request).ok());
  ASSERT_TRUE(manager_.CreateUser(request).ok());
  // Wraps to the floor again.
  auto third = manager_.CreateUser(request);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->uid, 20000u);

  runner_.Respond(kListUids, Out("a 20000\nb 20001\n"));
  runner_.ClearCommands();
  auto full = manager_.CreateUser(request);
  ASSERT_FALSE(full.ok());
  EXPECT_TRUE(HasErrorCode(full.status(), ErrorCode::kResourceExpired));
  EXPECT_EQ(runner_.commands(), Commands{kListUids});
}

TEST_F(DsclUserManagerTest, BadRequestsAreRejectedBeforeAnyCommand) {
  struct Case {
    NewUser request;
    std::string field;
  };
  std::vector<Case> cases;
  NewUser r = Request();
  r.name_prefix = "";
  cases.push_back({r, "name_prefix"});
  r = Request();
  r.name_prefix = "Drover";
  cases.push_back({r, "name_prefix"});
  r = Request();
  r.name_prefix = "drover task";
  cases.push_back({r, "name_prefix"});
  r = Request();
  r.name_prefix = "a-much-too-long-prefix-";
  cases.push_back({r, "name_prefix"});
  r = Request();
  r.uid_floor = 501;
  cases.push_back({r, "uid_floor"});
  r = Request();
  r.uid_ceiling = 19999;
  cases.push_back({r, "uid_ceiling"});
  r = Request({"ok", "bad/group"});
  cases.push_back({r, "groups[1]"});
  r = Request({"ok", "ok"});
  cases.push_back({r, "groups[1]"});
  r = Request({"-o"});
  cases.push_back({r, "groups[0]"});
  for (const Case& c : cases) {
    auto user = manager_.CreateUser(c.request);
    ASSERT_FALSE(user.ok()) << c.field;
    ErrorInfo info = GetErrorInfo(user.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError) << c.field;
    EXPECT_EQ(info.details["field"], c.field);
  }
  EXPECT_TRUE(runner_.commands().empty());
}

TEST_F(DsclUserManagerTest, DeleteKillsRemovesHomeMembershipsThenRecord) {
  runner_.Respond(kListUids, Out(std::string(kBaseListing) +
                                 "drover-task-20004    20004\n"));
  // First round finds processes, one is still alive afterwards; the second
  // round finds nothing.
  runner_.RespondSequence({"pkill", "-KILL", "-U", "20004"},
                          {Exit(0), Exit(1)});
  runner_.RespondSequence({"pkill", "-KILL", "-u", "20004"},
                          {Exit(1), Exit(1)});
  runner_.Respond(kPs, Out("    0     0 Ss\n20004 20004 R\n  501 20004 S\n"));
  runner_.Respond(kListMemberships,
                  Out("admin                    root alice\n"
                      "_developer               drover-task-20004\n"
                      "staff                    root\n"
                      "docker-users             alice drover-task-20004\n"
                      "empty\n"));
  OsUser user{"drover-task-20004", 20004, 20, "/Users/drover-task-20004"};
  absl::Status deleted = manager_.DeleteUser(user, "drover-task-");
  ASSERT_TRUE(deleted.ok()) << deleted;
  Commands expected = {
      kListUids,
      {"pkill", "-KILL", "-U", "20004"},
      {"pkill", "-KILL", "-u", "20004"},
      kPs,
      {"pkill", "-KILL", "-U", "20004"},
      {"pkill", "-KILL", "-u", "20004"},
      {"rm", "-rf", "/Users/drover-task-20004"},
      kListMemberships,
      {"dscl", ".", "-delete", "/Groups/_developer", "GroupMembership",
       "drover-task-20004"},
      {"dscl", ".", "-delete", "/Groups/docker-users", "GroupMembership",
       "drover-task-20004"},
      {"dscl", ".", "-delete", "/Users/drover-task-20004"},
  };
  EXPECT_EQ(runner_.commands(), expected);
}

TEST_F(DsclUserManagerTest, DeleteIgnoresZombies) {
  runner_.Respond(kListUids, Out("drover-task-20004 20004\n"));
  runner_.Respond({"pkill"}, Exit(0));  // Zombies always match.
  runner_.Respond(kPs, Out("20004 20004 Z\n    0     0 S\n"));
  runner_.Respond(kListMemberships, Out(""));
  OsUser user{"drover-task-20004", 20004, 20, "/Users/drover-task-20004"};
  ASSERT_TRUE(manager_.DeleteUser(user, "drover-task-").ok());
  Commands commands = runner_.commands();
  ASSERT_EQ(commands.size(), 7u);
  EXPECT_EQ(commands.back(), (Argv{"dscl", ".", "-delete", user.home}));
}

TEST_F(DsclUserManagerTest, DeleteGivesUpWhenProcessesSurviveAndKeepsUser) {
  runner_.Respond(kListUids, Out("drover-task-20004 20004\n"));
  runner_.Respond({"pkill"}, Exit(0));
  runner_.Respond(kPs, Out("20004 20004 R\n"));
  OsUser user{"drover-task-20004", 20004, 20, "/Users/drover-task-20004"};
  absl::Status deleted = manager_.DeleteUser(user, "drover-task-");
  ASSERT_FALSE(deleted.ok());
  ErrorInfo info = GetErrorInfo(deleted);
  EXPECT_EQ(info.code, ErrorCode::kInternalError);
  EXPECT_EQ(info.details["uid"], "20004");
  for (const Argv& command : runner_.commands()) {
    EXPECT_NE(command[0], "rm");
    if (command[0] == "dscl") {
      EXPECT_EQ(command, kListUids);
    }
  }
}

TEST_F(DsclUserManagerTest, DeleteOfAVanishedUserOnlyRemovesItsHome) {
  OsUser user{"drover-task-20009", 20009, 20, "/Users/drover-task-20009"};
  ASSERT_TRUE(manager_.DeleteUser(user, "drover-task-").ok());
  Commands expected = {kListUids, {"rm", "-rf", "/Users/drover-task-20009"}};
  EXPECT_EQ(runner_.commands(), expected);
}

TEST_F(DsclUserManagerTest, DeleteRefusesUsersItDoesNotManage) {
  struct Case {
    OsUser user;
    std::string field;
  };
  std::vector<Case> cases = {
      {{"alice", 20001, 20, "/Users/alice"}, "user.name"},
      {{"drover-task-", 20001, 20, "/Users/drover-task-"}, "user.name"},
      {{"drover-task-0", 0, 0, "/Users/drover-task-0"}, "user.uid"},
      {{"drover-task-20001", 20001, 20, "/"}, "user.home"},
      {{"drover-task-20001", 20001, 20, "/Users/alice"}, "user.home"},
  };
  for (const Case& c : cases) {
    absl::Status deleted = manager_.DeleteUser(c.user, "drover-task-");
    ErrorInfo info = GetErrorInfo(deleted);
    EXPECT_EQ(info.code, ErrorCode::kInputError) << c.field;
    EXPECT_EQ(info.details["field"], c.field);
  }
  EXPECT_TRUE(runner_.commands().empty());

  // A uid that does not match the directory would kill someone else's
  // processes.
  runner_.Respond(kListUids, Out("drover-task-20001 20002\n"));
  absl::Status mismatch = manager_.DeleteUser(
      {"drover-task-20001", 20001, 20, "/Users/drover-task-20001"},
      "drover-task-");
  EXPECT_EQ(GetErrorInfo(mismatch).details["field"], "user.uid");
  EXPECT_EQ(runner_.commands(), Commands{kListUids});
}

TEST_F(DsclUserManagerTest, ListManagedUsersReadsPrefixedUsers) {
  runner_.Respond(kListUids, Out(std::string(kBaseListing) +
                                 "drover-task-20001        20001\n"
                                 "drover-tasks             20500\n"
                                 "drover-task-20000        20000\n"));
  runner_.Respond({"dscl", ".", "-read", "/Users/drover-task-20000"},
                  Out("NFSHomeDirectory: /Users/drover-task-20000\n"
                      "PrimaryGroupID: 20\nUniqueID: 20000\n"));
  // Long values come on their own indented line.
  runner_.Respond({"dscl", ".", "-read", "/Users/drover-task-20001"},
                  Out("NFSHomeDirectory:\n /Users/drover-task-20001\n"
                      "PrimaryGroupID: 20\nUniqueID: 20001\n"));
  auto users = manager_.ListManagedUsers("drover-task-");
  ASSERT_TRUE(users.ok()) << users.status();
  std::vector<OsUser> expected = {
      {"drover-task-20000", 20000, 20, "/Users/drover-task-20000"},
      {"drover-task-20001", 20001, 20, "/Users/drover-task-20001"},
  };
  EXPECT_EQ(*users, expected);
  Commands commands = {
      kListUids,
      {"dscl", ".", "-read", "/Users/drover-task-20001", "UniqueID",
       "PrimaryGroupID", "NFSHomeDirectory"},
      {"dscl", ".", "-read", "/Users/drover-task-20000", "UniqueID",
       "PrimaryGroupID", "NFSHomeDirectory"},
  };
  EXPECT_EQ(runner_.commands(), commands);

  // Cleanup deletes each of them.
  runner_.ClearCommands();
  runner_.Respond({"pkill"}, Exit(1));
  for (const OsUser& user : *users) {
    ASSERT_TRUE(manager_.DeleteUser(user, "drover-task-").ok());
  }
  int record_deletions = 0;
  for (const Argv& command : runner_.commands()) {
    if (command.size() == 4 && command[2] == "-delete") ++record_deletions;
  }
  EXPECT_EQ(record_deletions, 2);
}

TEST_F(DsclUserManagerTest, ListManagedUsersRejectsBadPrefix) {
  auto users = manager_.ListManagedUsers("");
  ASSERT_FALSE(users.ok());
  EXPECT_EQ(GetErrorInfo(users.status()).details["field"], "name_prefix");
  EXPECT_TRUE(runner_.commands().empty());
}

TEST_F(DsclUserManagerTest, ConcurrentCreatesGetDistinctUsers) {
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<OsUser>> results(kThreads,
                                              InternalError("not run"));
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back(
        [&, i] { results[i] = manager_.CreateUser(Request()); });
  }
  for (auto& thread : threads) thread.join();
  std::set<uid_t> uids;
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    uids.insert(result->uid);
  }
  EXPECT_EQ(uids.size(), static_cast<size_t>(kThreads));
}

}  // namespace
}  // namespace drover::engines::users
