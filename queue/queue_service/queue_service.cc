#include "queue/queue_service/queue_service.h"

#include <utility>

#include "common/status.h"
#include "queue/queue_service/authorized_call.h"
#include "queue/queue_service/conversions.h"

namespace drover::queue::queue_service {

QueueService::QueueService(QueueServiceOptions options, store::Store* store,
                           const Clock* clock, Authorizer* authorizer,
                           BoundedExecutor* executor)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      authorizer_(authorizer),
      executor_(executor),
      claims_(options_.claim, store, executor) {}

void QueueService::NotifyPending(const std::string& task_queue_id) {
  claims_.Wake(task_queue_id);
}

void QueueService::BeginShutdown() {
  watch_stopping_ = true;
  claims_.Shutdown();
}

grpc::ServerUnaryReactor* QueueService::Run(
    grpc::CallbackServerContext* context, std::string_view method,
    const google::protobuf::Message& request,
    std::function<absl::Status()> work) {
  return RunAuthorized(*executor_, *authorizer_, context, method, request,
                       std::move(work));
}

absl::Status QueueService::Respond(absl::StatusOr<store::TaskStatus> status,
                                   v1::TaskStatusResponse* response,
                                   bool wake_claimers) {
  if (!status.ok()) return status.status();
  // Claimers in this process need not wait for the NOTIFY round trip.
  // (Dependents made pending elsewhere are announced by the store's NOTIFY.)
  if (wake_claimers && status->state == "pending") {
    NotifyPending(status->task_queue_id);
  }
  *response->mutable_status() = ToProto(*status);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* QueueService::CreateTask(
    grpc::CallbackServerContext* context, const v1::CreateTaskRequest* request,
    v1::CreateTaskResponse* response) {
  return Run(context, kCreateTaskMethod, *request, [=, this] {
    DROVER_ASSIGN_OR_RETURN(
        store::Task task,
        ValidateCreateTask(*request, options_.limits, clock_->Now()));
    DROVER_ASSIGN_OR_RETURN(store::TaskStatus status, store_->CreateTask(task));
    if (status.state == "pending") NotifyPending(status.task_queue_id);
    *response->mutable_status() = ToProto(status);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::GetTask(
    grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
    v1::GetTaskResponse* response) {
  return Run(context, kGetTaskMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request->task_id()));
    DROVER_ASSIGN_OR_RETURN(store::Task task,
                            store_->GetTask(request->task_id()));
    *response->mutable_task() = ToProto(task);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::GetTaskStatus(
    grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
    v1::TaskStatusResponse* response) {
  return Run(context, kGetTaskStatusMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request->task_id()));
    return Respond(store_->GetTaskStatus(request->task_id()), response,
                   /*wake_claimers=*/false);
  });
}

grpc::ServerUnaryReactor* QueueService::ScheduleTask(
    grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
    v1::TaskStatusResponse* response) {
  return Run(context, kScheduleTaskMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request->task_id()));
    return Respond(store_->ScheduleTask(request->task_id()), response,
                   /*wake_claimers=*/true);
  });
}

grpc::ServerUnaryReactor* QueueService::CancelTask(
    grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
    v1::TaskStatusResponse* response) {
  return Run(context, kCancelTaskMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request->task_id()));
    return Respond(store_->CancelTask(request->task_id()), response,
                   /*wake_claimers=*/false);
  });
}

grpc::ServerUnaryReactor* QueueService::RerunTask(
    grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
    v1::TaskStatusResponse* response) {
  return Run(context, kRerunTaskMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request->task_id()));
    return Respond(store_->RerunTask(request->task_id()), response,
                   /*wake_claimers=*/true);
  });
}

grpc::ServerUnaryReactor* QueueService::ClaimWork(
    grpc::CallbackServerContext* context, const v1::ClaimWorkRequest* request,
    v1::ClaimWorkResponse* response) {
  return claims_.Start(context, request, response, [=, this] {
    DROVER_RETURN_IF_ERROR(
        authorizer_->Authorize(context, kClaimWorkMethod, *request));
    return ValidateClaimWork(*request);
  });
}

