#include "engines/users/managed_user_provider.h"

#include <grp.h>

#include <cerrno>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "spdlog/spdlog.h"

namespace drover::engines::users {
namespace {

absl::StatusOr<gid_t> GroupId(const std::string& name) {
  struct group entry;
  struct group* found = nullptr;
  std::vector<char> buffer(16384);
  int error;
  while ((error = ::getgrnam_r(name.c_str(), &entry, buffer.data(),
                               buffer.size(), &found)) == ERANGE) {
    buffer.resize(buffer.size() * 2);
  }
  if (error != 0 || found == nullptr) {
    return MakeError(ErrorCode::kInternalError,
                     absl::StrCat("group ", name, " has no id on this host"),
                     {{"group", name}});
  }
  return found->gr_gid;
}

OsUser ToOsUser(const native::TaskUser& user) {
  return OsUser{user.name, user.uid, user.gid, user.home.string()};
}

}  // namespace

absl::StatusOr<std::unique_ptr<ManagedUserProvider>>
ManagedUserProvider::Create(UserManager* manager, NewUser request) {
  if (manager == nullptr) {
    return InputError("user_manager", "", "a user manager is required");
  }
  DROVER_RETURN_IF_ERROR(ValidateNewUser(request));
  return std::unique_ptr<ManagedUserProvider>(
      new ManagedUserProvider(manager, std::move(request)));
}

absl::StatusOr<native::TaskUser> ManagedUserProvider::Acquire(
    const std::string& task_id, int run_id) {
  DROVER_ASSIGN_OR_RETURN(OsUser created, manager_->CreateUser(request_));
  native::TaskUser user;
  user.name = created.name;
  user.uid = created.uid;
  user.gid = created.gid;
  user.home = created.home;
  // As at a login: the primary group is among the supplementary ones.
  user.groups.push_back(created.gid);
  for (const std::string& group : request_.groups) {
    absl::StatusOr<gid_t> gid = GroupId(group);
    if (!gid.ok()) {
      if (absl::Status undo =
              manager_->DeleteUser(created, request_.name_prefix);
          !undo.ok()) {
        spdlog::error("could not delete task user {}: {}", created.name,
                      undo.ToString());
      }
      return gid.status();
    }
    user.groups.push_back(*gid);
  }
  spdlog::info("task {}/{} runs as {} (uid {})", task_id, run_id, user.name,
               user.uid);
  return user;
}

absl::Status ManagedUserProvider::Release(const native::TaskUser& user) {
  return manager_->DeleteUser(ToOsUser(user), request_.name_prefix);
}

absl::Status ManagedUserProvider::DeleteLeftoverUsers() {
  DROVER_ASSIGN_OR_RETURN(std::vector<OsUser> leftovers,
                          manager_->ListManagedUsers(request_.name_prefix));
  absl::Status first_failure;
  for (const OsUser& user : leftovers) {
    spdlog::warn("deleting task user {} (uid {}) left by an earlier worker",
                 user.name, user.uid);
    first_failure.Update(manager_->DeleteUser(user, request_.name_prefix));
  }
  return first_failure;
}

}  // namespace drover::engines::users
