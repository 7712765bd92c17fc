// DsclUserManager: per-task users on macOS through dscl (the local
// directory node "."), as taskcluster-worker's OS X engine did.
//
// Create: dscl . -create /Users/<name> with UniqueID, PrimaryGroupID,
// NFSHomeDirectory, UserShell, RealName, IsHidden and a disabled password,
// then dscl . -append /Groups/<g> GroupMembership <name> per group; the uid
// is re-checked with dscl . -list /Users UniqueID because dscl accepts
// duplicate uids. Delete: processes killed (pkill), home removed,
// memberships removed (dscl . -delete /Groups/<g> GroupMembership <name>),
// then dscl . -delete /Users/<name>. Needs root.
#ifndef DROVER_ENGINES_USERS_DSCL_USER_MANAGER_H_
#define DROVER_ENGINES_USERS_DSCL_USER_MANAGER_H_

#include <string>
#include <vector>

#include "common/process/command_runner.h"
#include "engines/users/command_user_manager.h"

namespace drover::engines::users {

class DsclUserManager final : public CommandUserManager {
 public:
  // Defaults for macOS: homes under /Users, primary group staff (20).
  static CommandUserManagerOptions DefaultOptions();

  // `runner` must outlive the manager.
  explicit DsclUserManager(
      process::CommandRunner& runner,
      CommandUserManagerOptions options = DefaultOptions());

 protected:
  absl::StatusOr<std::vector<Entry>> ListAllUsers() override;
  absl::StatusOr<std::vector<OsUser>> ReadUsers(
      const std::vector<std::string>& names) override;
  absl::Status CreateRecord(const OsUser& user,
                            const std::vector<std::string>& groups) override;
  absl::Status RemoveRecord(
      const OsUser& user,
      const std::vector<std::string>* known_groups) override;
};

}  // namespace drover::engines::users

#endif  // DROVER_ENGINES_USERS_DSCL_USER_MANAGER_H_
