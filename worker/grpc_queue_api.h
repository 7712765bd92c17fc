// GrpcQueueApi: the worker's QueueApi over gRPC, using the client library.
//
// Claims long-poll with a context that CancelClaims() can cancel, so a
// shutdown does not wait for the poll to end. With several queue addresses
// the API uses one at a time and moves to the next when a call finds the
// current one unreachable. After a failure the channel's own reconnect
// backoff is reset, so the worker's backoff (with jitter) alone decides
// when the next attempt happens: a restarted queue is found within one
// worker retry, not after gRPC's reconnect backoff (up to two minutes).
// The connections can be swapped when the worker re-registers and receives
// new credentials. Thread-safe.
#ifndef DROVER_WORKER_GRPC_QUEUE_API_H_
#define DROVER_WORKER_GRPC_QUEUE_API_H_

#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "absl/time/time.h"
#include "client/connection.h"
#include "client/queue_client.h"
#include "grpcpp/client_context.h"
#include "worker/queue_api.h"

namespace drover::worker {

class GrpcQueueApi final : public QueueApi {
 public:
  // `claim_timeout` bounds one ClaimWork call; it must exceed the server's
  // long-poll time (20 s by default).
  explicit GrpcQueueApi(std::shared_ptr<const client::Connection> connection,
                        absl::Duration claim_timeout = absl::Seconds(40));
  // Several queue addresses (at least one), tried in order.
  explicit GrpcQueueApi(
      std::vector<std::shared_ptr<const client::Connection>> connections,
      absl::Duration claim_timeout = absl::Seconds(40));

  // Uses `connections` (e.g. with fresh credentials) for every later call.
  void SetConnections(
      std::vector<std::shared_ptr<const client::Connection>> connections);

  absl::StatusOr<std::vector<v1::ClaimedTask>> ClaimWork(
      const WorkerIdentity& worker, int max_tasks) override;
  void CancelClaims() override;
  absl::StatusOr<v1::ReclaimTaskResponse> ReclaimTask(
      const WorkerIdentity& worker, const std::string& task_id, int run_id,
      const v1::TaskCredentials& credentials) override;
  absl::Status ReportCompleted(const std::string& task_id, int run_id,
                               const v1::TaskCredentials& credentials) override;
  absl::Status ReportFailed(const std::string& task_id, int run_id,
                            const v1::TaskCredentials& credentials) override;
  absl::Status ReportException(const std::string& task_id, int run_id,
                               const std::string& reason,
                               const v1::TaskCredentials& credentials) override;

 private:
  struct Endpoint {
    std::shared_ptr<const client::Connection> connection;
    std::shared_ptr<client::QueueClient> client;
  };
  // The address in use, and its index (to report a failure against it).
  Endpoint Current(size_t* index) const;
  // A client on the current address calling with the run's task
  // credentials (the worker's own when they are empty).
  std::shared_ptr<client::QueueClient> RunClient(
      const v1::TaskCredentials& credentials, size_t* index) const;
  // Notes the outcome of a call made on endpoint `index`: on UNAVAILABLE
  // resets that channel's reconnect backoff and moves to the next address.
  void AfterCall(size_t index, const absl::Status& status);

  const absl::Duration claim_timeout_;
  mutable std::mutex mu_;
  std::vector<Endpoint> endpoints_;                  // guarded by mu_
  size_t current_ = 0;                               // guarded by mu_
  std::set<grpc::ClientContext*> claims_in_flight_;  // guarded by mu_
  bool canceled_ = false;                            // guarded by mu_
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_GRPC_QUEUE_API_H_
