#include "queue/store/pg_store.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "queue/store/migrations.h"
#include "queue/store/pg_graph_sql.h"
#include "queue/store/pg_sql.h"
#include "queue/store/pg_status.h"
#include "queue/store/pg_transaction.h"
#include "queue/store/pg_util.h"

namespace drover::queue::store {
namespace {

constexpr int kMaxListLimit = 1000;

// Removes repeated ids, keeping the first occurrence: a dependency named
// twice is one edge.
std::vector<std::string> Dedup(const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& id : ids) {
    if (seen.insert(id).second) out.push_back(id);
  }
  return out;
}

absl::Time TruncateToMicros(absl::Time t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

// JSON text re-serialised by nlohmann: stable key order and spacing, so a
// document reads back byte-identical to what a caller canonicalised the
// same way (JSONB output has its own spacing and key order).
std::string CanonicalJson(const char* text) {
  auto parsed =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return text;
  return parsed.dump();
}

bool SameJson(const std::string& a, const std::string& b) {
  auto pa = nlohmann::json::parse(a, nullptr, false);
  auto pb = nlohmann::json::parse(b, nullptr, false);
  if (pa.is_discarded() || pb.is_discarded()) return a == b;
  return pa == pb;
}

std::string TagsJson(const std::map<std::string, std::string>& tags) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : tags) out[k] = v;
  return out.dump();
}

Task TaskFromRow(const pqxx::row& row) {
  Task t;
  t.task_id = row["task_id"].c_str();
  t.task_queue_id = row["task_queue_id"].c_str();
  t.scheduler_id = row["scheduler_id"].c_str();
  t.task_group_id = row["task_group_id"].c_str();
  t.dependencies = pg::TextArrayField(row["dependencies"]);
  t.requires_rule =
      ParseRequires(row["requires"].c_str()).value_or(Requires::kAllCompleted);
  t.routes = pg::TextArrayField(row["routes"]);
  t.priority = static_cast<Priority>(row["priority"].as<int>());
  t.retries = row["retries"].as<int>();
  t.created = pg::TimeFromMicros(row["created_us"].as<int64_t>());
  t.deadline = pg::TimeFromMicros(row["deadline_us"].as<int64_t>());
  t.expires = pg::TimeFromMicros(row["expires_us"].as<int64_t>());
  t.scopes = pg::TextArrayField(row["scopes"]);
  t.payload = CanonicalJson(row["payload"].c_str());
  t.metadata_name = row["metadata_name"].c_str();
  t.metadata_description = row["metadata_description"].c_str();
  t.metadata_owner = row["metadata_owner"].c_str();
  t.metadata_source = row["metadata_source"].c_str();
  auto tags = nlohmann::json::parse(row["tags"].c_str(), nullptr, false);
  if (tags.is_object()) {
    for (const auto& item : tags.items()) {
      if (item.value().is_string()) {
        t.tags[item.key()] = item.value().get<std::string>();
      }
    }
  }
  t.extra = CanonicalJson(row["extra"].c_str());
  return t;
}

// The first field (as the API names it) where an existing task's
// definition differs from a new request; nullopt when they are equal.
std::optional<std::string> FirstDifference(const Task& stored,
                                           const Task& wanted) {
  if (stored.task_queue_id != wanted.task_queue_id) return "task.task_queue_id";
  if (stored.scheduler_id != wanted.scheduler_id) return "task.scheduler_id";
  if (stored.task_group_id != wanted.task_group_id) return "task.task_group_id";
  if (stored.dependencies != Dedup(wanted.dependencies)) {
    return "task.dependencies";
  }
  if (stored.requires_rule != wanted.requires_rule) return "task.requirement";
  if (stored.routes != wanted.routes) return "task.routes";
  if (stored.priority != wanted.priority) return "task.priority";
  if (stored.retries != wanted.retries) return "task.retries";
  if (stored.created != TruncateToMicros(wanted.created)) return "task.created";
  if (stored.deadline != TruncateToMicros(wanted.deadline)) {
    return "task.deadline";
  }
  if (stored.expires != TruncateToMicros(wanted.expires)) return "task.expires";
  if (stored.scopes != wanted.scopes) return "task.scopes";
  if (!SameJson(stored.payload, wanted.payload)) return "task.payload";
  if (stored.metadata_name != wanted.metadata_name) return "task.metadata.name";
  if (stored.metadata_description != wanted.metadata_description) {
    return "task.metadata.description";
  }
  if (stored.metadata_owner != wanted.metadata_owner) {
    return "task.metadata.owner";
  }
  if (stored.metadata_source != wanted.metadata_source) {
    return "task.metadata.source";
  }
  if (stored.tags != wanted.tags) return "task.tags";
  if (!SameJson(stored.extra, wanted.extra)) return "task.extra";
  return std::nullopt;
}

