// ManagedUserProvider: hands the native engine (and the macOS engine, which
// runs on the native engine's process handling) a freshly created OS user
// per task run, and deletes it when the run is over.
//
// It adapts a UserManager to native::TaskUserProvider: Acquire creates a
// user from the configured NewUser request and resolves its groups to ids;
// Release kills the user's processes and deletes it with its home.
#ifndef DROVER_ENGINES_USERS_MANAGED_USER_PROVIDER_H_
#define DROVER_ENGINES_USERS_MANAGED_USER_PROVIDER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engines/native/task_user.h"
#include "engines/users/user_manager.h"

namespace drover::engines::users {

class ManagedUserProvider final : public native::TaskUserProvider {
 public:
  // `manager` is not owned and must outlive the provider. Errors:
  // InputError naming the field of `request` (see ValidateNewUser).
  static absl::StatusOr<std::unique_ptr<ManagedUserProvider>> Create(
      UserManager* manager, NewUser request);

  // Creates a user for one run. Thread-safe. Errors: those of
  // UserManager::CreateUser; InternalError when a configured group has no
  // id on this host (the user is deleted again).
  absl::StatusOr<native::TaskUser> Acquire(const std::string& task_id,
                                           int run_id) override;

  // Kills the user's processes and deletes it with its home. Thread-safe.
  // Errors: those of UserManager::DeleteUser.
  absl::Status Release(const native::TaskUser& user) override;

  // Deletes every user carrying the configured prefix (left behind by a
  // crashed worker). Call at worker start, before any task runs. Errors:
  // the first failure; the other users are still attempted.
  absl::Status DeleteLeftoverUsers();

  const NewUser& request() const { return request_; }

 private:
  ManagedUserProvider(UserManager* manager, NewUser request)
      : manager_(manager), request_(std::move(request)) {}

  UserManager* const manager_;
  const NewUser request_;
};

}  // namespace drover::engines::users

#endif  // DROVER_ENGINES_USERS_MANAGED_USER_PROVIDER_H_
