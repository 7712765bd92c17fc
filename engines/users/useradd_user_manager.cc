#include "engines/users/useradd_user_manager.h"

#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace drover::engines::users {
namespace {

// Exit statuses documented in useradd(8) and userdel(8).
constexpr int kUseraddUidInUse = 4;
constexpr int kUseraddNameInUse = 9;
constexpr int kUserdelNoSuchUser = 6;

}  // namespace

CommandUserManagerOptions UseraddUserManager::DefaultOptions() {
  CommandUserManagerOptions options;
  options.home_root = "/home";
  options.primary_gid = 65534;  // nogroup
  options.shell = "/bin/sh";
  return options;
}

UseraddUserManager::UseraddUserManager(process::CommandRunner& runner,
                                       CommandUserManagerOptions options)
    : CommandUserManager(runner, std::move(options)) {}

absl::StatusOr<std::vector<OsUser>> UseraddUserManager::ReadPasswd() {
  // getent rather than /etc/passwd: uids held by NSS sources (LDAP, sssd)
  // count as taken too.
  DROVER_ASSIGN_OR_RETURN(process::CommandResult listing,
                          process::RunChecked(runner(), {"getent", "passwd"}));
  std::vector<OsUser> users;
  for (absl::string_view line : absl::StrSplit(listing.out, '\n')) {
    std::vector<std::string> fields = absl::StrSplit(line, ':');
    if (fields.size() < 7) continue;
    uint32_t uid = 0, gid = 0;
    if (!absl::SimpleAtoi(fields[2], &uid) ||
        !absl::SimpleAtoi(fields[3], &gid)) {
      continue;
    }
    users.push_back(OsUser{fields[0], static_cast<uid_t>(uid),
                           static_cast<gid_t>(gid), fields[5]});
  }
  return users;
}

absl::StatusOr<std::vector<CommandUserManager::Entry>>
UseraddUserManager::ListAllUsers() {
  DROVER_ASSIGN_OR_RETURN(std::vector<OsUser> users, ReadPasswd());
  std::vector<Entry> entries;
  entries.reserve(users.size());
  for (OsUser& user : users) {
    entries.push_back(Entry{std::move(user.name), user.uid});
  }
  return entries;
}

absl::StatusOr<std::vector<OsUser>> UseraddUserManager::ReadUsers(
    const std::vector<std::string>& names) {
  DROVER_ASSIGN_OR_RETURN(std::vector<OsUser> all, ReadPasswd());
  std::set<std::string> wanted(names.begin(), names.end());
  std::vector<OsUser> users;
  for (OsUser& user : all) {
    if (wanted.count(user.name) != 0) users.push_back(std::move(user));
  }
  return users;
}

absl::Status UseraddUserManager::CreateRecord(
    const OsUser& user, const std::vector<std::string>& groups) {
  // useradd writes passwd, shadow and group in one locked update, so a
  // failure leaves nothing to roll back.
  std::vector<std::string> argv = {"useradd",
                                   "--uid",
                                   absl::StrCat(user.uid),
                                   "--gid",
                                   absl::StrCat(user.gid),
                                   "--no-user-group",
                                   "--home-dir",
                                   user.home,
                                   "--no-create-home",
                                   "--shell",
                                   options().shell,
                                   "--comment",
                                   "Drover task user"};
  if (!groups.empty()) {
    argv.push_back("--groups");
    argv.push_back(absl::StrJoin(groups, ","));
  }
  argv.push_back(user.name);
  DROVER_ASSIGN_OR_RETURN(process::CommandResult result, runner().Run(argv));
  if (result.ok()) return absl::OkStatus();
  if (result.exit_code == kUseraddUidInUse ||
      result.exit_code == kUseraddNameInUse) {
    return ConflictError("useradd refused a taken uid or name",
                         {{"user", user.name},
                          {"uid", absl::StrCat(user.uid)},
                          {"stderr", result.err}});
  }
  return process::CommandFailedError(argv, result);
}

absl::Status UseraddUserManager::RemoveRecord(
    const OsUser& user, const std::vector<std::string>* /*known_groups*/) {
  // userdel also drops the user from every supplementary group.
  std::vector<std::string> argv = {"userdel", user.name};
  DROVER_ASSIGN_OR_RETURN(process::CommandResult result, runner().Run(argv));
  if (result.ok() || result.exit_code == kUserdelNoSuchUser) {
    return absl::OkStatus();
  }
  return process::CommandFailedError(argv, result);
}

}  // namespace drover::engines::users