std::string RunLabel(const std::string& task_id, int run_id) {
  return absl::StrCat(task_id, "/", run_id);
}

// Why a guarded transition of (task_id, run_id) matched no row: the task or
// run does not exist (ResourceNotFound), or the run is in another state.
absl::Status ExplainRunConflict(pqxx::transaction_base& txn,
                                const std::string& task_id, int run_id,
                                std::string_view wanted) {
  pqxx::result run = txn.exec_prepared(sql::kGetRun.name, task_id, run_id);
  if (run.empty()) {
    if (txn.exec_prepared(sql::kTaskExists.name, task_id).empty()) {
      return NotFoundError("task", task_id);
    }
    return NotFoundError("run", RunLabel(task_id, run_id));
  }
  std::string state = run[0]["state"].c_str();
  std::string reason = run[0]["reason_resolved"].c_str();
  std::string described = reason.empty() || reason == state
                              ? state
                              : absl::StrCat(state, "/", reason);
  return ConflictError(
      absl::StrCat("run ", run_id, " of task ", task_id, " is ", described,
                   "; cannot ", std::string(wanted)),
      {{"task_id", task_id},
       {"run_id", std::to_string(run_id)},
       {"state", state},
       {"reason_resolved", reason}});
}

// Adds the queue ids a statement returned (an array field, or the first
// column of each row) to `out`, for PgPendingPublisher after the commit.
void CollectQueues(const pqxx::field& array, std::vector<std::string>* out) {
  for (std::string& id : pg::TextArrayField(array))
    out->push_back(std::move(id));
}
void CollectQueues(const pqxx::result& rows, std::vector<std::string>* out) {
  for (const auto& row : rows) out->push_back(row[0].c_str());
}

// After a run resolved: a retryable exception with retries left (and the
// deadline ahead) gets a new pending run; anything else resolves the task
// for good and moves its dependents.
void AfterRunResolved(pqxx::transaction_base& txn, const std::string& task_id,
                      int run_id, RunState state, const std::string& reason,
                      const std::string& now,
                      std::vector<std::string>* pending_queues) {
  if (state == RunState::kException && IsRetryableExceptionReason(reason) &&
      run_id + 1 < kMaxRunsPerTask) {
    const char* reason_created =
        reason == "intermittent-task" ? "task-retry" : "retry";
    pqxx::result retried = txn.exec_prepared(sql::kRetryTask.name, task_id,
                                             run_id + 1, reason_created, now);
    if (!retried.empty()) {
      CollectQueues(retried, pending_queues);
      return;
    }
  }
  pqxx::row finished = txn.exec_prepared1(sql::kFinishTask.name, task_id,
                                          state == RunState::kCompleted, now);
  CollectQueues(finished["notified"], pending_queues);
}

// Resolves a locked, unresolved task as exception/`reason` (canceled,
// deadline-exceeded): its open run, or a new run when it never ran.
void ResolveOpenTask(pqxx::transaction_base& txn, const std::string& task_id,
                     std::optional<int> latest_run, const std::string& reason,
                     const std::string& now,
                     std::vector<std::string>* pending_queues) {
  txn.exec_prepared(sql::kDeletePending.name, task_id);
  if (latest_run.has_value()) {
    txn.exec_prepared(sql::kResolveOpenRun.name, task_id, *latest_run, reason,
                      now);
  } else {
    txn.exec_prepared(sql::kInsertExceptionRun.name, task_id, 0, reason, now);
  }
  pqxx::row finished =
      txn.exec_prepared1(sql::kFinishTask.name, task_id, false, now);
  CollectQueues(finished["notified"], pending_queues);
}

