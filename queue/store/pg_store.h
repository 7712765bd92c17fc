// PgStore: the Store on PostgreSQL (schema in migrations/).
//
// A fixed pool of connections, each with every statement of pg_sql.h
// prepared (generic plans: planning would cost more than executing).
// Every transition is guarded on the prior state and atomic. The hot path
// is one statement per call in autocommit: CreateTask (task, edges, group,
// first run, events, NOTIFY), ClaimWork, and ResolveRun (resolution, retry
// or release of dependents, events, NOTIFY) plus a status read. Multi-
// statement transactions (cancel, rerun, resolvers) that hit a deadlock or
// serialization failure are retried from scratch. Time always comes from
// the injected Clock as a parameter, truncated to microseconds (the
// database's precision).
//
// Beyond store.h: a task's dependents are updated in the same transaction
// as its resolution, reading only its own edges (O(dependents)); events
// are appended in the same transaction as each transition; NOTIFY
// drover_pending <queue> is sent once per queue per transaction when runs
// become pending (see PgPendingNotifier). ScheduleTask and RerunTask answer
// RequestConflict past the deadline; a task has at most kMaxRunsPerTask
// runs; a rerun does not restore spent retries.
#ifndef DROVER_QUEUE_STORE_PG_STORE_H_
#define DROVER_QUEUE_STORE_PG_STORE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "queue/store/group_commit.h"
#include "queue/store/pg_pending_publisher.h"
#include "queue/store/pg_pool.h"
#include "queue/store/store.h"

namespace drover::queue::store {

struct PgStoreOptions {
  std::string connection_string;
  // Connections kept open; each call holds one for its duration.
  int pool_size = 8;
  // How long a call waits for a free connection before InternalError.
  absl::Duration acquire_timeout = absl::Seconds(30);
  // Generic plans are rebuilt this often, from the tables' sizes then
  // (PgConnectionPool::Options::plan_refresh_interval).
  absl::Duration plan_refresh_interval = absl::Seconds(5);
  // Refuse to open unless the schema has exactly this binary's migrations.
  bool check_schema = true;
  // A queue's last_date_active is refreshed by claims at most this often.
  absl::Duration queue_activity_granularity = absl::Seconds(30);
  // Concurrent ResolveRun calls share one statement and commit: at most
  // this many reports per batch, and this many batches at once.
  size_t resolution_batch = 64;
  // One: concurrent batches of a task graph release shared dependents and
  // wait for each other's row locks (100k graph drain 50-56 s with one,
  // 57-68 s with two; flat throughput the same within noise).
  int resolution_batches_in_flight = 1;
};

// Most runs a task may have (retries and reruns together).
inline constexpr int kMaxRunsPerTask = 50;

class PgStore final : public Store {
 public:
  // Opens the pool. `clock` must outlive the store. Errors: as
  // PgConnectionPool::Create, and CheckSchema's when check_schema is set.
  static absl::StatusOr<std::unique_ptr<PgStore>> Open(
      const PgStoreOptions& options, const Clock* clock);
  // The pool settings Open uses (connection, size, session variables, plan
  // refresh), for tests that check how the store's sessions plan.
  static PgConnectionPool::Options PoolOptions(const PgStoreOptions& options);
  // Sends the notifications still queued.
  ~PgStore() override;

  absl::StatusOr<TaskStatus> CreateTask(const Task& task) override;
  absl::StatusOr<Task> GetTask(const std::string& task_id) override;
  absl::StatusOr<TaskStatus> GetTaskStatus(const std::string& task_id) override;
  absl::StatusOr<TaskStatus> ScheduleTask(const std::string& task_id) override;
  absl::StatusOr<TaskStatus> CancelTask(const std::string& task_id) override;
  absl::StatusOr<TaskStatus> RerunTask(const std::string& task_id) override;
  absl::StatusOr<std::vector<ClaimedTask>> ClaimWork(
      const std::string& task_queue_id, const std::string& worker_group,
      const std::string& worker_id, int max_tasks,
      absl::Duration claim_timeout) override;
  absl::StatusOr<ReclaimResult> ReclaimTask(
      const std::string& task_id, int run_id, const std::string& worker_group,
      const std::string& worker_id, absl::Duration claim_timeout) override;
  absl::StatusOr<TaskStatus> ResolveRun(const std::string& task_id, int run_id,
                                        RunState state,
                                        const std::string& reason) override;
  absl::StatusOr<TaskQueueCounts> GetTaskQueueCounts(
      const std::string& task_queue_id) override;
  absl::StatusOr<Page<TaskQueueCounts>> ListTaskQueues(
      const std::string& continuation_token, int limit) override;
  absl::StatusOr<int> ExpireClaims(int batch) override;
  absl::StatusOr<int> ResolveDeadlines(int batch) override;
  absl::StatusOr<int> DeleteExpiredTasks(int batch) override;

