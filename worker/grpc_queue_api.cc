#include "worker/grpc_queue_api.h"

#include "absl/time/clock.h"
#include "common/rpc/grpc_status.h"
#include "drover/v1/queue.grpc.pb.h"

namespace drover::worker {

GrpcQueueApi::GrpcQueueApi(std::shared_ptr<const client::Connection> connection,
                           absl::Duration claim_timeout)
    : claim_timeout_(claim_timeout) {
  SetConnection(std::move(connection));
}

void GrpcQueueApi::SetConnection(
    std::shared_ptr<const client::Connection> connection) {
  auto client = std::make_shared<client::QueueClient>(connection);
  std::lock_guard<std::mutex> lock(mu_);
  connection_ = std::move(connection);
  client_ = std::move(client);
}

std::shared_ptr<client::QueueClient> GrpcQueueApi::Client() const {
  std::lock_guard<std::mutex> lock(mu_);
  return client_;
}

absl::StatusOr<std::vector<v1::ClaimedTask>> GrpcQueueApi::ClaimWork(
    const WorkerIdentity& worker, int max_tasks) {
  std::shared_ptr<const client::Connection> connection;
  grpc::ClientContext context;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (canceled_) return std::vector<v1::ClaimedTask>{};
    connection = connection_;
    claims_in_flight_.insert(&context);
  }
  connection->PrepareContext(&context, absl::Now() + claim_timeout_);
  v1::ClaimWorkRequest request;
  request.set_task_queue_id(worker.task_queue_id);
  request.set_worker_group(worker.worker_group);
  request.set_worker_id(worker.worker_id);
  request.set_max_tasks(max_tasks);
  v1::ClaimWorkResponse response;
  // ClaimWork is not retried here: the worker loop owns the backoff, and a
  // blind retry could strand claims whose answer was lost.
  grpc::Status status = v1::Queue::NewStub(connection->channel())
                            ->ClaimWork(&context, request, &response);
  bool canceled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    claims_in_flight_.erase(&context);
    canceled = canceled_;
  }
  if (!status.ok()) {
    if (canceled && status.error_code() == grpc::StatusCode::CANCELLED) {
      return std::vector<v1::ClaimedTask>{};
    }
    return rpc::FromGrpcStatus(status);
  }
  return std::vector<v1::ClaimedTask>(response.tasks().begin(),
                                      response.tasks().end());
}

void GrpcQueueApi::CancelClaims() {
  std::lock_guard<std::mutex> lock(mu_);
  canceled_ = true;
  for (grpc::ClientContext* context : claims_in_flight_) context->TryCancel();
}

absl::StatusOr<v1::ReclaimTaskResponse> GrpcQueueApi::ReclaimTask(
    const WorkerIdentity& worker, const std::string& task_id, int run_id) {
  v1::RunRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  request.set_worker_group(worker.worker_group);
  request.set_worker_id(worker.worker_id);
  return Client()->ReclaimTask(request);
}

absl::Status GrpcQueueApi::ReportCompleted(const std::string& task_id,
                                           int run_id) {
  v1::RunRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  return Client()->ReportCompleted(request).status();
}

absl::Status GrpcQueueApi::ReportFailed(const std::string& task_id,
                                        int run_id) {
  v1::RunRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  return Client()->ReportFailed(request).status();
}

absl::Status GrpcQueueApi::ReportException(const std::string& task_id,
                                           int run_id,
                                           const std::string& reason) {
  v1::ReportExceptionRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  request.set_reason(reason);
  return Client()->ReportException(request).status();
}

}  // namespace drover::worker