std::optional<int> OptionalInt(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return f.as<int>();
}

}  // namespace

PgStore::PgStore(std::unique_ptr<PgConnectionPool> pool, const Clock* clock,
                 PgStoreOptions options)
    : pool_(std::move(pool)),
      clock_(clock),
      options_(std::move(options)),
      publisher_(
          std::make_unique<PgPendingPublisher>(PgPendingPublisher::Options{
              .connection_string = options_.connection_string})),
      resolutions_(
          {.max_batch = std::max<size_t>(1, options_.resolution_batch),
           .max_in_flight = std::max(1, options_.resolution_batches_in_flight)},
          [this](const std::vector<const Resolution*>& batch) {
            return ResolveBatch(batch);
          },
          [](const Resolution& r) { return r.task_id; }) {}

PgStore::~PgStore() = default;

template <typename Txn, typename Fn>
auto PgStore::RunPublishing(const char* operation, Fn&& fn) {
  std::vector<std::string> pending;
  auto result = pg::RunTransaction<Txn>(
      *pool_, operation, pg::UniqueViolation::kFail, [&](Txn& txn) {
        // A retried attempt starts over: the queues an aborted attempt
        // collected were never made pending.
        pending.clear();
        return fn(txn, pending);
      });
  if (result.ok() && !pending.empty()) publisher_->Publish(pending);
  return result;
}

PgConnectionPool::Options PgStore::PoolOptions(const PgStoreOptions& options) {
  PgConnectionPool::Options pool_options;
  pool_options.connection_string = options.connection_string;
  pool_options.size = options.pool_size;
  pool_options.acquire_timeout = options.acquire_timeout;
  // Every statement is a short OLTP lookup whose best plan does not depend
  // on its parameters; planning it afresh (the default for the first runs,
  // and whenever the planner hesitates) costs several times executing it.
  // Generic plans are costed from the tables' sizes when they are built,
  // so the pool rebuilds them every plan_refresh_interval.
  //
  // Between rebuilds a plan made on a small table stays: on a fresh
  // database, or a queue table that was nearly empty, the claim's run
  // update read the whole of `runs` (33 ms per claim of 32 tasks on a
  // 10,000-task table; 2.2 s of PostgreSQL time in a 5 s throughput run).
  // Every statement here reaches its rows through an index by design, so
  // sequential scans are ruled out for the session: the planner then takes
  // the index whatever size it believes the table to be, and still scans
  // a table that has no usable index.
  pool_options.session_variables = {{"plan_cache_mode", "force_generic_plan"},
                                    {"enable_seqscan", "off"}};
  pool_options.plan_refresh_interval = options.plan_refresh_interval;
  return pool_options;
}

absl::StatusOr<std::unique_ptr<PgStore>> PgStore::Open(
    const PgStoreOptions& options, const Clock* clock) {
  if (options.check_schema) {
    DROVER_RETURN_IF_ERROR(CheckSchema(options.connection_string));
  }
  PgConnectionPool::Options pool_options = PoolOptions(options);
  std::vector<PreparedStatement> statements(std::begin(sql::kAllStatements),
                                            std::end(sql::kAllStatements));
  statements.insert(statements.end(), std::begin(sql::kGraphStatements),
                    std::end(sql::kGraphStatements));
  DROVER_ASSIGN_OR_RETURN(
      auto pool, PgConnectionPool::Create(pool_options, std::move(statements)));
  return std::unique_ptr<PgStore>(new PgStore(std::move(pool), clock, options));
}

absl::Time PgStore::Now() const { return TruncateToMicros(clock_->Now()); }