  // Task graphs, groups, priorities and the event log: pg_graph_store.cc.
  absl::StatusOr<int64_t> StageTaskGraph(
      const std::string& graph_id, const std::vector<Task>& tasks) override;
  absl::StatusOr<TaskGraphResult> CommitTaskGraph(
      const std::string& graph_id, const std::vector<Task>& tasks) override;
  absl::StatusOr<Page<TaskStatus>> ListTaskGroup(
      const std::string& task_group_id, const std::string& continuation_token,
      int limit) override;
  absl::StatusOr<TaskGroupInfo> GetTaskGroup(
      const std::string& task_group_id) override;
  absl::StatusOr<TaskGroupInfo> SealTaskGroup(
      const std::string& task_group_id) override;
  absl::StatusOr<int64_t> CancelTaskGroup(const std::string& task_group_id,
                                          int batch) override;
  absl::StatusOr<Page<TaskStatus>> ListDependentTasks(
      const std::string& task_id, const std::string& continuation_token,
      int limit) override;
  absl::StatusOr<TaskStatus> ChangeTaskPriority(const std::string& task_id,
                                                Priority priority) override;
  absl::StatusOr<int64_t> ChangeTaskGroupPriority(
      const std::string& task_group_id, Priority priority) override;
  absl::StatusOr<EventBatch> ReadEvents(int64_t after,
                                        const EventFilter& filter, int limit,
                                        absl::Duration max_wait) override;
  absl::StatusOr<int64_t> CurrentEventPosition(
      absl::Duration max_wait) override;
  absl::StatusOr<int> AnnounceResolvedTaskGroups(int batch) override;
  absl::StatusOr<int> DeleteExpiredEvents(absl::Duration retention,
                                          int batch) override;

 private:
  PgStore(std::unique_ptr<PgConnectionPool> pool, const Clock* clock,
          PgStoreOptions options);

  // "Now" at the database's precision (microseconds).
  absl::Time Now() const;

  // RunTransaction (kFail on unique violations) of `fn(txn, pending)`,
  // where `fn` appends the ids of the task queues its transaction made
  // work pending in. When the transaction commits they go to the
  // publisher; each retried attempt starts with `pending` empty.
  template <typename Txn, typename Fn>
  auto RunPublishing(const char* operation, Fn&& fn);

  // One report of ResolveRun, validated, waiting for its batch.
  struct Resolution {
    std::string task_id;
    int run_id;
    std::string state;
    std::string reason;
    bool retryable;
    std::string retry_reason;
  };
  // What a report came to: the task's status after its run resolved, or
  // nullopt when the run was not running (the caller explains why).
  using ResolutionOutcome = absl::StatusOr<std::optional<TaskStatus>>;
  // Resolves a batch of reports (kResolveRuns in one transaction, or one
  // at a time when the batch cannot go together); one outcome per report.
  std::vector<ResolutionOutcome> ResolveBatch(
      const std::vector<const Resolution*>& batch);
  // kResolveRuns over `batch` in one Txn, then the statuses of the tasks
  // it resolved (in the same transaction). Aborted when the batch holds a
  // task and one of its dependents.
  template <typename Txn>
  absl::StatusOr<std::map<std::string, TaskStatus>> ResolveTogether(
      const std::vector<const Resolution*>& batch);

  std::unique_ptr<PgConnectionPool> pool_;
  const Clock* clock_;
  PgStoreOptions options_;
  std::unique_ptr<PgPendingPublisher> publisher_;
  GroupCommitter<Resolution, ResolutionOutcome> resolutions_;
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_PG_STORE_H_
