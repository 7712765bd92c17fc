#include "queue/store/pg_status.h"

#include "common/status.h"
#include "queue/store/pg_sql.h"
#include "queue/store/pg_util.h"

namespace drover::queue::store {
namespace {

Run RunOf(const pqxx::row& row) {
  Run run;
  run.run_id = row["run_id"].as<int>();
  run.state = ParseRunState(row["state"].c_str()).value_or(RunState::kPending);
  run.reason_created = row["reason_created"].c_str();
  run.reason_resolved = pg::TextOrEmpty(row["reason_resolved"]);
  run.worker_group = pg::TextOrEmpty(row["worker_group"]);
  run.worker_id = pg::TextOrEmpty(row["worker_id"]);
  run.taken_until = pg::OptionalTime(row["taken_until_us"]);
  run.scheduled = pg::TimeFromMicros(row["scheduled_us"].as<int64_t>());
  run.started = pg::OptionalTime(row["started_us"]);
  run.resolved = pg::OptionalTime(row["resolved_us"]);
  return run;
}

}  // namespace

std::vector<TaskStatus> ReadStatuses(pqxx::transaction_base& txn,
                                     const std::vector<std::string>& ids) {
  std::vector<TaskStatus> out;
  if (ids.empty()) return out;
  pqxx::result rows =
      txn.exec_prepared(sql::kTaskStatuses.name, pg::TextArrayParam(ids));
  for (const auto& row : rows) {
    std::string id = row["task_id"].c_str();
    if (out.empty() || out.back().task_id != id) {
      TaskStatus s;
      s.task_id = id;
      s.task_queue_id = row["task_queue_id"].c_str();
      s.scheduler_id = row["scheduler_id"].c_str();
      s.task_group_id = row["task_group_id"].c_str();
      s.retries_left = row["retries_left"].as<int>();
      s.deadline = pg::TimeFromMicros(row["deadline_us"].as<int64_t>());
      s.expires = pg::TimeFromMicros(row["expires_us"].as<int64_t>());
      s.blocking_dependencies = pg::TextArrayField(row["blocking"]);
      out.push_back(std::move(s));
    }
    if (!row["run_id"].is_null()) out.back().runs.push_back(RunOf(row));
  }
  for (TaskStatus& s : out) {
    if (s.runs.empty()) {
      s.state = "unscheduled";
    } else {
      s.state = std::string(RunStateName(s.runs.back().state));
      s.blocking_dependencies.clear();
    }
  }
  return out;
}

absl::StatusOr<TaskStatus> ReadStatus(pqxx::transaction_base& txn,
                                      const std::string& task_id) {
  std::vector<TaskStatus> found = ReadStatuses(txn, {task_id});
  if (found.empty()) return NotFoundError("task", task_id);
  return std::move(found.front());
}

}  // namespace drover::queue::store