absl::StatusOr<TaskStatus> PgStore::CreateTask(const Task& task) {
  std::vector<std::string> dependencies = Dedup(task.dependencies);
  if (std::find(dependencies.begin(), dependencies.end(), task.task_id) !=
      dependencies.end()) {
    return InputError("task.dependencies", task.task_id,
                      "a task cannot depend on itself");
  }
  absl::Time now = Now();
  // One statement in autocommit: atomic, and one round trip.
  return RunPublishing<pqxx::nontransaction>(
      "CreateTask",
      [&](pqxx::nontransaction& txn,
          std::vector<std::string>& pending) -> absl::StatusOr<TaskStatus> {
        pqxx::row row = txn.exec_prepared1(
            sql::kCreateTask.name, task.task_id, task.task_queue_id,
            task.scheduler_id, task.task_group_id,
            pg::TextArrayParam(dependencies),
            std::string(RequiresName(task.requires_rule)),
            pg::TextArrayParam(task.routes), static_cast<int>(task.priority),
            task.retries, pg::TimeParam(task.created),
            pg::TimeParam(task.deadline), pg::TimeParam(task.expires),
            pg::TextArrayParam(task.scopes), task.payload, task.metadata_name,
            task.metadata_description, task.metadata_owner,
            task.metadata_source, TagsJson(task.tags), task.extra,
            pg::TimeParam(now));
        CollectQueues(row["notified"], &pending);

        if (row["inserted"].as<bool>()) {
          TaskStatus status;
          status.task_id = task.task_id;
          status.task_queue_id = task.task_queue_id;
          status.scheduler_id = task.scheduler_id;
          status.task_group_id = task.task_group_id;
          status.retries_left = task.retries;
          status.deadline = TruncateToMicros(task.deadline);
          status.expires = TruncateToMicros(task.expires);
          status.blocking_dependencies = pg::TextArrayField(row["blocking"]);
          if (status.blocking_dependencies.empty()) {
            Run run;
            run.run_id = 0;
            run.state = RunState::kPending;
            run.reason_created = "scheduled";
            run.scheduled = now;
            status.runs.push_back(std::move(run));
            status.state = "pending";
          } else {
            status.state = "unscheduled";
          }
          return status;
        }

        // Not inserted. An existing task comes first: repeating a create
        // answers with the task even if its group was sealed since.
        pqxx::result existing =
            txn.exec_prepared(sql::kGetTask.name, task.task_id);
        if (!existing.empty()) {
          if (auto field = FirstDifference(TaskFromRow(existing[0]), task)) {
            return ConflictError(
                absl::StrCat("task ", task.task_id,
                             " already exists with a different definition (",
                             *field, " differs)"),
                {{"task_id", task.task_id}, {"field", *field}});
          }
          return ReadStatus(txn, task.task_id);
        }
        std::vector<std::string> missing = pg::TextArrayField(row["missing"]);
        if (!missing.empty()) {
          return MakeError(
              ErrorCode::kInputError,
              absl::StrCat(
                  "task ", task.task_id, " depends on ", missing.size(),
                  " task(s) that do not exist: ", absl::StrJoin(missing, ", ")),
              {{"field", "task.dependencies"},
               {"value", absl::StrJoin(missing, ",")}});
        }
        std::string scheduler = pg::TextOrEmpty(row["group_scheduler_id"]);
        if (scheduler != task.scheduler_id) {
          return ConflictError(absl::StrCat("task group ", task.task_group_id,
                                            " belongs to scheduler ", scheduler,
                                            ", not ", task.scheduler_id),
                               {{"field", "task.scheduler_id"},
                                {"value", task.scheduler_id},
                                {"task_group_id", task.task_group_id},
                                {"group_scheduler_id", scheduler}});
        }
        if (row["group_sealed"].as<bool>()) {
          return ConflictError(
              absl::StrCat("task group ", task.task_group_id,
                           " is sealed; no task may join it"),
              {{"field", "task.task_group_id"}, {"value", task.task_group_id}});
        }
        // The id was taken by a create that committed after this
        // statement's snapshot and was deleted again before the lookup
        // (expiry): vanishingly rare, and safe to report.
        return ConflictError(
            absl::StrCat("task ", task.task_id,
                         " was created and removed concurrently; retry"),
            {{"task_id", task.task_id}});
      });
}

