// TaskCredentialsIssuer: how ClaimWork and ReclaimTask obtain the task
// credentials they hand out with each claimed run (temporary credentials
// carrying the task's scopes plus the right to reclaim, resolve and upload
// artifacts for that run, expiring with the claim).
//
// The auth layer (queue/auth/task_credentials_issuer.h) implements it;
// without an issuer the credentials fields stay empty.
#ifndef DROVER_QUEUE_QUEUE_SERVICE_TASK_CREDENTIALS_H_
#define DROVER_QUEUE_QUEUE_SERVICE_TASK_CREDENTIALS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "drover/v1/queue.pb.h"

namespace drover::queue::queue_service {

// The claimed run credentials are made for.
struct TaskCredentialsRequest {
  std::string task_id;
  int run_id = 0;
  // The task's own scopes (task.scopes).
  std::vector<std::string> task_scopes;
  std::string worker_group;
  std::string worker_id;
  // When the claim ends; the credentials expire then too.
  absl::Time taken_until;
};

class TaskCredentialsIssuer {
 public:
  virtual ~TaskCredentialsIssuer() = default;

  // Credentials for one claimed run. Must not block on the network (it
  // runs while a ClaimWork answer is assembled). Thread-safe.
  // Errors: InputError when the credentials cannot be made (e.g. the
  // task's scopes make a certificate larger than allowed).
  virtual absl::StatusOr<v1::TaskCredentials> Issue(
      const TaskCredentialsRequest& request) const = 0;
};

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_TASK_CREDENTIALS_H_
