// UseraddUserManager: per-task users on Linux through the shadow tools
// (getent passwd, useradd, userdel), with the same semantics as the macOS
// manager. No groups are created: every task user gets the configured
// primary group (nogroup by default) and joins existing supplementary
// groups via useradd --groups; userdel drops the memberships. useradd
// refuses a taken uid or name (exit 4 / 9), which counts as a collision and
// another uid is tried. Needs root.
#ifndef DROVER_ENGINES_USERS_USERADD_USER_MANAGER_H_
#define DROVER_ENGINES_USERS_USERADD_USER_MANAGER_H_

#include <string>
#include <vector>

#include "common/process/command_runner.h"
#include "engines/users/command_user_manager.h"

namespace drover::engines::users {

class UseraddUserManager final : public CommandUserManager {
 public:
  // Defaults for Linux: homes under /home, primary group nogroup (65534).
  static CommandUserManagerOptions DefaultOptions();

  // `runner` must outlive the manager.
  explicit UseraddUserManager(
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

 private:
  absl::StatusOr<std::vector<OsUser>> ReadPasswd();
};

}  // namespace drover::engines::users

#endif  // DROVER_ENGINES_USERS_USERADD_USER_MANAGER_H_
