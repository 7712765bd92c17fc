// CommandUserManager: the part of user management that is the same on every
// OS (uid choice and collision re-check, rollback, kill loop, home
// directory), written once over a process::CommandRunner. The OS-specific
// directory operations (dscl on macOS, useradd/userdel on Linux) are the
// subclass's hooks.
#ifndef DROVER_ENGINES_USERS_COMMAND_USER_MANAGER_H_
#define DROVER_ENGINES_USERS_COMMAND_USER_MANAGER_H_

#include <sys/types.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/process/command_runner.h"
#include "engines/users/user_manager.h"

namespace drover::engines::users {

struct CommandUserManagerOptions {
  // Homes are created as <home_root>/<name>; only such homes are removed.
  std::string home_root;
  // Primary group of every task user.
  gid_t primary_gid = 0;
  // Login shell of task users.
  std::string shell = "/bin/bash";
  // DeleteUser kills the user's processes in rounds until a round finds
  // none; after this many rounds it gives up with InternalError.
  int max_kill_rounds = 100;
  // Pause between kill rounds (lets the kernel reap what was killed).
  absl::Duration kill_pause = absl::Milliseconds(20);
  // CreateUser tries at most this many uids that turn out to collide.
  int max_create_attempts = 10;
};

class CommandUserManager : public UserManager {
 public:
  absl::StatusOr<OsUser> CreateUser(const NewUser& request) final;
  absl::Status DeleteUser(const OsUser& user, const std::string& prefix) final;
  absl::StatusOr<std::vector<OsUser>> ListManagedUsers(
      const std::string& prefix) final;

 protected:
  // A user directory entry as the uid listing shows it.
  struct Entry {
    std::string name;
    uid_t uid = 0;
  };

  // `runner` must outlive the manager.
  CommandUserManager(process::CommandRunner& runner,
                     CommandUserManagerOptions options);

  process::CommandRunner& runner() { return runner_; }
  const CommandUserManagerOptions& options() const { return options_; }

  // Every user in the directory with its uid.
  virtual absl::StatusOr<std::vector<Entry>> ListAllUsers() = 0;

  // Full records (gid, home) of the users named in `names`.
  virtual absl::StatusOr<std::vector<OsUser>> ReadUsers(
      const std::vector<std::string>& names) = 0;

  // Creates the directory record of `user` with the configured shell and
  // adds it to `groups`. On failure it removes whatever it created itself
  // before returning. Returns RequestConflict when the directory refuses
  // the uid or name as taken (the caller then tries another uid).
  virtual absl::Status CreateRecord(const OsUser& user,
                                    const std::vector<std::string>& groups) = 0;

  // Removes the record of `user` and its group memberships. `known_groups`
  // is what CreateRecord was given when rolling back a creation, nullptr
  // when the memberships must be looked up. A record that does not exist
  // is not an error.
  virtual absl::Status RemoveRecord(
      const OsUser& user, const std::vector<std::string>* known_groups) = 0;

 private:
  absl::StatusOr<uid_t> PickUid(const NewUser& request,
                                const std::vector<Entry>& entries,
                                const std::vector<uid_t>& rejected) const;
  absl::StatusOr<int> CountLiveProcesses(uid_t uid);
  absl::Status KillAllProcesses(uid_t uid);
  absl::Status CreateHome(const OsUser& user);
  absl::Status RemoveHome(const OsUser& user);
  std::string HomeFor(const std::string& name) const;

  process::CommandRunner& runner_;
  const CommandUserManagerOptions options_;

  // Serialises changes to the user directory: concurrent dscl/useradd runs
  // race on uid choice and lock files.
  std::mutex mu_;
  std::optional<uid_t> last_uid_;
};

}  // namespace drover::engines::users

#endif  // DROVER_ENGINES_USERS_COMMAND_USER_MANAGER_H_
