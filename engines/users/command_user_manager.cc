#include "engines/users/command_user_manager.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "spdlog/spdlog.h"

namespace drover::engines::users {
namespace {

// Below this uid live system accounts on both Linux and macOS; no request
// or deletion may touch them.
constexpr uint32_t kMinManagedUid = 1000;
constexpr size_t kMaxPrefixLength = 20;
constexpr size_t kMaxGroupLength = 64;

bool IsPrefixChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

bool IsGroupChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

absl::Status ValidateNamePrefix(const std::string& prefix,
                                const std::string& field) {
  if (prefix.empty()) {
    return InputError(field, prefix, "the user name prefix may not be empty");
  }
  if (prefix.size() > kMaxPrefixLength) {
    return InputError(field, prefix,
                      absl::StrCat("the user name prefix may have at most ",
                                   kMaxPrefixLength, " characters"));
  }
  if (!((prefix[0] >= 'a' && prefix[0] <= 'z') || prefix[0] == '_')) {
    return InputError(field, prefix,
                      "the user name prefix must start with a lower-case "
                      "letter or '_'");
  }
  if (!std::all_of(prefix.begin(), prefix.end(), IsPrefixChar)) {
    return InputError(field, prefix,
                      "the user name prefix may only hold a-z, 0-9, '_' and "
                      "'-'");
  }
  return absl::OkStatus();
}

absl::Status ValidateNewUser(const NewUser& request) {
  DROVER_RETURN_IF_ERROR(ValidateNamePrefix(request.name_prefix));
  if (request.uid_floor < kMinManagedUid) {
    return InputError(
        "uid_floor", absl::StrCat(request.uid_floor),
        absl::StrCat("the uid floor must be at least ", kMinManagedUid));
  }
  if (request.uid_ceiling < request.uid_floor ||
      request.uid_ceiling > 0x7ffffffe) {
    return InputError("uid_ceiling", absl::StrCat(request.uid_ceiling),
                      "the uid ceiling must lie between the floor and "
                      "2147483646");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < request.groups.size(); ++i) {
    const std::string& group = request.groups[i];
    std::string field = absl::StrCat("groups[", i, "]");
    if (group.empty() || group.size() > kMaxGroupLength ||
        !std::all_of(group.begin(), group.end(), IsGroupChar) ||
        group[0] == '-' || group[0] == '.') {
      return InputError(field, group,
                        "a group name holds 1-64 characters of A-Z, a-z, "
                        "0-9, '_', '-', '.' and starts with a letter, digit "
                        "or '_'");
    }
    if (!seen.insert(group).second) {
      return InputError(field, group, "group listed twice");
    }
  }
  return absl::OkStatus();
}

CommandUserManager::CommandUserManager(process::CommandRunner& runner,
                                       CommandUserManagerOptions options)
    : runner_(runner), options_(std::move(options)) {}

std::string CommandUserManager::HomeFor(const std::string& name) const {
  std::string root = options_.home_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return absl::StrCat(root, "/", name);
}

absl::StatusOr<uid_t> CommandUserManager::PickUid(
    const NewUser& request, const std::vector<Entry>& entries,
    const std::vector<uid_t>& rejected) const {
  std::set<uint64_t> taken_uids(rejected.begin(), rejected.end());
  std::set<std::string> taken_names;
  for (const Entry& entry : entries) {
    taken_uids.insert(entry.uid);
    taken_names.insert(entry.name);
  }
  const uint64_t floor = request.uid_floor;
  const uint64_t ceiling = request.uid_ceiling;
  const uint64_t span = ceiling - floor + 1;
  uint64_t start = floor;
  if (last_uid_.has_value() && *last_uid_ >= floor && *last_uid_ < ceiling) {
    start = static_cast<uint64_t>(*last_uid_) + 1;
  }
  for (uint64_t i = 0; i < span; ++i) {
    uint64_t uid = floor + (start - floor + i) % span;
    if (taken_uids.count(uid) != 0) continue;
    if (taken_names.count(absl::StrCat(request.name_prefix, uid)) != 0) {
      continue;
    }
    return static_cast<uid_t>(uid);
  }
  return MakeError(ErrorCode::kResourceExpired,
                   "no free uid left for a task user",
                   {{"uid_floor", absl::StrCat(request.uid_floor)},
                    {"uid_ceiling", absl::StrCat(request.uid_ceiling)}});
}

absl::StatusOr<OsUser> CommandUserManager::CreateUser(const NewUser& request) {
  DROVER_RETURN_IF_ERROR(ValidateNewUser(request));
  std::lock_guard<std::mutex> lock(mu_);

  std::vector<uid_t> rejected;
  for (int attempt = 0; attempt < options_.max_create_attempts; ++attempt) {
    DROVER_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListAllUsers());
    DROVER_ASSIGN_OR_RETURN(uid_t uid, PickUid(request, entries, rejected));
    OsUser user;
    user.name = absl::StrCat(request.name_prefix, uid);
    user.uid = uid;
    user.gid = options_.primary_gid;
    user.home = HomeFor(user.name);

    absl::Status created = CreateRecord(user, request.groups);
    if (HasErrorCode(created, ErrorCode::kRequestConflict)) {
      spdlog::warn("uid {} for task user {} was taken meanwhile: {}", uid,
                   user.name, std::string(created.message()));
      rejected.push_back(uid);
      continue;
    }
    DROVER_RETURN_IF_ERROR(created);

    // Another worker (or an administrator) may have picked the same uid
    // between our listing and our record; the directory does not always
    // refuse duplicates (dscl never does), so look again.
    auto recheck = ListAllUsers();
    bool collided = false;
    if (recheck.ok()) {
      for (const Entry& entry : *recheck) {
        if (entry.uid == uid && entry.name != user.name) collided = true;
      }
    }
    if (!recheck.ok() || collided) {
      absl::Status undo = RemoveRecord(user, &request.groups);
      if (!undo.ok()) {
        spdlog::error("could not roll back task user {}: {}", user.name,
                      undo.ToString());
      }
      if (!recheck.ok()) return recheck.status();
      spdlog::warn(
          "uid {} of task user {} collides with another user; "
          "trying another uid",
          uid, user.name);
      rejected.push_back(uid);
      continue;
    }

    absl::Status home = CreateHome(user);
    if (!home.ok()) {
      absl::Status undo_home = RemoveHome(user);
      absl::Status undo = RemoveRecord(user, &request.groups);
      if (!undo_home.ok() || !undo.ok()) {
        spdlog::error("could not roll back task user {}: {} {}", user.name,
                      undo_home.ToString(), undo.ToString());
      }
      return home;
    }
    last_uid_ = uid;
    return user;
  }
  return MakeError(ErrorCode::kInternalError,
                   "every uid tried for a task user collided with another "
                   "user",
                   {{"attempts", absl::StrCat(options_.max_create_attempts)}});
}

absl::Status CommandUserManager::CreateHome(const OsUser& user) {
  // mkdir (not mkdir -p) fails on an existing path, so a home is never
  // shared with whatever was there before.
  DROVER_RETURN_IF_ERROR(
      process::RunChecked(runner_, {"mkdir", "-m", "700", user.home}).status());
  return process::RunChecked(
             runner_,
             {"chown", absl::StrCat(user.uid, ":", user.gid), user.home})
      .status();
}

absl::Status CommandUserManager::RemoveHome(const OsUser& user) {
  return process::RunChecked(runner_, {"rm", "-rf", user.home}).status();
}

absl::StatusOr<int> CommandUserManager::CountLiveProcesses(uid_t uid) {
  DROVER_ASSIGN_OR_RETURN(
      process::CommandResult listing,
      process::RunChecked(runner_, {"ps", "-A", "-o", "ruid=,uid=,stat="}));
  int live = 0;
  for (absl::string_view line : absl::StrSplit(listing.out, '\n')) {
    std::vector<std::string> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    uint32_t ruid = 0, euid = 0;
    if (fields.size() < 3 || !absl::SimpleAtoi(fields[0], &ruid) ||
        !absl::SimpleAtoi(fields[1], &euid)) {
      continue;
    }
    if ((ruid == uid || euid == uid) && fields[2][0] != 'Z') ++live;
  }
  return live;
}

absl::Status CommandUserManager::KillAllProcesses(uid_t uid) {
  const std::string id = absl::StrCat(uid);
  for (int round = 0; round < options_.max_kill_rounds; ++round) {
    // -U matches the real uid (catches setuid programs the user started),
    // -u the effective uid. pkill exits 1 when nothing matched.
    bool found = false;
    for (const char* flag : {"-U", "-u"}) {
      std::vector<std::string> argv = {"pkill", "-KILL", flag, id};
      DROVER_ASSIGN_OR_RETURN(process::CommandResult result, runner_.Run(argv));
      if (result.exit_code == 0) {
        found = true;
      } else if (result.exit_code != 1) {
        return process::CommandFailedError(argv, result);
      }
    }
    if (!found) return absl::OkStatus();
    // pkill also matches zombies, which a killed process stays until its
    // parent (often the worker itself) reaps it; they run nothing, so only
    // live processes keep the loop going.
    DROVER_ASSIGN_OR_RETURN(int live, CountLiveProcesses(uid));
    if (live == 0) return absl::OkStatus();
    absl::SleepFor(options_.kill_pause);
  }
  return MakeError(
      ErrorCode::kInternalError,
      "processes of a task user survive repeated kills",
      {{"uid", id}, {"rounds", absl::StrCat(options_.max_kill_rounds)}});
}

absl::Status CommandUserManager::DeleteUser(const OsUser& user,
                                            const std::string& prefix) {
  DROVER_RETURN_IF_ERROR(ValidateNamePrefix(prefix, "prefix"));
  if (!StartsWith(user.name, prefix) || user.name.size() == prefix.size()) {
    return InputError(
        "user.name", user.name,
        absl::StrCat("only users named ", prefix, "... may be deleted"));
  }
  if (user.uid < kMinManagedUid) {
    return InputError("user.uid", absl::StrCat(user.uid),
                      absl::StrCat("users with a uid below ", kMinManagedUid,
                                   " are never deleted"));
  }
  if (user.home != HomeFor(user.name)) {
    return InputError(
        "user.home", user.home,
        absl::StrCat("a task user's home must be ", HomeFor(user.name)));
  }
  std::lock_guard<std::mutex> lock(mu_);

  DROVER_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListAllUsers());
  const Entry* current = nullptr;
  for (const Entry& entry : entries) {
    if (entry.name == user.name) current = &entry;
  }
  if (current == nullptr) {
    // Already gone; a home may remain when an earlier deletion was cut
    // short after the record but before the home (not our order, but an
    // administrator's).
    return RemoveHome(user);
  }
  if (current->uid != user.uid) {
    // Killing by a stale uid would hit whoever holds that uid now.
    return InputError("user.uid", absl::StrCat(user.uid),
                      absl::StrCat("user ", user.name, " has uid ",
                                   current->uid, " in the user directory"));
  }
  DROVER_RETURN_IF_ERROR(KillAllProcesses(user.uid));
  DROVER_RETURN_IF_ERROR(RemoveHome(user));
  return RemoveRecord(user, nullptr);
}

absl::StatusOr<std::vector<OsUser>> CommandUserManager::ListManagedUsers(
    const std::string& prefix) {
  DROVER_RETURN_IF_ERROR(ValidateNamePrefix(prefix));
  std::lock_guard<std::mutex> lock(mu_);
  DROVER_ASSIGN_OR_RETURN(std::vector<Entry> entries, ListAllUsers());
  std::vector<std::string> names;
  for (const Entry& entry : entries) {
    if (StartsWith(entry.name, prefix) && entry.name.size() > prefix.size()) {
      names.push_back(entry.name);
    }
  }
  if (names.empty()) return std::vector<OsUser>{};
  DROVER_ASSIGN_OR_RETURN(std::vector<OsUser> users, ReadUsers(names));
  std::sort(users.begin(), users.end(),
            [](const OsUser& a, const OsUser& b) { return a.name < b.name; });
  return users;
}

}  // namespace drover::engines::users