absl::StatusOr<Task> PgStore::GetTask(const std::string& task_id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetTask", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<Task> {
        pqxx::result rows = txn.exec_prepared(sql::kGetTask.name, task_id);
        if (rows.empty()) return NotFoundError("task", task_id);
        return TaskFromRow(rows[0]);
      });
}

absl::StatusOr<TaskStatus> PgStore::GetTaskStatus(const std::string& task_id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetTaskStatus", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) { return ReadStatus(txn, task_id); });
}

absl::StatusOr<TaskStatus> PgStore::ScheduleTask(const std::string& task_id) {
  absl::Time now = Now();
  return RunPublishing<pqxx::work>(
      "ScheduleTask",
      [&](pqxx::work& txn,
          std::vector<std::string>& pending) -> absl::StatusOr<TaskStatus> {
        pqxx::result lock = txn.exec_prepared(sql::kLockTask.name, task_id);
        if (lock.empty()) return NotFoundError("task", task_id);
        if (lock[0]["latest_run"].is_null()) {
          absl::Time deadline =
              pg::TimeFromMicros(lock[0]["deadline_us"].as<int64_t>());
          if (deadline <= now) {
            return ConflictError(
                absl::StrCat("task ", task_id, " is past its deadline (",
                             absl::FormatTime(deadline), ")"),
                {{"task_id", task_id},
                 {"deadline", absl::FormatTime(deadline)}});
          }
          CollectQueues(txn.exec_prepared(sql::kScheduleFirstRun.name, task_id,
                                          pg::TimeParam(now)),
                        &pending);
        }
        return ReadStatus(txn, task_id);
      });
}

absl::StatusOr<TaskStatus> PgStore::CancelTask(const std::string& task_id) {
  absl::Time now = Now();
  return RunPublishing<pqxx::work>(
      "CancelTask",
      [&](pqxx::work& txn,
          std::vector<std::string>& pending) -> absl::StatusOr<TaskStatus> {
        pqxx::result lock = txn.exec_prepared(sql::kLockTask.name, task_id);
        if (lock.empty()) return NotFoundError("task", task_id);
        if (!lock[0]["resolved"].as<bool>()) {
          ResolveOpenTask(txn, task_id, OptionalInt(lock[0]["latest_run"]),
                          "canceled", pg::TimeParam(now), &pending);
        }
        return ReadStatus(txn, task_id);
      });
}

absl::StatusOr<TaskStatus> PgStore::RerunTask(const std::string& task_id) {
  absl::Time now = Now();
  return RunPublishing<pqxx::work>(
      "RerunTask",
      [&](pqxx::work& txn,
          std::vector<std::string>& pending) -> absl::StatusOr<TaskStatus> {
        pqxx::result lock = txn.exec_prepared(sql::kLockTask.name, task_id);
        if (lock.empty()) return NotFoundError("task", task_id);
        std::optional<int> latest = OptionalInt(lock[0]["latest_run"]);
        if (!latest.has_value() || !lock[0]["resolved"].as<bool>()) {
          return ConflictError(
              absl::StrCat("task ", task_id,
                           " is not resolved; only a resolved task can be "
                           "rerun"),
              {{"task_id", task_id}});
        }
        absl::Time deadline =
            pg::TimeFromMicros(lock[0]["deadline_us"].as<int64_t>());
        if (deadline <= now) {
          return ConflictError(
              absl::StrCat("task ", task_id, " is past its deadline (",
                           absl::FormatTime(deadline), ")"),
              {{"task_id", task_id}, {"deadline", absl::FormatTime(deadline)}});
        }
        if (*latest + 1 >= kMaxRunsPerTask) {
          return ConflictError(
              absl::StrCat("task ", task_id, " already has ", *latest + 1,
                           " runs, the most a task may have"),
              {{"task_id", task_id}, {"runs", std::to_string(*latest + 1)}});
        }
        CollectQueues(txn.exec_prepared(sql::kRerunTask.name, task_id,
                                        *latest + 1, pg::TimeParam(now)),
                      &pending);
        return ReadStatus(txn, task_id);
      });
}

