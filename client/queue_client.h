// QueueClient: the drover.v1.Queue service, one method per RPC.
//
// Each method returns the RPC's response or its error decoded into an
// absl::Status that keeps the server's {code, message, details} (see
// common/status.h). Transport failures come back as UNAVAILABLE or
// DEADLINE_EXCEEDED without details.
//
// Retries: UNAVAILABLE is retried (client/call.h) for the idempotent
// methods: CreateTask (same id + same definition is a no-op on the server),
// CreateTaskGraph (likewise for a graph),
// the reads (GetTask, GetTaskStatus, GetTaskQueueCounts, ListTaskQueues),
// and the state changes the server treats as idempotent for a repeated
// request (ScheduleTask, CancelTask, ReclaimTask, ReportCompleted,
// ReportFailed, ReportException). RerunTask (each call adds a run) and
// ClaimWork (a lost answer would strand claims until they expire) are
// never retried; their callers decide.
//
// Thread-safe: one QueueClient may serve any number of threads.
#ifndef DROVER_CLIENT_QUEUE_CLIENT_H_
#define DROVER_CLIENT_QUEUE_CLIENT_H_

#include <functional>

#include "absl/status/statusor.h"
#include "client/call.h"
#include "client/connection.h"
#include "client/service_client.h"
#include "drover/v1/queue.grpc.pb.h"

namespace drover::client {

class QueueClient : public ServiceClient<v1::Queue> {
 public:
  // Takes the shared connection and the CallOptions of the calls that
  // pass none of their own (ServiceClient's constructor).
  using ServiceClient::ServiceClient;

  absl::StatusOr<v1::CreateTaskResponse> CreateTask(
      const v1::CreateTaskRequest& request, Options options = {}) const;
  absl::StatusOr<v1::GetTaskResponse> GetTask(const v1::TaskIdRequest& request,
                                              Options options = {}) const;
  absl::StatusOr<v1::TaskStatusResponse> GetTaskStatus(
      const v1::TaskIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskStatusResponse> ScheduleTask(
      const v1::TaskIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskStatusResponse> CancelTask(
      const v1::TaskIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskStatusResponse> RerunTask(
      const v1::TaskIdRequest& request, Options options = {}) const;
  // Long-polls: give a timeout above the server's poll time (default 20 s);
  // the default options' timeout of 30 s is enough for the default.
  absl::StatusOr<v1::ClaimWorkResponse> ClaimWork(
      const v1::ClaimWorkRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ReclaimTaskResponse> ReclaimTask(
      const v1::RunRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskStatusResponse> ReportCompleted(
      const v1::RunRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskStatusResponse> ReportFailed(
      const v1::RunRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskStatusResponse> ReportException(
      const v1::ReportExceptionRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskQueueCounts> GetTaskQueueCounts(
      const v1::TaskQueueRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListTaskQueuesResponse> ListTaskQueues(
      const v1::ListTaskQueuesRequest& request, Options options = {}) const;

  // Task graphs, groups, priorities. All are retried: CreateTaskGraph is
  // idempotent on the server (an identical staged batch is accepted again,
  // and a repeated commit answers as the first one did for a day after
  // it), the rest are reads or idempotent (sealing, canceling a sealed
  // group, setting a priority).
  absl::StatusOr<v1::CreateTaskGraphResponse> CreateTaskGraph(
      const v1::CreateTaskGraphRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListTasksResponse> ListTaskGroup(
      const v1::ListTaskGroupRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskGroupInfo> GetTaskGroup(
      const v1::TaskGroupRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskGroupInfo> SealTaskGroup(
      const v1::TaskGroupRequest& request, Options options = {}) const;
  absl::StatusOr<v1::CancelTaskGroupResponse> CancelTaskGroup(
      const v1::TaskGroupRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListTasksResponse> ListDependentTasks(
      const v1::ListDependentTasksRequest& request, Options options = {}) const;
  absl::StatusOr<v1::TaskStatusResponse> ChangeTaskPriority(
      const v1::ChangeTaskPriorityRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ChangeTaskGroupPriorityResponse> ChangeTaskGroupPriority(
      const v1::ChangeTaskGroupPriorityRequest& request,
      Options options = {}) const;

  // Follows the event log: calls `on_live` once the server has started the
  // stream (events committed after that point are delivered even without
  // after_event_id), then `on_event` for each event in id order until it
  // returns false (OK), `timeout` passes (OK), or the stream fails (its
  // error). Not retried: resume with after_event_id = the last id seen.
  absl::Status WatchEvents(
      const v1::WatchEventsRequest& request,
      const std::function<bool(const v1::Event&)>& on_event,
      absl::Duration timeout = absl::Hours(24 * 365),
      const std::function<void()>& on_live = {}) const;

  // The options of calls that pass none; the CLI hands them on to the
  // other service clients it makes on the same connection.
  using ServiceClient::defaults;
};

}  // namespace drover::client

#endif  // DROVER_CLIENT_QUEUE_CLIENT_H_
