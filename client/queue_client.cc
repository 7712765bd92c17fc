#include "client/queue_client.h"

#include <utility>

namespace drover::client {

QueueClient::QueueClient(std::shared_ptr<const Connection> connection,
                         CallOptions defaults)
    : connection_(std::move(connection)),
      stub_(v1::Queue::NewStub(connection_->channel())),
      defaults_(defaults) {}

template <typename Request, typename Response>
absl::StatusOr<Response> QueueClient::Call(StubMethod<Request, Response> method,
                                           const Request& request,
                                           const Options& options,
                                           Idempotency idempotency) const {
  return CallUnary<Response>(
      *connection_, options.value_or(defaults_), idempotency,
      [&](grpc::ClientContext* context, Response* response) {
        return (stub_.get()->*method)(context, request, response);
      });
}

absl::StatusOr<v1::CreateTaskResponse> QueueClient::CreateTask(
    const v1::CreateTaskRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::CreateTask, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::GetTaskResponse> QueueClient::GetTask(
    const v1::TaskIdRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::GetTask, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskStatusResponse> QueueClient::GetTaskStatus(
    const v1::TaskIdRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::GetTaskStatus, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskStatusResponse> QueueClient::ScheduleTask(
    const v1::TaskIdRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ScheduleTask, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskStatusResponse> QueueClient::CancelTask(
    const v1::TaskIdRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::CancelTask, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskStatusResponse> QueueClient::RerunTask(
    const v1::TaskIdRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::RerunTask, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::ClaimWorkResponse> QueueClient::ClaimWork(
    const v1::ClaimWorkRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ClaimWork, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::ReclaimTaskResponse> QueueClient::ReclaimTask(
    const v1::RunRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ReclaimTask, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskStatusResponse> QueueClient::ReportCompleted(
    const v1::RunRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ReportCompleted, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskStatusResponse> QueueClient::ReportFailed(
    const v1::RunRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ReportFailed, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskStatusResponse> QueueClient::ReportException(
    const v1::ReportExceptionRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ReportException, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskQueueCounts> QueueClient::GetTaskQueueCounts(
    const v1::TaskQueueRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::GetTaskQueueCounts, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListTaskQueuesResponse> QueueClient::ListTaskQueues(
    const v1::ListTaskQueuesRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ListTaskQueues, request, options,
              Idempotency::kIdempotent);
}

}  // namespace drover::client