absl::StatusOr<std::vector<ClaimedTask>> PgStore::ClaimWork(
    const std::string& task_queue_id, const std::string& worker_group,
    const std::string& worker_id, int max_tasks, absl::Duration claim_timeout) {
  if (max_tasks < 1) {
    return InputError("max_tasks", std::to_string(max_tasks),
                      "must be at least 1");
  }
  if (claim_timeout <= absl::ZeroDuration()) {
    return InputError("claim_timeout", absl::FormatDuration(claim_timeout),
                      "must be positive");
  }
  absl::Time now = Now();
  absl::Time taken_until = TruncateToMicros(now + claim_timeout);
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ClaimWork", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<std::vector<ClaimedTask>> {
        pqxx::result rows = txn.exec_prepared(
            sql::kClaimWork.name, task_queue_id, max_tasks, worker_group,
            worker_id, pg::TimeParam(now), pg::TimeParam(taken_until),
            pg::TimeParam(now - options_.queue_activity_granularity));
        std::vector<ClaimedTask> claimed;
        claimed.reserve(rows.size());
        for (const auto& row : rows) {
          ClaimedTask c;
          c.task = TaskFromRow(row);
          c.run_id = row["run_id"].as<int>();
          c.taken_until =
              pg::TimeFromMicros(row["taken_until_us"].as<int64_t>());
          claimed.push_back(std::move(c));
        }
        return claimed;
      });
}

absl::StatusOr<ReclaimResult> PgStore::ReclaimTask(
    const std::string& task_id, int run_id, const std::string& worker_group,
    const std::string& worker_id, absl::Duration claim_timeout) {
  if (claim_timeout <= absl::ZeroDuration()) {
    return InputError("claim_timeout", absl::FormatDuration(claim_timeout),
                      "must be positive");
  }
  absl::Time now = Now();
  absl::Time taken_until = TruncateToMicros(now + claim_timeout);
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ReclaimTask", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<ReclaimResult> {
        pqxx::result rows = txn.exec_prepared(
            sql::kReclaimRun.name, task_id, run_id, worker_group, worker_id,
            pg::TimeParam(now), pg::TimeParam(taken_until));
        if (rows.empty()) {
          pqxx::result run =
              txn.exec_prepared(sql::kGetRun.name, task_id, run_id);
          if (!run.empty() &&
              std::string(run[0]["state"].c_str()) == "running") {
            std::string holder = absl::StrCat(run[0]["worker_group"].c_str(),
                                              "/", run[0]["worker_id"].c_str());
            if (holder != absl::StrCat(worker_group, "/", worker_id)) {
              return ConflictError(
                  absl::StrCat("run ", run_id, " of task ", task_id,
                               " is claimed by another worker"),
                  {{"task_id", task_id},
                   {"run_id", std::to_string(run_id)},
                   {"worker", absl::StrCat(worker_group, "/", worker_id)}});
            }
            return ConflictError(
                absl::StrCat("the claim on run ", run_id, " of task ", task_id,
                             " has expired"),
                {{"task_id", task_id}, {"run_id", std::to_string(run_id)}});
          }
          return ExplainRunConflict(txn, task_id, run_id, "reclaim it");
        }
        ReclaimResult result;
        result.taken_until =
            pg::TimeFromMicros(rows[0]["taken_until_us"].as<int64_t>());
        DROVER_ASSIGN_OR_RETURN(result.status, ReadStatus(txn, task_id));
        return result;
      });
}

