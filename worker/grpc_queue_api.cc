#include "worker/grpc_queue_api.h"

#include "absl/time/clock.h"
#include "common/rpc/grpc_status.h"
#include "drover/v1/queue.grpc.pb.h"
#include "grpcpp/channel.h"

namespace drover::worker {

GrpcQueueApi::GrpcQueueApi(std::shared_ptr<const client::Connection> connection,
                           absl::Duration claim_timeout)
    : GrpcQueueApi(
          std::vector<std::shared_ptr<const client::Connection>>{
              std::move(connection)},
          claim_timeout) {}

GrpcQueueApi::GrpcQueueApi(
    std::vector<std::shared_ptr<const client::Connection>> connections,
    absl::Duration claim_timeout)
    : claim_timeout_(claim_timeout) {
  SetConnections(std::move(connections));
}

void GrpcQueueApi::SetConnections(
    std::vector<std::shared_ptr<const client::Connection>> connections) {
  std::vector<Endpoint> endpoints;
  for (auto& connection : connections) {
    auto client = std::make_shared<client::QueueClient>(connection);
    endpoints.push_back(Endpoint{std::move(connection), std::move(client)});
  }
  std::lock_guard<std::mutex> lock(mu_);
  endpoints_ = std::move(endpoints);
  current_ = 0;
}

GrpcQueueApi::Endpoint GrpcQueueApi::Current(size_t* index) const {
  std::lock_guard<std::mutex> lock(mu_);
  *index = current_;
  return endpoints_.at(current_);
}

void GrpcQueueApi::AfterCall(size_t index, const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= endpoints_.size()) return;
  grpc::experimental::ChannelResetConnectionBackoff(
      endpoints_[index].connection->channel().get());
  // Another thread may have moved on already; only the first failure on an
  // address advances.
  if (index == current_ && endpoints_.size() > 1) {
    current_ = (current_ + 1) % endpoints_.size();
  }
}

absl::StatusOr<std::vector<v1::ClaimedTask>> GrpcQueueApi::ClaimWork(
    const WorkerIdentity& worker, int max_tasks) {
  grpc::ClientContext context;
  size_t index;
  Endpoint endpoint;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (canceled_) return std::vector<v1::ClaimedTask>{};
    index = current_;
    endpoint = endpoints_.at(current_);
    claims_in_flight_.insert(&context);
  }
  endpoint.connection->PrepareContext(&context, absl::Now() + claim_timeout_);
  v1::ClaimWorkRequest request;
  request.set_task_queue_id(worker.task_queue_id);
  request.set_worker_group(worker.worker_group);
  request.set_worker_id(worker.worker_id);
  request.set_max_tasks(max_tasks);
  v1::ClaimWorkResponse response;
  // ClaimWork is not retried here: the worker loop owns the backoff, and a
  // blind retry could strand claims whose answer was lost.
  grpc::Status status = v1::Queue::NewStub(endpoint.connection->channel())
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
    absl::Status failed = rpc::FromGrpcStatus(status);
    AfterCall(index, failed);
    return failed;
  }
  return std::vector<v1::ClaimedTask>(response.tasks().begin(),
                                      response.tasks().end());
}

void GrpcQueueApi::CancelClaims() {
  std::lock_guard<std::mutex> lock(mu_);
  canceled_ = true;
  for (grpc::ClientContext* context : claims_in_flight_) context->TryCancel();
}

std::shared_ptr<client::QueueClient> GrpcQueueApi::RunClient(
    const v1::TaskCredentials& credentials, size_t* index) const {
  Endpoint endpoint = Current(index);
  if (credentials.client_id().empty() && credentials.access_token().empty() &&
      credentials.certificate().empty()) {
    return endpoint.client;
  }
  client::Credentials task;
  task.client_id = credentials.client_id();
  task.access_token = credentials.access_token();
  task.certificate = credentials.certificate();
  task.source = "task credentials";
  // Same channel, other metadata: no new connection.
  auto connection = std::make_shared<const client::Connection>(
      endpoint.connection->channel(), endpoint.connection->endpoint(),
      std::move(task));
  return std::make_shared<client::QueueClient>(std::move(connection));
}

absl::StatusOr<v1::ReclaimTaskResponse> GrpcQueueApi::ReclaimTask(
    const WorkerIdentity& worker, const std::string& task_id, int run_id,
    const v1::TaskCredentials& credentials) {
  v1::RunRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  request.set_worker_group(worker.worker_group);
  request.set_worker_id(worker.worker_id);
  size_t index;
  auto result = RunClient(credentials, &index)->ReclaimTask(request);
  AfterCall(index, result.status());
  return result;
}

absl::Status GrpcQueueApi::ReportCompleted(
    const std::string& task_id, int run_id,
    const v1::TaskCredentials& credentials) {
  v1::RunRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  size_t index;
  absl::Status status =
      RunClient(credentials, &index)->ReportCompleted(request).status();
  AfterCall(index, status);
  return status;
}

absl::Status GrpcQueueApi::ReportFailed(
    const std::string& task_id, int run_id,
    const v1::TaskCredentials& credentials) {
  v1::RunRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  size_t index;
  absl::Status status =
      RunClient(credentials, &index)->ReportFailed(request).status();
  AfterCall(index, status);
  return status;
}

absl::Status GrpcQueueApi::ReportException(
    const std::string& task_id, int run_id, const std::string& reason,
    const v1::TaskCredentials& credentials) {
  v1::ReportExceptionRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  request.set_reason(reason);
  size_t index;
  absl::Status status =
      RunClient(credentials, &index)->ReportException(request).status();
  AfterCall(index, status);
  return status;
}

}  // namespace drover::worker
