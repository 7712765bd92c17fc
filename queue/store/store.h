// Store: the queue's durable state (tasks, runs, dependencies, claims).
//
// Every state transition is one short transaction guarded on the expected
// prior state, so a repeated or late call changes nothing and answers a
// RequestConflict. Implementations are thread-safe; each call may run on any
// thread. Time comes from the injected Clock, never from the database, so
// tests can move it.
//
// Errors (see common/status.h): ResourceNotFound for unknown ids,
// RequestConflict for a transition from the wrong state or a different
// definition under an existing id, InputError for dependencies that do not
// exist, InternalError when the database fails.
#ifndef DROVER_QUEUE_STORE_STORE_H_
#define DROVER_QUEUE_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "queue/store/types.h"

namespace drover::queue::store {

class Store {
 public:
  virtual ~Store() = default;

  // Creates the task and, when it has no unresolved dependencies, its first
  // pending run (reason "scheduled"). Creating an existing id with an equal
  // definition returns its current status; a different one is a
  // RequestConflict. The definition has been validated by the caller.
  virtual absl::StatusOr<TaskStatus> CreateTask(const Task& task) = 0;

  virtual absl::StatusOr<Task> GetTask(const std::string& task_id) = 0;
  virtual absl::StatusOr<TaskStatus> GetTaskStatus(
      const std::string& task_id) = 0;

  // Makes an unscheduled task pending regardless of its dependencies. A task
  // that already has a run is returned unchanged (idempotent).
  virtual absl::StatusOr<TaskStatus> ScheduleTask(
      const std::string& task_id) = 0;

  // Resolves the task exception/canceled: a pending or running run is
  // resolved; an unscheduled task gets a run resolved at once. Canceling a
  // task already resolved returns it unchanged.
  virtual absl::StatusOr<TaskStatus> CancelTask(const std::string& task_id) = 0;

  // Adds a pending run (reason "rerun") to a resolved task whose deadline
  // has not passed. RequestConflict while unresolved or past the deadline.
  virtual absl::StatusOr<TaskStatus> RerunTask(const std::string& task_id) = 0;

  // Takes up to `max_tasks` pending runs of the queue, highest priority
  // first then oldest, marks them running for this worker until now +
  // `claim_timeout`. Returns immediately (possibly empty); long-polling is
  // the service's business.
  virtual absl::StatusOr<std::vector<ClaimedTask>> ClaimWork(
      const std::string& task_queue_id, const std::string& worker_group,
      const std::string& worker_id, int max_tasks,
      absl::Duration claim_timeout) = 0;

  // Extends a running run's claim. RequestConflict when the run is not
  // running (resolved, canceled, expired) or is held by another worker.
  virtual absl::StatusOr<ReclaimResult> ReclaimTask(
      const std::string& task_id, int run_id, const std::string& worker_group,
      const std::string& worker_id, absl::Duration claim_timeout) = 0;

  // Resolves a running run as completed, failed or exception (with
  // `reason`). Repeating the same resolution returns the status unchanged;
  // a different one, or a run that is not running, is a RequestConflict.
  // Retryable exception reasons add a retry run while retries remain.
  virtual absl::StatusOr<TaskStatus> ResolveRun(const std::string& task_id,
                                                int run_id, RunState state,
                                                const std::string& reason) = 0;

  virtual absl::StatusOr<TaskQueueCounts> GetTaskQueueCounts(
      const std::string& task_queue_id) = 0;
  // Queues seen (by a task or a claim); ordered by id. `limit` 1..1000.
  virtual absl::StatusOr<Page<TaskQueueCounts>> ListTaskQueues(
      const std::string& continuation_token, int limit) = 0;

  // Background resolvers: each handles at most `batch` rows in one short
  // transaction using FOR UPDATE SKIP LOCKED, so every replica can run them
  // at once, and returns how many rows it handled.
  //
  // Running runs whose claim passed: exception/claim-expired (+ retry).
  virtual absl::StatusOr<int> ExpireClaims(int batch) = 0;
  // Unresolved tasks past their deadline: exception/deadline-exceeded.
  virtual absl::StatusOr<int> ResolveDeadlines(int batch) = 0;
  // Tasks past `expires`, with their runs and edges.
  virtual absl::StatusOr<int> DeleteExpiredTasks(int batch) = 0;

  // ---- Task graphs, groups, priorities and the event log -----------------
  // Default implementations answer Unimplemented, so stores (and fakes)
  // that do not support them keep compiling.