absl::StatusOr<TaskStatus> PgStore::ResolveRun(const std::string& task_id,
                                               int run_id, RunState state,
                                               const std::string& reason) {
  std::string reason_resolved;
  switch (state) {
    case RunState::kCompleted:
    case RunState::kFailed:
      reason_resolved = std::string(RunStateName(state));
      if (!reason.empty() && reason != reason_resolved) {
        return InputError("reason", reason,
                          absl::StrCat("a ", reason_resolved,
                                       " run has reason ", reason_resolved));
      }
      break;
    case RunState::kException:
      if (!IsWorkerExceptionReason(reason)) {
        return InputError("reason", reason,
                          "not an exception reason a worker may report "
                          "(worker-shutdown, malformed-payload, "
                          "resource-unavailable, internal-error, "
                          "intermittent-task)");
      }
      reason_resolved = reason;
      break;
    default:
      return InputError("state", RunStateName(state),
                        "a run resolves as completed, failed or exception");
  }
  bool retryable = state == RunState::kException &&
                   IsRetryableExceptionReason(reason_resolved) &&
                   run_id + 1 < kMaxRunsPerTask;
  const char* retry_reason =
      reason_resolved == "intermittent-task" ? "task-retry" : "retry";
  Resolution resolution{
      task_id,         run_id,    std::string(RunStateName(state)),
      reason_resolved, retryable, retry_reason};
  DROVER_ASSIGN_OR_RETURN(std::optional<TaskStatus> resolved,
                          resolutions_.Submit(resolution));
  if (resolved.has_value()) return *std::move(resolved);
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ResolveRun", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<TaskStatus> {
        pqxx::result run =
            txn.exec_prepared(sql::kGetRun.name, task_id, run_id);
        if (!run.empty() && resolution.state == run[0]["state"].c_str() &&
            reason_resolved == run[0]["reason_resolved"].c_str()) {
          return ReadStatus(txn, task_id);  // A repeated report.
        }
        return ExplainRunConflict(
            txn, task_id, run_id,
            absl::StrCat("resolve it as ", resolution.state,
                         state == RunState::kException
                             ? absl::StrCat("/", reason_resolved)
                             : ""));
      });
}

std::vector<PgStore::ResolutionOutcome> PgStore::ResolveBatch(
    const std::vector<const Resolution*>& batch) {
  std::vector<ResolutionOutcome> outcomes;
  outcomes.reserve(batch.size());
  absl::StatusOr<std::map<std::string, TaskStatus>> resolved =
      batch.size() == 1 ? ResolveTogether<pqxx::nontransaction>(batch)
                        // A transaction, so that a batch that cannot go
                        // together is rolled back (then split below).
                        : ResolveTogether<pqxx::work>(batch);
  if (resolved.ok()) {
    for (const Resolution* r : batch) {
      auto it = resolved->find(r->task_id);
      if (it == resolved->end()) {
        outcomes.push_back(std::nullopt);
      } else {
        outcomes.push_back(std::move(it->second));
      }
    }
    return outcomes;
  }
  if (batch.size() == 1) {
    outcomes.push_back(resolved.status());
    return outcomes;
  }
  // Overlap, or an error that one report may have caused: each report on
  // its own, so that one cannot fail the others.
  for (const Resolution* r : batch) {
    outcomes.push_back(ResolveBatch({r}).front());
  }
  return outcomes;
}

template <typename Txn>
absl::StatusOr<std::map<std::string, TaskStatus>> PgStore::ResolveTogether(
    const std::vector<const Resolution*>& batch) {
  std::vector<std::string> ids, run_ids, states, reasons, retryable,
      retry_reasons;
  for (const Resolution* r : batch) {
    ids.push_back(r->task_id);
    run_ids.push_back(std::to_string(r->run_id));
    states.push_back(r->state);
    reasons.push_back(r->reason);
    retryable.push_back(r->retryable ? "t" : "f");
    retry_reasons.push_back(r->retry_reason);
  }
  std::string now = pg::TimeParam(Now());
  return RunPublishing<Txn>(
      "ResolveRun",
      [&](Txn& txn, std::vector<std::string>& pending)
          -> absl::StatusOr<std::map<std::string, TaskStatus>> {
        pqxx::row row = txn.exec_prepared1(
            sql::kResolveRuns.name, pg::TextArrayParam(ids),
            pg::TextArrayParam(run_ids), pg::TextArrayParam(states),
            pg::TextArrayParam(reasons), now, pg::TextArrayParam(retryable),
            pg::TextArrayParam(retry_reasons));
        if (row["overlap"].as<bool>()) {
          return absl::AbortedError(
              "a task of the batch is a dependent of another task of it");
        }
        CollectQueues(row["notified"], &pending);
        std::map<std::string, TaskStatus> statuses;
        for (TaskStatus& status :
             ReadStatuses(txn, pg::TextArrayField(row["resolved"]))) {
          std::string id = status.task_id;
          statuses.emplace(std::move(id), std::move(status));
        }
        return statuses;
      });
}

