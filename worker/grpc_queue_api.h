// GrpcQueueApi: the worker's QueueApi over gRPC, using the client library.
//
// Claims long-poll with a context that CancelClaims() can cancel, so a
// shutdown does not wait for the poll to end. The connection can be
// swapped when the worker re-registers and receives new credentials.
// Thread-safe.
#ifndef DROVER_WORKER_GRPC_QUEUE_API_H_
#define DROVER_WORKER_GRPC_QUEUE_API_H_

#include <memory>
#include <mutex>
#include <set>

#include "absl/time/time.h"
#include "client/connection.h"
#include "client/queue_client.h"
#include "grpcpp/client_context.h"
#include "worker/queue_api.h"

namespace drover::worker {

class GrpcQueueApi final : public QueueApi {
 public:
  // `claim_timeout` bounds one ClaimWork call; it must exceed the server's
  // long-poll time.
  explicit GrpcQueueApi(std::shared_ptr<const client::Connection> connection,
                        absl::Duration claim_timeout = absl::Seconds(40));

  // Uses `connection` (e.g. with fresh credentials) for every later call.
  void SetConnection(std::shared_ptr<const client::Connection> connection);

  absl::StatusOr<std::vector<v1::ClaimedTask>> ClaimWork(
      const WorkerIdentity& worker, int max_tasks) override;
  void CancelClaims() override;
  absl::StatusOr<v1::ReclaimTaskResponse> ReclaimTask(
      const WorkerIdentity& worker, const std::string& task_id,
      int run_id) override;
  absl::Status ReportCompleted(const std::string& task_id,
                               int run_id) override;
  absl::Status ReportFailed(const std::string& task_id, int run_id) override;
  absl::Status ReportException(const std::string& task_id, int run_id,
                               const std::string& reason) override;

 private:
  std::shared_ptr<client::QueueClient> Client() const;

  const absl::Duration claim_timeout_;
  mutable std::mutex mu_;
  std::shared_ptr<const client::Connection> connection_;  // guarded by mu_
  std::shared_ptr<client::QueueClient> client_;           // guarded by mu_
  std::set<grpc::ClientContext*> claims_in_flight_;       // guarded by mu_
  bool canceled_ = false;                                 // guarded by mu_
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_GRPC_QUEUE_API_H_
