// QueueService: the drover.v1.Queue gRPC service (tasks, runs, claiming)
// on the gRPC callback API.
//
// Each handler returns at once: the work (authorisation, validation, store
// calls, which block on the database) runs on a BoundedExecutor and the
// reactor is finished from there. Every error leaves through
// rpc::ToGrpcStatus, so clients always get {code, message, details}.
// ClaimWork long-polls through ClaimLongPoll.
#ifndef DROVER_QUEUE_QUEUE_SERVICE_QUEUE_SERVICE_H_
#define DROVER_QUEUE_QUEUE_SERVICE_QUEUE_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "drover/v1/queue.grpc.pb.h"
#include "queue/queue_service/authorizer.h"
#include "queue/queue_service/claim_long_poll.h"
#include "queue/queue_service/executor.h"
#include "queue/queue_service/task_credentials.h"
#include "queue/queue_service/task_validation.h"
#include "queue/store/store.h"

namespace drover::queue::queue_service {

struct QueueServiceOptions {
  ValidationLimits limits;
  ClaimLongPollOptions claim;
};

// Full gRPC method paths, as passed to Authorizer::Authorize.
inline constexpr std::string_view kCreateTaskMethod =
    "/drover.v1.Queue/CreateTask";
inline constexpr std::string_view kGetTaskMethod = "/drover.v1.Queue/GetTask";
inline constexpr std::string_view kGetTaskStatusMethod =
    "/drover.v1.Queue/GetTaskStatus";
inline constexpr std::string_view kScheduleTaskMethod =
    "/drover.v1.Queue/ScheduleTask";
inline constexpr std::string_view kCancelTaskMethod =
    "/drover.v1.Queue/CancelTask";
inline constexpr std::string_view kRerunTaskMethod =
    "/drover.v1.Queue/RerunTask";
inline constexpr std::string_view kClaimWorkMethod =
    "/drover.v1.Queue/ClaimWork";
inline constexpr std::string_view kReclaimTaskMethod =
    "/drover.v1.Queue/ReclaimTask";
inline constexpr std::string_view kReportCompletedMethod =
    "/drover.v1.Queue/ReportCompleted";
inline constexpr std::string_view kReportFailedMethod =
    "/drover.v1.Queue/ReportFailed";
inline constexpr std::string_view kReportExceptionMethod =
    "/drover.v1.Queue/ReportException";
inline constexpr std::string_view kGetTaskQueueCountsMethod =
    "/drover.v1.Queue/GetTaskQueueCounts";
inline constexpr std::string_view kListTaskQueuesMethod =
    "/drover.v1.Queue/ListTaskQueues";
inline constexpr std::string_view kCreateTaskGraphMethod =
    "/drover.v1.Queue/CreateTaskGraph";
inline constexpr std::string_view kListTaskGroupMethod =
    "/drover.v1.Queue/ListTaskGroup";
inline constexpr std::string_view kGetTaskGroupMethod =
    "/drover.v1.Queue/GetTaskGroup";
inline constexpr std::string_view kSealTaskGroupMethod =
    "/drover.v1.Queue/SealTaskGroup";
inline constexpr std::string_view kCancelTaskGroupMethod =
    "/drover.v1.Queue/CancelTaskGroup";
inline constexpr std::string_view kListDependentTasksMethod =
    "/drover.v1.Queue/ListDependentTasks";
inline constexpr std::string_view kChangeTaskPriorityMethod =
    "/drover.v1.Queue/ChangeTaskPriority";
inline constexpr std::string_view kChangeTaskGroupPriorityMethod =
    "/drover.v1.Queue/ChangeTaskGroupPriority";
inline constexpr std::string_view kWatchEventsMethod =
    "/drover.v1.Queue/WatchEvents";

// Tasks per CreateTaskGraph call (larger graphs are staged in batches).
inline constexpr int kMaxGraphBatch = 10000;
// WatchEvents streams served at once; more are refused (Unavailable).
inline constexpr int kMaxWatchers = 256;

class QueueService final : public v1::Queue::CallbackService {
 public:
  // Every pointer must outlive the service. The executor must be drained
  // (BoundedExecutor::Shutdown) before the service is destroyed.
  QueueService(QueueServiceOptions options, store::Store* store,
               const Clock* clock, Authorizer* authorizer,
               BoundedExecutor* executor);

  // Work may have arrived on a queue: wakes its parked ClaimWork calls.
  // The PendingNotifier callback. Thread-safe, non-blocking.
  void NotifyPending(const std::string& task_queue_id);

  // Answers parked ClaimWork calls with no tasks and stops parking new
  // ones; call before grpc::Server::Shutdown so it need not wait out the
  // poll timeout. Idempotent.
  void BeginShutdown();

  // ClaimWork calls currently waiting for work.
  size_t parked_claims() const { return claims_.parked(); }

  // ClaimWork and ReclaimTask hand out task credentials made by `issuer`
  // (null, the default: none). Call before serving; `issuer` must outlive
  // the service.
  void SetTaskCredentialsIssuer(const TaskCredentialsIssuer* issuer) {
    issuer_ = issuer;
    claims_.SetTaskCredentialsIssuer(issuer);
  }
  // See ClaimLongPoll::SetWorkerGate.
  void SetWorkerGate(WorkerGate* gate) { claims_.SetWorkerGate(gate); }

