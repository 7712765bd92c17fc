#include "client/queue_client.h"

#include "common/rpc/grpc_status.h"

namespace drover::client {

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

absl::StatusOr<v1::CreateTaskGraphResponse> QueueClient::CreateTaskGraph(
    const v1::CreateTaskGraphRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::CreateTaskGraph, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListTasksResponse> QueueClient::ListTaskGroup(
    const v1::ListTaskGroupRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ListTaskGroup, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskGroupInfo> QueueClient::GetTaskGroup(
    const v1::TaskGroupRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::GetTaskGroup, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskGroupInfo> QueueClient::SealTaskGroup(
    const v1::TaskGroupRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::SealTaskGroup, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::CancelTaskGroupResponse> QueueClient::CancelTaskGroup(
    const v1::TaskGroupRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::CancelTaskGroup, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListTasksResponse> QueueClient::ListDependentTasks(
    const v1::ListDependentTasksRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ListDependentTasks, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::TaskStatusResponse> QueueClient::ChangeTaskPriority(
    const v1::ChangeTaskPriorityRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ChangeTaskPriority, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ChangeTaskGroupPriorityResponse>
QueueClient::ChangeTaskGroupPriority(
    const v1::ChangeTaskGroupPriorityRequest& request, Options options) const {
  return Call(&v1::Queue::Stub::ChangeTaskGroupPriority, request, options,
              Idempotency::kIdempotent);
}

absl::Status QueueClient::WatchEvents(
    const v1::WatchEventsRequest& request,
    const std::function<bool(const v1::Event&)>& on_event,
    absl::Duration timeout, const std::function<void()>& on_live) const {
  grpc::ClientContext context;
  connection().PrepareContext(&context, absl::Now() + timeout);
  std::unique_ptr<grpc::ClientReader<v1::Event>> reader =
      stub()->WatchEvents(&context, request);
  reader->WaitForInitialMetadata();
  if (on_live) on_live();
  v1::Event event;
  bool stopped = false;
  while (reader->Read(&event)) {
    if (!on_event(event)) {
      stopped = true;
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (stopped || status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::OkStatus();
  }
  return rpc::FromGrpcStatus(status);
}

}  // namespace drover::client