absl::StatusOr<TaskQueueCounts> PgStore::GetTaskQueueCounts(
    const std::string& task_queue_id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetTaskQueueCounts", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<TaskQueueCounts> {
        pqxx::row row =
            txn.exec_prepared1(sql::kQueueCounts.name, task_queue_id);
        TaskQueueCounts counts;
        counts.task_queue_id = task_queue_id;
        counts.pending = row["pending"].as<int64_t>();
        counts.claimed = row["claimed"].as<int64_t>();
        counts.last_date_active = pg::OptionalTime(row["last_active_us"]);
        return counts;
      });
}

absl::StatusOr<Page<TaskQueueCounts>> PgStore::ListTaskQueues(
    const std::string& continuation_token, int limit) {
  if (limit < 1 || limit > kMaxListLimit) {
    return InputError("limit", std::to_string(limit), "must be within 1..1000");
  }
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ListTaskQueues", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<Page<TaskQueueCounts>> {
        // One extra row tells whether another page follows.
        pqxx::result rows = txn.exec_prepared(sql::kListTaskQueues.name,
                                              continuation_token, limit + 1);
        Page<TaskQueueCounts> page;
        for (const auto& row : rows) {
          if (static_cast<int>(page.items.size()) == limit) {
            page.continuation_token = page.items.back().task_queue_id;
            break;
          }
          TaskQueueCounts counts;
          counts.task_queue_id = row["task_queue_id"].c_str();
          counts.pending = row["pending"].as<int64_t>();
          counts.claimed = row["claimed"].as<int64_t>();
          counts.last_date_active = pg::OptionalTime(row["last_active_us"]);
          page.items.push_back(std::move(counts));
        }
        return page;
      });
}

absl::StatusOr<int> PgStore::ExpireClaims(int batch) {
  if (batch < 1) {
    return InputError("batch", std::to_string(batch), "must be at least 1");
  }
  std::string now = pg::TimeParam(Now());
  return RunPublishing<pqxx::work>(
      "ExpireClaims",
      [&](pqxx::work& txn,
          std::vector<std::string>& pending) -> absl::StatusOr<int> {
        pqxx::result expired =
            txn.exec_prepared(sql::kExpireClaims.name, now, batch);
        for (const auto& row : expired) {
          AfterRunResolved(txn, row["task_id"].c_str(), row["run_id"].as<int>(),
                           RunState::kException, "claim-expired", now,
                           &pending);
        }
        return static_cast<int>(expired.size());
      });
}

absl::StatusOr<int> PgStore::ResolveDeadlines(int batch) {
  if (batch < 1) {
    return InputError("batch", std::to_string(batch), "must be at least 1");
  }
  std::string now = pg::TimeParam(Now());
  return RunPublishing<pqxx::work>(
      "ResolveDeadlines",
      [&](pqxx::work& txn,
          std::vector<std::string>& pending) -> absl::StatusOr<int> {
        pqxx::result due =
            txn.exec_prepared(sql::kLockDeadlineTasks.name, now, batch);
        for (const auto& row : due) {
          ResolveOpenTask(txn, row["task_id"].c_str(),
                          OptionalInt(row["latest_run"]), "deadline-exceeded",
                          now, &pending);
        }
        return static_cast<int>(due.size());
      });
}

absl::StatusOr<int> PgStore::DeleteExpiredTasks(int batch) {
  if (batch < 1) {
    return InputError("batch", std::to_string(batch), "must be at least 1");
  }
  std::string now = pg::TimeParam(Now());
  return pg::RunTransaction<pqxx::work>(
      *pool_, "DeleteExpiredTasks", pg::UniqueViolation::kFail,
      [&](pqxx::work& txn) -> absl::StatusOr<int> {
        pqxx::result deleted =
            txn.exec_prepared(sql::kDeleteExpiredTasks.name, now, batch);
        txn.exec_prepared(sql::kDeleteExpiredTaskGroups.name, now, batch);
        return static_cast<int>(deleted.size());
      });
}

}  // namespace drover::queue::store
