// Plain data types the queue store reads and writes: tasks, runs, claims.
// They mirror the relational tables (migrations/) and are independent of
// the gRPC API types; queue/service converts between the two.
#ifndef DROVER_QUEUE_STORE_TYPES_H_
#define DROVER_QUEUE_STORE_TYPES_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace drover::queue::store {

// Task priorities, lowest to highest; stored as their integer value so the
// claim index sorts by them.
enum class Priority {
  kLowest = 0,
  kVeryLow = 1,
  kLow = 2,
  kMedium = 3,
  kHigh = 4,
  kVeryHigh = 5,
  kHighest = 6,
};
std::string_view PriorityName(Priority p);  // "very-high"
std::optional<Priority> ParsePriority(std::string_view name);

enum class Requires { kAllCompleted, kAllResolved };
std::string_view RequiresName(Requires r);  // "all-completed"
std::optional<Requires> ParseRequires(std::string_view name);

enum class RunState { kPending, kRunning, kCompleted, kFailed, kException };
std::string_view RunStateName(RunState s);  // "pending"
std::optional<RunState> ParseRunState(std::string_view name);

// Why a run was created: scheduled, retry, task-retry, rerun, exception.
// Why a run was resolved: completed, failed, deadline-exceeded, canceled,
// claim-expired, worker-shutdown, malformed-payload, resource-unavailable,
// internal-error, intermittent-task.
// Reasons a worker may report through ReportException.
bool IsWorkerExceptionReason(std::string_view reason);
// Exception reasons that schedule a retry run while retries remain.
bool IsRetryableExceptionReason(std::string_view reason);

struct Task {
  std::string task_id;
  std::string task_queue_id;
  std::string scheduler_id;
  std::string task_group_id;
  std::vector<std::string> dependencies;
  Requires requires_rule = Requires::kAllCompleted;
  std::vector<std::string> routes;
  Priority priority = Priority::kLowest;
  int retries = 5;
  absl::Time created;
  absl::Time deadline;
  absl::Time expires;
  std::vector<std::string> scopes;
  std::string payload = "{}";  // JSON object text.
  std::string metadata_name;
  std::string metadata_description;
  std::string metadata_owner;
  std::string metadata_source;
  std::map<std::string, std::string> tags;
  std::string extra = "{}";  // JSON object text.

  // Field-wise equality: CreateTask is idempotent for an equal definition.
  bool operator==(const Task&) const = default;
};

struct Run {
  int run_id = 0;
  RunState state = RunState::kPending;
  std::string reason_created;
  std::string reason_resolved;  // Empty while unresolved.
  std::string worker_group;
  std::string worker_id;
  std::optional<absl::Time> taken_until;
  absl::Time scheduled;
  std::optional<absl::Time> started;
  std::optional<absl::Time> resolved;
};

struct TaskStatus {
  std::string task_id;
  std::string task_queue_id;
  std::string scheduler_id;
  std::string task_group_id;
  // "unscheduled" or the latest run's state name.
  std::string state;
  int retries_left = 0;
  absl::Time deadline;
  absl::Time expires;
  std::vector<Run> runs;
  // Unsatisfied dependencies of an unscheduled task.
  std::vector<std::string> blocking_dependencies;
};

struct ClaimedTask {
  Task task;
  int run_id = 0;
  absl::Time taken_until;
};

struct ReclaimResult {
  TaskStatus status;
  absl::Time taken_until;
};

struct TaskQueueCounts {
  std::string task_queue_id;
  int64_t pending = 0;
  int64_t claimed = 0;
  std::optional<absl::Time> last_date_active;
};

// A page of a listing; an empty continuation token means the last page.
template <typename T>
struct Page {
  std::vector<T> items;
  std::string continuation_token;
};

// A task group and how many of its tasks are in each state.
struct TaskGroupInfo {
  std::string task_group_id;
  std::string scheduler_id;
  std::optional<absl::Time> sealed;  // nullopt while open.
  absl::Time expires;
  // unscheduled, pending, running, completed, failed, exception -> tasks.
  std::map<std::string, int64_t> counts;
  int64_t tasks = 0;
  bool resolved = false;  // No task of the group is unresolved.
};

// What CommitTaskGraph created.
struct TaskGraphResult {
  int64_t tasks = 0;
  int64_t pending = 0;
  // Queues that got pending runs (to wake local claimers).
  std::vector<std::string> pending_queues;
};

// One row of the event log.
struct Event {
  int64_t event_id = 0;
  std::string kind;  // "task-completed", "task-group-sealed", ...
  std::string task_id;
  std::string task_group_id;
  std::string task_queue_id;
  std::optional<int> run_id;
  absl::Time time;
  std::vector<std::string> routes;
  std::string body = "{}";  // JSON object text.
};

// Which events a reader wants; empty fields match everything.
struct EventFilter {
  std::string task_group_id;
  std::string task_queue_id;
  std::string route_prefix;  // Some route starts with it.
  std::vector<std::string> kinds;
};

// The next events after a position, and where to continue from. `next`
// may move past the last returned event (over events the filter skipped
// or none at all) but never past an event that could still appear.
struct EventBatch {
  std::vector<Event> events;
  int64_t next = 0;
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_TYPES_H_
