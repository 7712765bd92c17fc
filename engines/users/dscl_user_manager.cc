#include "engines/users/dscl_user_manager.h"

#include <cstdlib>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "spdlog/spdlog.h"

namespace drover::engines::users {
namespace {

std::string UserPath(const std::string& name) {
  return absl::StrCat("/Users/", name);
}

std::string GroupPath(const std::string& group) {
  return absl::StrCat("/Groups/", group);
}

// "name   value..." lines of `dscl . -list <path> <key>`; names never hold
// whitespace in the local node.
std::vector<std::vector<std::string>> SplitListing(const std::string& out) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    std::vector<std::string> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (!fields.empty()) rows.push_back(std::move(fields));
  }
  return rows;
}

// `dscl . -read` prints "Key: value", or "Key:" followed by indented value
// lines when the value is long or holds spaces.
std::map<std::string, std::string> ParseRead(const std::string& out) {
  std::map<std::string, std::string> attributes;
  std::string pending_key;
  for (absl::string_view raw : absl::StrSplit(out, '\n')) {
    std::string line(raw);
    if (line.empty()) continue;
    if (line[0] == ' ' && !pending_key.empty()) {
      attributes[pending_key] = std::string(absl::StripAsciiWhitespace(line));
      pending_key.clear();
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (value.empty()) {
      pending_key = key;
    } else {
      attributes[key] = value;
      pending_key.clear();
    }
  }
  return attributes;
}

}  // namespace

CommandUserManagerOptions DsclUserManager::DefaultOptions() {
  CommandUserManagerOptions options;
  options.home_root = "/Users";
  options.primary_gid = 20;  // staff
  options.shell = "/bin/bash";
  return options;
}

DsclUserManager::DsclUserManager(process::CommandRunner& runner,
                                 CommandUserManagerOptions options)
    : CommandUserManager(runner, std::move(options)) {}

absl::StatusOr<std::vector<CommandUserManager::Entry>>
DsclUserManager::ListAllUsers() {
  DROVER_ASSIGN_OR_RETURN(
      process::CommandResult listing,
      process::RunChecked(runner(),
                          {"dscl", ".", "-list", "/Users", "UniqueID"}));
  std::vector<Entry> entries;
  for (const auto& row : SplitListing(listing.out)) {
    int64_t uid = 0;
    // Negative ids (nobody is -2) are far below any managed range.
    if (row.size() < 2 || !absl::SimpleAtoi(row[1], &uid) || uid < 0) continue;
    entries.push_back(Entry{row[0], static_cast<uid_t>(uid)});
  }
  return entries;
}

absl::StatusOr<std::vector<OsUser>> DsclUserManager::ReadUsers(
    const std::vector<std::string>& names) {
  std::vector<OsUser> users;
  for (const std::string& name : names) {
    DROVER_ASSIGN_OR_RETURN(
        process::CommandResult read,
        process::RunChecked(runner(),
                            {"dscl", ".", "-read", UserPath(name), "UniqueID",
                             "PrimaryGroupID", "NFSHomeDirectory"}));
    std::map<std::string, std::string> attributes = ParseRead(read.out);
    OsUser user;
    user.name = name;
    int64_t uid = -1, gid = -1;
    if (!absl::SimpleAtoi(attributes["UniqueID"], &uid) || uid < 0 ||
        !absl::SimpleAtoi(attributes["PrimaryGroupID"], &gid) || gid < 0) {
      return MakeError(ErrorCode::kInternalError,
                       "dscl shows a task user without numeric ids",
                       {{"user", name}, {"output", read.out}});
    }
    user.uid = static_cast<uid_t>(uid);
    user.gid = static_cast<gid_t>(gid);
    user.home = attributes["NFSHomeDirectory"];
    users.push_back(std::move(user));
  }
  return users;
}

absl::Status DsclUserManager::CreateRecord(
    const OsUser& user, const std::vector<std::string>& groups) {
  const std::string path = UserPath(user.name);
  DROVER_RETURN_IF_ERROR(
      process::RunChecked(runner(), {"dscl", ".", "-create", path}).status());

  // Everything after the bare record is undone on failure, newest first.
  std::vector<std::string> joined;
  auto rollback = [&](absl::Status failure) {
    absl::Status undo = RemoveRecord(user, &joined);
    if (!undo.ok()) {
      spdlog::error("could not roll back dscl user {}: {}", user.name,
                    undo.ToString());
    }
    return failure;
  };

  const std::vector<std::pair<std::string, std::string>> attributes = {
      {"UniqueID", absl::StrCat(user.uid)},
      {"PrimaryGroupID", absl::StrCat(user.gid)},
      {"NFSHomeDirectory", user.home},
      {"UserShell", options().shell},
      {"RealName", "Drover task user"},
      // Keeps the throwaway user off the login window.
      {"IsHidden", "1"},
      // No password can match "*": nobody logs in as a task user.
      {"Password", "*"},
  };
  for (const auto& [key, value] : attributes) {
    absl::Status set = process::RunChecked(
                           runner(), {"dscl", ".", "-create", path, key, value})
                           .status();
    if (!set.ok()) return rollback(set);
  }
  for (const std::string& group : groups) {
    absl::Status append =
        process::RunChecked(runner(), {"dscl", ".", "-append", GroupPath(group),
                                       "GroupMembership", user.name})
            .status();
    if (!append.ok()) return rollback(append);
    joined.push_back(group);
  }
  return absl::OkStatus();
}

absl::Status DsclUserManager::RemoveRecord(
    const OsUser& user, const std::vector<std::string>* known_groups) {
  std::vector<std::string> groups;
  if (known_groups != nullptr) {
    groups.assign(known_groups->rbegin(), known_groups->rend());
  } else {
    DROVER_ASSIGN_OR_RETURN(
        process::CommandResult listing,
        process::RunChecked(
            runner(), {"dscl", ".", "-list", "/Groups", "GroupMembership"}));
    for (const auto& row : SplitListing(listing.out)) {
      for (size_t i = 1; i < row.size(); ++i) {
        if (row[i] == user.name) {
          groups.push_back(row[0]);
          break;
        }
      }
    }
  }
  // Every step is attempted even after a failure, so that as little as
  // possible stays behind; the first failure is reported.
  absl::Status first_failure;
  for (const std::string& group : groups) {
    first_failure.Update(
        process::RunChecked(runner(), {"dscl", ".", "-delete", GroupPath(group),
                                       "GroupMembership", user.name})
            .status());
  }
  first_failure.Update(process::RunChecked(runner(), {"dscl", ".", "-delete",
                                                      UserPath(user.name)})
                           .status());
  return first_failure;
}

}  // namespace drover::engines::users
