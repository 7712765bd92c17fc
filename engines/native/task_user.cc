#include "engines/native/task_user.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <vector>

#include "common/status.h"

namespace drover::engines::native {

absl::StatusOr<std::unique_ptr<ExistingUserProvider>>
ExistingUserProvider::Lookup(const std::string& name,
                             const std::string& field) {
  struct passwd entry;
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) !=
          0 ||
      found == nullptr) {
    return InputError(field, name, "no such user on this host");
  }
  if (found->pw_uid == 0) {
    return InputError(field, name, "tasks cannot run as root this way");
  }
  TaskUser user;
  user.name = found->pw_name;
  user.uid = found->pw_uid;
  user.gid = found->pw_gid;
  user.home = found->pw_dir;
  // The account's supplementary groups, as a login would get them.
  int count = 64;
  std::vector<gid_t> groups(count);
  if (getgrouplist(user.name.c_str(), user.gid, groups.data(), &count) < 0) {
    groups.resize(count);
    getgrouplist(user.name.c_str(), user.gid, groups.data(), &count);
  }
  groups.resize(count);
  user.groups = std::move(groups);
  return std::unique_ptr<ExistingUserProvider>(
      new ExistingUserProvider(std::move(user)));
}

}  // namespace drover::engines::native