  // Appends `tasks` to the staged graph `graph_id` (a stage is created by
  // its first batch). Staged tasks are invisible until CommitTaskGraph.
  // Returns how many tasks the stage holds. A task staged again with the
  // same definition is accepted (a batch sent again after a lost answer).
  // Errors: InputError for an id twice in `tasks`; RequestConflict for an
  // id staged before with a different definition, or a graph_id already
  // committed (each naming it).
  virtual absl::StatusOr<int64_t> StageTaskGraph(
      const std::string& graph_id, const std::vector<Task>& tasks) {
    return absl::UnimplementedError("StageTaskGraph");
  }
  // Creates every task of the stage `graph_id` (empty: no stage) plus
  // `tasks` in one transaction, all or none, and drops the stage. Tasks
  // without unresolved dependencies get their first pending run.
  // Errors, each naming the offending task and nothing written: InputError
  // for a repeated id, a dependency cycle (naming a task on it), unknown
  // dependencies (listed), a dependency expiring before the dependent's
  // deadline, two schedulers in one group; RequestConflict for ids that
  // already exist, a sealed group, or a group of another scheduler.
  // Idempotent: the same commit call sent again after it succeeded (same
  // graph_id, or none and the same first task; the same tasks) returns the
  // first answer (without pending_queues) and writes nothing; a different
  // call is RequestConflict naming the differing task and field. Commits
  // are remembered for a day.
  virtual absl::StatusOr<TaskGraphResult> CommitTaskGraph(
      const std::string& graph_id, const std::vector<Task>& tasks) {
    return absl::UnimplementedError("CommitTaskGraph");
  }

  // Statuses of the group's tasks after `continuation_token` (a task id)
  // in id order; `limit` 1..1000. An unknown group is ResourceNotFound.
  virtual absl::StatusOr<Page<TaskStatus>> ListTaskGroup(
      const std::string& task_group_id, const std::string& continuation_token,
      int limit) {
    return absl::UnimplementedError("ListTaskGroup");
  }
  virtual absl::StatusOr<TaskGroupInfo> GetTaskGroup(
      const std::string& task_group_id) {
    return absl::UnimplementedError("GetTaskGroup");
  }
  // Seals the group (records task-group-sealed once); idempotent.
  virtual absl::StatusOr<TaskGroupInfo> SealTaskGroup(
      const std::string& task_group_id) {
    return absl::UnimplementedError("SealTaskGroup");
  }
  // Cancels every unresolved task of a sealed group, in transactions of
  // `batch` tasks (the group is sealed, so this converges). Returns how
  // many it canceled. RequestConflict when the group is not sealed.
  virtual absl::StatusOr<int64_t> CancelTaskGroup(
      const std::string& task_group_id, int batch) {
    return absl::UnimplementedError("CancelTaskGroup");
  }
  // Statuses of the tasks that depend on `task_id`, paged as
  // ListTaskGroup. An unknown task is ResourceNotFound.
  virtual absl::StatusOr<Page<TaskStatus>> ListDependentTasks(
      const std::string& task_id, const std::string& continuation_token,
      int limit) {
    return absl::UnimplementedError("ListDependentTasks");
  }
  // Changes an unresolved task's priority (and its pending claim row);
  // records task-priority-changed. RequestConflict when resolved.
  virtual absl::StatusOr<TaskStatus> ChangeTaskPriority(
      const std::string& task_id, Priority priority) {
    return absl::UnimplementedError("ChangeTaskPriority");
  }
  // The same for every unresolved task of a group; returns how many.
  virtual absl::StatusOr<int64_t> ChangeTaskGroupPriority(
      const std::string& task_group_id, Priority priority) {
    return absl::UnimplementedError("ChangeTaskGroupPriority");
  }

  // Events with id > `after` matching `filter`, in id order, at most
  // `limit`, and only once no transaction that could still commit an
  // event with a smaller id is running (waiting at most `max_wait` for
  // such transactions; past that it returns what is certain). Reading
  // from the returned `next` therefore never skips nor repeats an event.
  virtual absl::StatusOr<EventBatch> ReadEvents(int64_t after,
                                                const EventFilter& filter,
                                                int limit,
                                                absl::Duration max_wait) {
    return absl::UnimplementedError("ReadEvents");
  }
  // A position after every event committed so far ("from now").
  virtual absl::StatusOr<int64_t> CurrentEventPosition(
      absl::Duration max_wait) {
    return absl::UnimplementedError("CurrentEventPosition");
  }

  // Resolver passes. Records task-group-resolved for groups some task of
  // which resolved and that have no unresolved task left.
  virtual absl::StatusOr<int> AnnounceResolvedTaskGroups(int batch) {
    return absl::UnimplementedError("AnnounceResolvedTaskGroups");
  }
  // Deletes at most `batch` events older than `retention` (oldest first),
  // and task-graph stages left uncommitted and commit records older than a
  // day. Returns the events deleted. Safe in every replica at once.
  virtual absl::StatusOr<int> DeleteExpiredEvents(absl::Duration retention,
                                                  int batch) {
    return absl::UnimplementedError("DeleteExpiredEvents");
  }
};

// Wakes idle ClaimWork long-polls when work may have arrived on a queue.
// The PostgreSQL implementation keeps one LISTEN connection per process.
// An empty task_queue_id means "any queue": notifications may have been
// lost (e.g. while reconnecting), so every waiter should look again.
class PendingNotifier {
 public:
  using Callback = std::function<void(const std::string& task_queue_id)>;
  virtual ~PendingNotifier() = default;
  // Starts delivering notifications to `callback` on an internal thread.
  virtual absl::Status Start(Callback callback) = 0;
  virtual void Stop() = 0;
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_STORE_H_
