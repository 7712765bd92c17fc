// QueueApi: the calls the worker daemon makes to the queue, behind one
// interface so the task loop can be tested against a fake queue.
//
// The production implementation (grpc_queue_api.h) wraps the client
// library over gRPC. Implementations are thread-safe: task runs report from
// their own threads while the main loop claims.
//
// Claiming uses the worker's own credentials. Reclaims and resolutions use
// the run's task credentials (scoped to that run, handed out with the claim
// and renewed by every reclaim), so a worker client needs no more than the
// claim-work and worker-id scopes; empty task credentials (a queue without
// auth) mean the worker's own.
#ifndef DROVER_WORKER_QUEUE_API_H_
#define DROVER_WORKER_QUEUE_API_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "drover/v1/queue.pb.h"

namespace drover::worker {

struct WorkerIdentity {
  std::string task_queue_id;
  std::string worker_group;
  std::string worker_id;
};

class QueueApi {
 public:
  virtual ~QueueApi() = default;

  // Long-polls for up to `max_tasks` tasks. Returns empty when the poll ends
  // without work or CancelClaims() was called. Errors: Unavailable when the
  // queue cannot be reached, Unauthenticated when credentials are refused.
  virtual absl::StatusOr<std::vector<v1::ClaimedTask>> ClaimWork(
      const WorkerIdentity& worker, int max_tasks) = 0;

  // Ends any ClaimWork in flight promptly (used on shutdown).
  virtual void CancelClaims() = 0;

  // Extends the claim. Errors: RequestConflict (FAILED_PRECONDITION) when the
  // run is no longer this worker's — the task must be aborted.
  // The response carries the renewed task credentials. Also
  // AuthenticationFailed (UNAUTHENTICATED) for expired credentials.
  virtual absl::StatusOr<v1::ReclaimTaskResponse> ReclaimTask(
      const WorkerIdentity& worker, const std::string& task_id, int run_id,
      const v1::TaskCredentials& credentials) = 0;

  // Resolutions. Repeating one is harmless (the queue answers the same
  // status); RequestConflict means the run was resolved otherwise.
  virtual absl::Status ReportCompleted(
      const std::string& task_id, int run_id,
      const v1::TaskCredentials& credentials) = 0;
  virtual absl::Status ReportFailed(const std::string& task_id, int run_id,
                                    const v1::TaskCredentials& credentials) = 0;
  virtual absl::Status ReportException(
      const std::string& task_id, int run_id, const std::string& reason,
      const v1::TaskCredentials& credentials) = 0;
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_QUEUE_API_H_