grpc::ServerUnaryReactor* QueueService::ReclaimTask(
    grpc::CallbackServerContext* context, const v1::RunRequest* request,
    v1::ReclaimTaskResponse* response) {
  return Run(context, kReclaimTaskMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateRunRequest(*request, /*needs_worker=*/true));
    DROVER_ASSIGN_OR_RETURN(
        store::ReclaimResult result,
        store_->ReclaimTask(request->task_id(), request->run_id(),
                            request->worker_group(), request->worker_id(),
                            options_.claim.claim_timeout));
    *response->mutable_status() = ToProto(result.status);
    *response->mutable_taken_until() = ToProtoTime(result.taken_until);
    if (issuer_ != nullptr) {
      // Renewed credentials expire with the extended claim. Tasks are
      // immutable, so reading the scopes after the reclaim is safe.
      DROVER_ASSIGN_OR_RETURN(store::Task task,
                              store_->GetTask(request->task_id()));
      DROVER_ASSIGN_OR_RETURN(
          *response->mutable_credentials(),
          issuer_->Issue({.task_id = request->task_id(),
                          .run_id = request->run_id(),
                          .task_scopes = task.scopes,
                          .worker_group = request->worker_group(),
                          .worker_id = request->worker_id(),
                          .taken_until = result.taken_until}));
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::ReportCompleted(
    grpc::CallbackServerContext* context, const v1::RunRequest* request,
    v1::TaskStatusResponse* response) {
  return Run(context, kReportCompletedMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(
        ValidateRunRequest(*request, /*needs_worker=*/false));
    return Respond(store_->ResolveRun(request->task_id(), request->run_id(),
                                      store::RunState::kCompleted, "completed"),
                   response, /*wake_claimers=*/false);
  });
}

grpc::ServerUnaryReactor* QueueService::ReportFailed(
    grpc::CallbackServerContext* context, const v1::RunRequest* request,
    v1::TaskStatusResponse* response) {
  return Run(context, kReportFailedMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(
        ValidateRunRequest(*request, /*needs_worker=*/false));
    return Respond(store_->ResolveRun(request->task_id(), request->run_id(),
                                      store::RunState::kFailed, "failed"),
                   response, /*wake_claimers=*/false);
  });
}

grpc::ServerUnaryReactor* QueueService::ReportException(
    grpc::CallbackServerContext* context,
    const v1::ReportExceptionRequest* request,
    v1::TaskStatusResponse* response) {
  return Run(context, kReportExceptionMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateReportException(*request));
    return Respond(
        store_->ResolveRun(request->task_id(), request->run_id(),
                           store::RunState::kException, request->reason()),
        response, /*wake_claimers=*/true);
  });
}

grpc::ServerUnaryReactor* QueueService::GetTaskQueueCounts(
    grpc::CallbackServerContext* context, const v1::TaskQueueRequest* request,
    v1::TaskQueueCounts* response) {
  return Run(context, kGetTaskQueueCountsMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(
        ValidateTaskQueueId("task_queue_id", request->task_queue_id()));
    DROVER_ASSIGN_OR_RETURN(
        store::TaskQueueCounts counts,
        store_->GetTaskQueueCounts(request->task_queue_id()));
    *response = ToProto(counts);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::ListTaskQueues(
    grpc::CallbackServerContext* context,
    const v1::ListTaskQueuesRequest* request,
    v1::ListTaskQueuesResponse* response) {
  return Run(context, kListTaskQueuesMethod, *request, [=, this] {
    DROVER_ASSIGN_OR_RETURN(int limit, ValidateListTaskQueues(*request));
    DROVER_ASSIGN_OR_RETURN(
        store::Page<store::TaskQueueCounts> page,
        store_->ListTaskQueues(request->continuation_token(), limit));
    for (const auto& counts : page.items) {
      *response->add_task_queues() = ToProtoInfo(counts);
    }
    response->set_continuation_token(page.continuation_token);
    return absl::OkStatus();
  });
}

}  // namespace drover::queue::queue_service