  grpc::ServerUnaryReactor* CreateTask(
      grpc::CallbackServerContext* context,
      const v1::CreateTaskRequest* request,
      v1::CreateTaskResponse* response) override;
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* context,
                                    const v1::TaskIdRequest* request,
                                    v1::GetTaskResponse* response) override;
  grpc::ServerUnaryReactor* GetTaskStatus(
      grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
      v1::TaskStatusResponse* response) override;
  grpc::ServerUnaryReactor* ScheduleTask(
      grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
      v1::TaskStatusResponse* response) override;
  grpc::ServerUnaryReactor* CancelTask(
      grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
      v1::TaskStatusResponse* response) override;
  grpc::ServerUnaryReactor* RerunTask(
      grpc::CallbackServerContext* context, const v1::TaskIdRequest* request,
      v1::TaskStatusResponse* response) override;
  grpc::ServerUnaryReactor* ClaimWork(grpc::CallbackServerContext* context,
                                      const v1::ClaimWorkRequest* request,
                                      v1::ClaimWorkResponse* response) override;
  grpc::ServerUnaryReactor* ReclaimTask(
      grpc::CallbackServerContext* context, const v1::RunRequest* request,
      v1::ReclaimTaskResponse* response) override;
  grpc::ServerUnaryReactor* ReportCompleted(
      grpc::CallbackServerContext* context, const v1::RunRequest* request,
      v1::TaskStatusResponse* response) override;
  grpc::ServerUnaryReactor* ReportFailed(
      grpc::CallbackServerContext* context, const v1::RunRequest* request,
      v1::TaskStatusResponse* response) override;
  grpc::ServerUnaryReactor* ReportException(
      grpc::CallbackServerContext* context,
      const v1::ReportExceptionRequest* request,
      v1::TaskStatusResponse* response) override;
  grpc::ServerUnaryReactor* GetTaskQueueCounts(
      grpc::CallbackServerContext* context, const v1::TaskQueueRequest* request,
      v1::TaskQueueCounts* response) override;
  grpc::ServerUnaryReactor* ListTaskQueues(
      grpc::CallbackServerContext* context,
      const v1::ListTaskQueuesRequest* request,
      v1::ListTaskQueuesResponse* response) override;

  // Task graphs, groups, priorities and events: queue_service_graph.cc.
  grpc::ServerUnaryReactor* CreateTaskGraph(
      grpc::CallbackServerContext* context,
      const v1::CreateTaskGraphRequest* request,
      v1::CreateTaskGraphResponse* response) override;
  grpc::ServerUnaryReactor* ListTaskGroup(
      grpc::CallbackServerContext* context,
      const v1::ListTaskGroupRequest* request,
      v1::ListTasksResponse* response) override;
  grpc::ServerUnaryReactor* GetTaskGroup(grpc::CallbackServerContext* context,
                                         const v1::TaskGroupRequest* request,
                                         v1::TaskGroupInfo* response) override;
  grpc::ServerUnaryReactor* SealTaskGroup(grpc::CallbackServerContext* context,
                                          const v1::TaskGroupRequest* request,
                                          v1::TaskGroupInfo* response) override;
  grpc::ServerUnaryReactor* CancelTaskGroup(
      grpc::CallbackServerContext* context, const v1::TaskGroupRequest* request,
      v1::CancelTaskGroupResponse* response) override;
  grpc::ServerUnaryReactor* ListDependentTasks(
      grpc::CallbackServerContext* context,
      const v1::ListDependentTasksRequest* request,
      v1::ListTasksResponse* response) override;
  grpc::ServerUnaryReactor* ChangeTaskPriority(
      grpc::CallbackServerContext* context,
      const v1::ChangeTaskPriorityRequest* request,
      v1::TaskStatusResponse* response) override;
  grpc::ServerUnaryReactor* ChangeTaskGroupPriority(
      grpc::CallbackServerContext* context,
      const v1::ChangeTaskGroupPriorityRequest* request,
      v1::ChangeTaskGroupPriorityResponse* response) override;
  // Server streaming: runs on a thread of its own per stream (at most
  // kMaxWatchers), polling the event log; see queue_service_graph.cc.
  grpc::ServerWriteReactor<v1::Event>* WatchEvents(
      grpc::CallbackServerContext* context,
      const v1::WatchEventsRequest* request) override;

  // WatchEvents streams open now.
  int watchers() const { return watchers_.load(); }

 private:
  // Runs `work` on the executor after authorising the call, then finishes
  // the reactor with its status.
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                std::string_view method,
                                const google::protobuf::Message& request,
                                std::function<absl::Status()> work);
  // Fills a TaskStatusResponse from a store result; with `wake_claimers`,
  // wakes this process's parked claimers when the task is now pending.
  absl::Status Respond(absl::StatusOr<store::TaskStatus> status,
                       v1::TaskStatusResponse* response, bool wake_claimers);

  const QueueServiceOptions options_;
  store::Store* const store_;
  const Clock* const clock_;
  Authorizer* const authorizer_;
  BoundedExecutor* const executor_;
  const TaskCredentialsIssuer* issuer_ = nullptr;
  ClaimLongPoll claims_;
  // WatchEvents: open streams, and whether BeginShutdown asked them to end.
  std::atomic<int> watchers_{0};
  std::atomic<bool> watch_stopping_{false};
  friend class WatchEventsReactor;
};

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_QUEUE_SERVICE_H_
