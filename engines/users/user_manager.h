// UserManager: throwaway OS users for running one task each.
//
// The native engine (optional per-task user) and the macOS engine create a
// fresh user before a task starts and delete it, with every process it
// still runs and its home directory, when the task ends. Every managed user
// carries a recognisable name prefix, so that users left behind by a
// crashed worker are found and deleted at the next worker start.
//
// Two implementations, both driving the host only through a
// process::CommandRunner so their exact command sequences are testable
// anywhere: DsclUserManager (macOS, dscl) and UseraddUserManager (Linux,
// useradd/userdel). Creating and deleting users needs root.
#ifndef DROVER_ENGINES_USERS_USER_MANAGER_H_
#define DROVER_ENGINES_USERS_USER_MANAGER_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace drover::engines::users {

// An OS user as the user directory knows it.
struct OsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string home;

  friend bool operator==(const OsUser&, const OsUser&) = default;
};

// What a CreateUser call asks for.
struct NewUser {
  // The user's name is `name_prefix` followed by its uid, e.g.
  // "drover-task-20001". Lower-case letters, digits, '_' and '-', starting
  // with a letter or '_', at most 20 characters, so the name stays within
  // the 32 characters Linux allows.
  std::string name_prefix = "drover-task-";
  // The uid is the first one in [uid_floor, uid_ceiling] that no existing
  // user holds (nor a user with the derived name), searching from just after
  // the uid this manager handed out last and wrapping around, so that a
  // just-deleted uid is not reused at once. The floor (at least 1000) keeps
  // task users clear of people and services.
  uint32_t uid_floor = 20000;
  uint32_t uid_ceiling = 60000;
  // Supplementary groups the user joins (they must exist).
  std::vector<std::string> groups;
};

class UserManager {
 public:
  virtual ~UserManager() = default;

  // Creates a user named after `request.name_prefix` with a fresh uid, the
  // manager's primary group, a login shell, and a new empty home directory
  // (mode 0700, owned by the user); adds it to `request.groups`. After
  // creation the uid is checked again against the user directory; when
  // another user took it meanwhile (a concurrent worker), the new user is
  // removed and the next uid tried. A failure midway removes everything
  // created so far. Thread-safe: calls are serialised.
  // Errors: InputError (fields "name_prefix", "uid_floor", "uid_ceiling",
  // "groups") for a bad request, before anything changes; ResourceExpired
  // when no uid in the range is free; InternalError when a command fails
  // (details name the command, its exit status and stderr).
  virtual absl::StatusOr<OsUser> CreateUser(const NewUser& request) = 0;

  // Kills every process the user runs (repeating until none is left alive;
  // zombies waiting for their parent to reap them do not count),
  // removes its home directory and its group memberships, then the user
  // itself. The user record goes last so that a failure or crash midway
  // leaves the user visible to ListManagedUsers for a later retry. A user
  // that no longer exists is not an error (deletion is idempotent).
  // Thread-safe: calls are serialised.
  // Errors: InputError (field "user.name", "user.uid" or "user.home") when
  // the user is not one this manager may delete (name without `prefix`, uid
  // below 1000, home outside the manager's home root); InternalError when a
  // command fails or processes survive repeated kills.
  virtual absl::Status DeleteUser(const OsUser& user,
                                  const std::string& prefix) = 0;

  // Users whose name starts with `prefix` (crash cleanup at worker start).
  // Thread-safe. Errors: InputError (field "name_prefix") for an empty or
  // malformed prefix; InternalError when the user directory cannot be read.
  virtual absl::StatusOr<std::vector<OsUser>> ListManagedUsers(
      const std::string& prefix) = 0;
};

// Checks a name prefix against the rules in NewUser. Errors: InputError
// naming `field`.
absl::Status ValidateNamePrefix(const std::string& prefix,
                                const std::string& field = "name_prefix");

// Checks a whole request. Errors: InputError naming the field.
absl::Status ValidateNewUser(const NewUser& request);

}  // namespace drover::engines::users

#endif  // DROVER_ENGINES_USERS_USER_MANAGER_H_
