// TaskUserProvider: the seam through which the native engine runs a task as
// its own OS user.
//
// The engine asks the provider for a user when a sandbox starts, runs every
// command of the task with that uid/gid (the task directory is handed over
// to it), and gives the user back once every process of the task has been
// killed. Creating and deleting users is the provider's business (see
// engines/users for the user managers); the engine never does it. Without
// a provider, tasks run as the worker's user.
#ifndef DROVER_ENGINES_NATIVE_TASK_USER_H_
#define DROVER_ENGINES_NATIVE_TASK_USER_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace drover::engines::native {

struct TaskUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  // Supplementary groups.
  std::vector<gid_t> groups;
  // Becomes HOME unless the task's environment sets it.
  std::filesystem::path home;
};

class TaskUserProvider {
 public:
  virtual ~TaskUserProvider() = default;

  // A user for one run of a task. Thread-safe. Errors: any; the sandbox's
  // Start() fails with them (ResourceExpired when no user is available).
  virtual absl::StatusOr<TaskUser> Acquire(const std::string& task_id,
                                           int run_id) = 0;

  // Called exactly once per acquired user, after all of the task's
  // processes are gone. Thread-safe. Errors are logged by the engine.
  virtual absl::Status Release(const TaskUser& user) = 0;
};

// Runs every task as one existing account (e.g. an unprivileged
// "drover-task" user), so a worker running as root keeps tasks away from
// root. Nothing is created or deleted.
class ExistingUserProvider final : public TaskUserProvider {
 public:
  // Looks `name` up in the user database. Errors: InputError (field
  // `field`) when there is no such user or it is root.
  static absl::StatusOr<std::unique_ptr<ExistingUserProvider>> Lookup(
      const std::string& name, const std::string& field = "run_as");

  absl::StatusOr<TaskUser> Acquire(const std::string& task_id,
                                   int run_id) override {
    return user_;
  }
  absl::Status Release(const TaskUser& user) override {
    return absl::OkStatus();
  }
  const TaskUser& user() const { return user_; }

 private:
  explicit ExistingUserProvider(TaskUser user) : user_(std::move(user)) {}
  const TaskUser user_;
};

}  // namespace drover::engines::native

#endif  // DROVER_ENGINES_NATIVE_TASK_USER_H_
