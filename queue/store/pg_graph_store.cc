// PgStore's task-graph, task-group, priority and event-log operations
// (declared in pg_store.h, SQL in pg_graph_sql.h). Kept apart from
// pg_store.cc, which holds the per-task hot path.
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "queue/store/pg_graph_sql.h"
#include "queue/store/pg_sql.h"
#include "queue/store/pg_status.h"
#include "queue/store/pg_store.h"
#include "queue/store/pg_transaction.h"
#include "queue/store/pg_util.h"
#include "spdlog/spdlog.h"

namespace drover::queue::store {
namespace {

constexpr int kMaxListLimit = 1000;
// Ids listed in one error message.
constexpr size_t kMaxIdsInError = 20;
// An event read scans at most this many ids past its start, so a replay
// with a selective filter returns (possibly empty) batches quickly.
constexpr int64_t kMaxEventScan = 100000;
// Stages not committed for this long are discarded.
constexpr absl::Duration kStageLifetime = absl::Hours(24);
// Graphs at least this large refresh the statistics of the tables they
// filled (kAnalyzeGraphTables): enough rows to move the planner's choices.
constexpr int64_t kAnalyzeAfterGraphTasks = 5000;

absl::Time Micros(absl::Time t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

std::vector<std::string> Dedup(const std::vector<std::string>& ids) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const auto& id : ids) {
    if (seen.insert(id).second) out.push_back(id);
  }
  return out;
}

std::string IntArrayParam(const std::vector<int>& values) {
  return absl::StrCat("{", absl::StrJoin(values, ","), "}");
}

std::string TagsJson(const std::map<std::string, std::string>& tags) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : tags) out[k] = v;
  return out.dump();
}

// A batch of tasks as the 20 column arrays of DROVER_GRAPH_BATCH_ROWS.
struct BatchParams {
  std::string ids, queues, schedulers, groups, dependencies, requires_rules,
      routes, priorities, retries, created, deadlines, expires, scopes,
      payloads, names, descriptions, owners, sources, tags, extras;
};

BatchParams ToBatchParams(const std::vector<Task>& tasks) {
  std::vector<std::string> ids, queues, schedulers, groups, deps, reqs, routes,
      created, deadlines, expires, scopes, payloads, names, descriptions,
      owners, sources, tags, extras;
  std::vector<int> priorities, retries;
  for (const Task& t : tasks) {
    ids.push_back(t.task_id);
    queues.push_back(t.task_queue_id);
    schedulers.push_back(t.scheduler_id);
    groups.push_back(t.task_group_id);
    deps.push_back(pg::TextArrayParam(Dedup(t.dependencies)));
    reqs.emplace_back(RequiresName(t.requires_rule));
    routes.push_back(pg::TextArrayParam(t.routes));
    priorities.push_back(static_cast<int>(t.priority));
    retries.push_back(t.retries);
    created.push_back(pg::TimeParam(t.created));
    deadlines.push_back(pg::TimeParam(t.deadline));
    expires.push_back(pg::TimeParam(t.expires));
    scopes.push_back(pg::TextArrayParam(t.scopes));
    payloads.push_back(t.payload.empty() ? "{}" : t.payload);
    names.push_back(t.metadata_name);
    descriptions.push_back(t.metadata_description);
    owners.push_back(t.metadata_owner);
    sources.push_back(t.metadata_source);
    tags.push_back(TagsJson(t.tags));
    extras.push_back(t.extra.empty() ? "{}" : t.extra);
  }
  using pg::TextArrayParam;
  return {TextArrayParam(ids),        TextArrayParam(queues),
          TextArrayParam(schedulers), TextArrayParam(groups),
          TextArrayParam(deps),       TextArrayParam(reqs),
          TextArrayParam(routes),     IntArrayParam(priorities),
          IntArrayParam(retries),     TextArrayParam(created),
          TextArrayParam(deadlines),  TextArrayParam(expires),
          TextArrayParam(scopes),     TextArrayParam(payloads),
          TextArrayParam(names),      TextArrayParam(descriptions),
          TextArrayParam(owners),     TextArrayParam(sources),
          TextArrayParam(tags),       TextArrayParam(extras)};
}

// Runs a prepared graph statement with $1 = `first`, the batch as
// $2..$21 and $22 = `now`.
pqxx::result ExecBatch(pqxx::transaction_base& txn, const char* statement,
                       const std::string& first, const BatchParams& b,
                       const std::string& now) {
  return txn.exec_prepared(
      statement, first, b.ids, b.queues, b.schedulers, b.groups, b.dependencies,
      b.requires_rules, b.routes, b.priorities, b.retries, b.created,
      b.deadlines, b.expires, b.scopes, b.payloads, b.names, b.descriptions,
      b.owners, b.sources, b.tags, b.extras, now);
}

std::string ListIds(const std::vector<std::string>& ids) {
  std::vector<std::string> shown(
      ids.begin(), ids.begin() + std::min(ids.size(), kMaxIdsInError));
  std::string out = absl::StrJoin(shown, ", ");
  if (ids.size() > shown.size()) {
    absl::StrAppend(&out, " and ", ids.size() - shown.size(), " more");
  }
  return out;
}

// What graph validation needs of one task.
struct Node {
  std::string task_id;
  std::string task_group_id;
  std::string scheduler_id;
  std::vector<std::string> dependencies;  // No repeats.
  absl::Time deadline;
  absl::Time expires;
};

// The graph checks that need no database: repeated ids, self-dependencies,
// one scheduler per group, cycles. Fills `index` (id -> node).
absl::Status CheckGraphShape(const std::vector<Node>& nodes,
                             std::unordered_map<std::string, size_t>* index) {
  index->reserve(nodes.size());
  std::unordered_map<std::string, const std::string*> group_scheduler;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node& n = nodes[i];
    if (!index->emplace(n.task_id, i).second) {
      return InputError(
          "tasks.task_id", n.task_id,
          absl::StrCat("task ", n.task_id, " appears twice in the graph"));
    }
    for (const std::string& dep : n.dependencies) {
      if (dep == n.task_id) {
        return InputError(
            "tasks.task.dependencies", n.task_id,
            absl::StrCat("task ", n.task_id, " depends on itself (a cycle)"));
      }
    }
    auto [it, added] =
        group_scheduler.emplace(n.task_group_id, &n.scheduler_id);
    if (!added && *it->second != n.scheduler_id) {
      return InputError(
          "tasks.task.scheduler_id", n.scheduler_id,
          absl::StrCat("task group ", n.task_group_id,
                       " has tasks of "
                       "scheduler ",
                       *it->second, " and of scheduler ", n.scheduler_id,
                       " (task ", n.task_id, "); a group has one scheduler"));
    }
  }
  // Kahn's algorithm over the edges inside the graph: whatever cannot be
  // ordered lies on a cycle or downstream of one.
  std::vector<int> waiting(nodes.size(), 0);
  std::vector<std::vector<size_t>> dependents(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (const std::string& dep : nodes[i].dependencies) {
      auto it = index->find(dep);
      if (it == index->end()) continue;
      ++waiting[i];
      dependents[it->second].push_back(i);
    }
  }
  std::vector<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (waiting[i] == 0) ready.push_back(i);
  }
  size_t ordered = 0;
  while (!ready.empty()) {
    size_t i = ready.back();
    ready.pop_back();
    ++ordered;
    for (size_t d : dependents[i]) {
      if (--waiting[d] == 0) ready.push_back(d);
    }
  }
  if (ordered == nodes.size()) return absl::OkStatus();
  // Every unordered node has an unordered dependency; following those from
  // any unordered node must revisit one, and that one is on a cycle.
  size_t start = 0;
  while (waiting[start] == 0) ++start;
  std::unordered_map<size_t, size_t> position;
  std::vector<size_t> path;
  size_t at = start;
  while (position.find(at) == position.end()) {
    position[at] = path.size();
    path.push_back(at);
    for (const std::string& dep : nodes[at].dependencies) {
      auto it = index->find(dep);
      if (it != index->end() && waiting[it->second] > 0) {
        at = it->second;
        break;
      }
    }
  }
  std::vector<std::string> cycle;
  for (size_t k = position[at]; k < path.size(); ++k) {
    cycle.push_back(nodes[path[k]].task_id);
  }
  cycle.push_back(nodes[at].task_id);
  std::string shown =
      cycle.size() <= 12
          ? absl::StrJoin(cycle, " -> ")
          : absl::StrCat(
                absl::StrJoin(cycle.begin(), cycle.begin() + 10, " -> "),
                " -> ... -> ", cycle.back());
  return MakeError(ErrorCode::kInputError,
                   absl::StrCat("the graph has a dependency cycle through "
                                "task ",
                                nodes[at].task_id, ": ", shown,
                                " (each depends on the next)"),
                   {{"field", "tasks.task.dependencies"},
                    {"value", nodes[at].task_id},
                    {"cycle_length", std::to_string(cycle.size() - 1)}});
}

Node NodeOf(const Task& t) {
  return {t.task_id,          t.task_group_id,
          t.scheduler_id,     Dedup(t.dependencies),
          Micros(t.deadline), Micros(t.expires)};
}

absl::StatusOr<Page<TaskStatus>> ReadPage(pqxx::transaction_base& txn,
                                          const char* page_statement,
                                          const std::string& key,
                                          const std::string& token, int limit) {
  pqxx::result rows = txn.exec_prepared(page_statement, key, token, limit + 1);
  std::vector<std::string> ids;
  for (const auto& row : rows) ids.push_back(row["task_id"].c_str());
  Page<TaskStatus> page;
  if (static_cast<int>(ids.size()) > limit) {
    ids.resize(limit);
    page.continuation_token = ids.back();
  }
  page.items = ReadStatuses(txn, ids);
  return page;
}

absl::Status CheckLimit(int limit) {
  if (limit < 1 || limit > kMaxListLimit) {
    return InputError("limit", std::to_string(limit), "must be within 1..1000");
  }
  return absl::OkStatus();
}

absl::StatusOr<TaskGroupInfo> ReadGroup(pqxx::transaction_base& txn,
                                        const std::string& task_group_id) {
  pqxx::result rows =
      txn.exec_prepared(sql::kTaskGroupInfo.name, task_group_id);
  if (rows.empty()) return NotFoundError("task group", task_group_id);
  const pqxx::row& row = rows[0];
  TaskGroupInfo info;
  info.task_group_id = task_group_id;
  info.scheduler_id = row["scheduler_id"].c_str();
  info.sealed = pg::OptionalTime(row["sealed_us"]);
  info.expires = pg::TimeFromMicros(row["expires_us"].as<int64_t>());
  for (const char* state : {"unscheduled", "pending", "running", "completed",
                            "failed", "exception"}) {
    info.counts[state] = 0;
  }
  auto counts = nlohmann::json::parse(row["counts"].c_str(), nullptr, false);
  if (counts.is_object()) {
    for (const auto& item : counts.items()) {
      int64_t n = item.value().get<int64_t>();
      info.counts[item.key()] = n;
      info.tasks += n;
    }
  }
  info.resolved = row["resolved"].as<bool>();
  return info;
}

absl::StatusOr<int64_t> DrawnEventIds(pqxx::transaction_base& txn) {
  return txn.exec_prepared1(sql::kEventIdsDrawn.name)["drawn"].as<int64_t>();
}

// Waits until every transaction that may have drawn an event id so far
// has ended (see migration 0300: a writer takes its xid before it draws an
// id, so every id drawn before this call belongs to a transaction that is
// done or holds its xid lock now); false when `max_wait` passed first.
bool WaitForWriters(pqxx::transaction_base& txn, absl::Duration max_wait) {
  std::string running =
      txn.exec_prepared1(sql::kRunningWriters.name)["xids"].c_str();
  if (running == "{}") return true;
  absl::Time give_up = absl::Now() + max_wait;
  absl::Duration pause = absl::Microseconds(200);
  for (;;) {
    if (txn.exec_prepared1(sql::kWritersEnded.name, running)["ended"]
            .as<bool>()) {
      return true;
    }
    if (absl::Now() >= give_up) return false;
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(pause));
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
}

// The conflict for the first task of `tasks` (the batch `params`) whose
// definition differs from what is stored; `mode` is "staged" (compare with
// stage `graph_id`) or "tasks" (with the existing tasks, which must all
// exist). OK when every task is identical.
absl::Status FirstBatchDifference(pqxx::transaction_base& txn,
                                  const std::string& graph_id,
                                  const std::vector<Task>& tasks,
                                  const BatchParams& params,
                                  const std::string& mode) {
  pqxx::result rows =
      ExecBatch(txn, sql::kGraphBatchDifferences.name, graph_id, params, mode);
  if (rows.empty()) return absl::OkStatus();
  std::string task_id = rows[0]["task_id"].c_str();
  std::string difference = rows[0]["difference"].c_str();
  size_t index = 0;
  while (index < tasks.size() && tasks[index].task_id != task_id) ++index;
  std::string field = absl::StrCat("tasks[", index, "].", difference);
  if (difference == "task_id") {
    return ConflictError(
        absl::StrCat("task graph ", graph_id,
                     " was committed already and task ", task_id,
                     " was not part of its committing call; nothing was "
                     "written"),
        {{"field", field}, {"value", task_id}, {"graph_id", graph_id}});
  }
  return ConflictError(
      absl::StrCat("task ", task_id,
                   mode == "staged"
                       ? absl::StrCat(" is staged in graph ", graph_id)
                       : std::string(" already exists"),
                   " with a different definition (", difference,
                   " differs); nothing was written"),
      {{"field", field}, {"value", task_id}, {"task_id", task_id}});
}

// The commit-record key of a graph (migration 0500): its graph_id, or the
// first task's id for a graph committed in one call.
std::string GraphKey(const std::string& graph_id,
                     const std::vector<Task>& tasks) {
  if (!graph_id.empty() || tasks.empty()) return graph_id;
  return absl::StrCat("task:", tasks.front().task_id);
}

// A commit call sent again after the graph was committed (the first answer
// was lost): the recorded answer when the call is identical, a conflict
// naming the difference otherwise, nullopt when no commit is recorded.
absl::StatusOr<std::optional<TaskGraphResult>> RepeatedCommit(
    pqxx::transaction_base& txn, const std::string& graph_id,
    const std::vector<Task>& tasks, const BatchParams& params) {
  std::string key = GraphKey(graph_id, tasks);
  pqxx::result rows = txn.exec_prepared(sql::kFindGraphCommit.name, key);
  if (rows.empty()) return std::nullopt;
  int64_t last_batch = rows[0]["last_batch"].as<int64_t>();
  std::string name = graph_id.empty()
                         ? absl::StrCat("of task ", tasks.front().task_id)
                         : graph_id;
  if (last_batch != static_cast<int64_t>(tasks.size())) {
    return ConflictError(
        absl::StrCat("task graph ", name,
                     " was committed already by a call of ", last_batch,
                     " tasks; this call has ", tasks.size(),
                     ", so it is not a retry; nothing was written"),
        {{"field", graph_id.empty() ? "tasks" : "graph_id"},
         {"value", graph_id.empty() ? tasks.front().task_id : graph_id}});
  }
  DROVER_RETURN_IF_ERROR(FirstBatchDifference(
      txn, graph_id.empty() ? name : graph_id, tasks, params, "tasks"));
  TaskGraphResult result;
  result.tasks = rows[0]["tasks"].as<int64_t>();
  result.pending = rows[0]["pending"].as<int64_t>();
  return std::optional<TaskGraphResult>(std::move(result));
}

}  // namespace

absl::StatusOr<int64_t> PgStore::StageTaskGraph(
    const std::string& graph_id, const std::vector<Task>& tasks) {
  if (graph_id.empty()) {
    return InputError("graph_id", graph_id, "a staged graph needs an id");
  }
  std::set<std::string> seen;
  for (const Task& t : tasks) {
    if (!seen.insert(t.task_id).second) {
      return InputError(
          "tasks.task_id", t.task_id,
          absl::StrCat("task ", t.task_id, " appears twice in the graph"));
    }
  }
  BatchParams params = ToBatchParams(tasks);
  std::string now = pg::TimeParam(Now());
  return pg::RunTransaction<pqxx::work>(
      *pool_, "StageTaskGraph", pg::UniqueViolation::kFail,
      [&](pqxx::work& txn) -> absl::StatusOr<int64_t> {
        if (!txn.exec_prepared(sql::kFindGraphCommit.name, graph_id).empty()) {
          return ConflictError(
              absl::StrCat("task graph ", graph_id,
                           " was committed already; stage a new graph under "
                           "a new graph_id"),
              {{"field", "graph_id"}, {"value", graph_id}});
        }
        pqxx::row row =
            ExecBatch(txn, sql::kStageGraphTasks.name, graph_id, params, now)
                .at(0);
        // Ids staged before are fine when staged identically: the client
        // is sending a batch again whose answer it did not get.
        if (!pg::TextArrayField(row["repeated"]).empty()) {
          DROVER_RETURN_IF_ERROR(
              FirstBatchDifference(txn, graph_id, tasks, params, "staged"));
        }
        return row["staged"].as<int64_t>();
      });
}

absl::StatusOr<TaskGraphResult> PgStore::CommitTaskGraph(
    const std::string& graph_id, const std::vector<Task>& tasks) {
  BatchParams params = ToBatchParams(tasks);
  std::string now = pg::TimeParam(Now());
  // False when the call only repeated an earlier commit's answer: nothing
  // new to analyze then.
  bool wrote = false;
  absl::StatusOr<TaskGraphResult> committed = pg::RunTransaction<pqxx::work>(
      *pool_, "CommitTaskGraph", pg::UniqueViolation::kFail,
      [&](pqxx::work& txn) -> absl::StatusOr<TaskGraphResult> {
        wrote = false;  // a retried transaction starts over
        std::vector<Node> nodes;
        if (!graph_id.empty()) {
          for (const auto& row :
               txn.exec_prepared(sql::kStagedGraphShape.name, graph_id)) {
            nodes.push_back(
                {row["task_id"].c_str(), row["task_group_id"].c_str(),
                 row["scheduler_id"].c_str(),
                 pg::TextArrayField(row["dependencies"]),
                 pg::TimeFromMicros(row["deadline_us"].as<int64_t>()),
                 pg::TimeFromMicros(row["expires_us"].as<int64_t>())});
          }
        }
        if (nodes.empty() && !(graph_id.empty() && tasks.empty())) {
          DROVER_ASSIGN_OR_RETURN(auto repeated,
                                  RepeatedCommit(txn, graph_id, tasks, params));
          if (repeated.has_value()) return *std::move(repeated);
        }
        nodes.reserve(nodes.size() + tasks.size());
        for (const Task& t : tasks) nodes.push_back(NodeOf(t));
        if (nodes.empty()) {
          if (!graph_id.empty()) {
            return NotFoundError("task graph stage", graph_id);
          }
          return InputError("tasks", "", "a graph needs at least one task");
        }
        std::unordered_map<std::string, size_t> index;
        DROVER_RETURN_IF_ERROR(CheckGraphShape(nodes, &index));

        // Dependencies outside the graph must exist (and stay: FOR SHARE).
        std::set<std::string> external;
        for (const Node& n : nodes) {
          for (const std::string& dep : n.dependencies) {
            if (index.find(dep) == index.end()) external.insert(dep);
          }
        }
        std::unordered_map<std::string, absl::Time> external_expires;
        if (!external.empty()) {
          std::vector<std::string> ids(external.begin(), external.end());
          for (const auto& row :
               txn.exec_prepared(sql::kLockExternalDependencies.name,
                                 pg::TextArrayParam(ids))) {
            external_expires[row["task_id"].c_str()] =
                pg::TimeFromMicros(row["expires_us"].as<int64_t>());
          }
          std::vector<std::string> missing;
          for (const std::string& id : ids) {
            if (external_expires.find(id) == external_expires.end()) {
              missing.push_back(id);
            }
          }
          if (!missing.empty()) {
            return MakeError(
                ErrorCode::kInputError,
                absl::StrCat(missing.size(),
                             " dependencies are neither in "
                             "the graph nor existing tasks: ",
                             ListIds(missing)),
                {{"field", "tasks.task.dependencies"},
                 {"value", missing.front()},
                 {"missing",
                  absl::StrJoin(missing.begin(),
                                missing.begin() +
                                    std::min(missing.size(), kMaxIdsInError),
                                ",")}});
          }
        }
        // A dependency must outlive its dependent's deadline, or the
        // dependent could be left waiting on a task that is gone.
        for (const Node& n : nodes) {
          for (const std::string& dep : n.dependencies) {
            auto in_graph = index.find(dep);
            absl::Time dep_expires = in_graph != index.end()
                                         ? nodes[in_graph->second].expires
                                         : external_expires[dep];
            if (dep_expires < n.deadline) {
              return MakeError(
                  ErrorCode::kInputError,
                  absl::StrCat("dependency ", dep, " of task ", n.task_id,
                               " expires (", absl::FormatTime(dep_expires),
                               ") before the task's deadline (",
                               absl::FormatTime(n.deadline), ")"),
                  {{"field", "tasks.task.dependencies"},
                   {"value", dep},
                   {"task_id", n.task_id}});
            }
          }
        }
        // Ids must be new.
        std::vector<std::string> all_ids;
        all_ids.reserve(nodes.size());
        std::set<std::string> groups;
        for (const Node& n : nodes) {
          all_ids.push_back(n.task_id);
          groups.insert(n.task_group_id);
        }
        pqxx::result taken = txn.exec_prepared(sql::kExistingTaskIds.name,
                                               pg::TextArrayParam(all_ids));
        if (!taken.empty()) {
          std::vector<std::string> ids;
          for (const auto& row : taken) ids.push_back(row[0].c_str());
          return ConflictError(
              absl::StrCat("tasks already exist: ", ListIds(ids)),
              {{"field", "tasks.task_id"}, {"value", ids.front()}});
        }
        // Existing groups: open, and of the same scheduler.
        std::unordered_map<std::string, std::string> scheduler_of;
        for (const Node& n : nodes) {
          scheduler_of.emplace(n.task_group_id, n.scheduler_id);
        }
        std::vector<std::string> group_ids(groups.begin(), groups.end());
        for (const auto& row : txn.exec_prepared(
                 sql::kLockTaskGroups.name, pg::TextArrayParam(group_ids))) {
          std::string group = row["task_group_id"].c_str();
          std::string scheduler = row["scheduler_id"].c_str();
          if (row["sealed"].as<bool>()) {
            return ConflictError(
                absl::StrCat("task group ", group,
                             " is sealed; no task may join it"),
                {{"field", "tasks.task.task_group_id"}, {"value", group}});
          }
          if (scheduler != scheduler_of[group]) {
            return ConflictError(
                absl::StrCat("task group ", group, " belongs to scheduler ",
                             scheduler, ", not ", scheduler_of[group]),
                {{"field", "tasks.task.scheduler_id"},
                 {"value", scheduler_of[group]},
                 {"task_group_id", group},
                 {"group_scheduler_id", scheduler}});
          }
        }
        pqxx::result committed;
        try {
          committed =
              ExecBatch(txn, sql::kCommitGraph.name, graph_id, params, now);
        } catch (const pqxx::unique_violation&) {
          // Another transaction took an id since the check above.
          return ConflictError(
              "a task of the graph was created concurrently; nothing was "
              "written",
              {{"field", "tasks.task_id"}});
        }
        const pqxx::row row = committed.at(0);
        wrote = true;
        TaskGraphResult result;
        result.tasks = row["created"].as<int64_t>();
        result.pending = row["pending"].as<int64_t>();
        result.pending_queues = pg::TextArrayField(row["queues"]);
        txn.exec_prepared(sql::kRecordGraphCommit.name,
                          GraphKey(graph_id, tasks),
                          static_cast<int64_t>(tasks.size()), result.tasks,
                          result.pending, now);
        return result;
      });
  // Like every other transition, the graph notifies after its commit.
  if (committed.ok() && !committed->pending_queues.empty()) {
    publisher_->Publish(committed->pending_queues);
  }
  if (committed.ok() && wrote && committed->tasks >= kAnalyzeAfterGraphTasks) {
    // Best effort: the graph is committed whatever the statistics say.
    absl::Status analyzed = pg::RunTransaction<pqxx::nontransaction>(
        *pool_, "AnalyzeGraphTables", pg::UniqueViolation::kFail,
        [&](pqxx::nontransaction& txn) -> absl::Status {
          txn.exec0(sql::kAnalyzeGraphTables);
          return absl::OkStatus();
        });
    if (!analyzed.ok()) {
      spdlog::warn("statistics after a graph of {} tasks: {}", committed->tasks,
                   analyzed.ToString());
    }
  }
  return committed;
}

absl::StatusOr<Page<TaskStatus>> PgStore::ListTaskGroup(
    const std::string& task_group_id, const std::string& continuation_token,
    int limit) {
  DROVER_RETURN_IF_ERROR(CheckLimit(limit));
  return pg::RunTransaction<pqxx::read_transaction>(
      *pool_, "ListTaskGroup", pg::UniqueViolation::kFail,
      [&](pqxx::read_transaction& txn) -> absl::StatusOr<Page<TaskStatus>> {
        auto page = ReadPage(txn, sql::kGroupTaskPage.name, task_group_id,
                             continuation_token, limit);
        if (page.ok() && page->items.empty() && continuation_token.empty() &&
            txn.exec_prepared(sql::kTaskGroupInfo.name, task_group_id)
                .empty()) {
          return NotFoundError("task group", task_group_id);
        }
        return page;
      });
}

absl::StatusOr<TaskGroupInfo> PgStore::GetTaskGroup(
    const std::string& task_group_id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetTaskGroup", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) { return ReadGroup(txn, task_group_id); });
}

absl::StatusOr<TaskGroupInfo> PgStore::SealTaskGroup(
    const std::string& task_group_id) {
  std::string now = pg::TimeParam(Now());
  return pg::RunTransaction<pqxx::work>(
      *pool_, "SealTaskGroup", pg::UniqueViolation::kFail,
      [&](pqxx::work& txn) -> absl::StatusOr<TaskGroupInfo> {
        txn.exec_prepared(sql::kSealTaskGroup.name, task_group_id, now);
        return ReadGroup(txn, task_group_id);
      });
}

absl::StatusOr<int64_t> PgStore::CancelTaskGroup(
    const std::string& task_group_id, int batch) {
  if (batch < 1) {
    return InputError("batch", std::to_string(batch), "must be at least 1");
  }
  DROVER_ASSIGN_OR_RETURN(TaskGroupInfo group, GetTaskGroup(task_group_id));
  if (!group.sealed.has_value()) {
    return ConflictError(
        absl::StrCat("task group ", task_group_id,
                     " is not sealed; seal it first so no task can join "
                     "while it is canceled"),
        {{"field", "task_group_id"}, {"value", task_group_id}});
  }
  // Each task is canceled by CancelTask, in its own short transaction (the
  // same path, events and dependents handling as a single cancel). The
  // group is sealed, so the set of unresolved tasks only shrinks.
  int64_t canceled = 0;
  for (;;) {
    auto ids = pg::RunTransaction<pqxx::work>(
        *pool_, "CancelTaskGroup", pg::UniqueViolation::kFail,
        [&](pqxx::work& txn) -> absl::StatusOr<std::vector<std::string>> {
          std::vector<std::string> out;
          for (const auto& row : txn.exec_prepared(
                   sql::kLockUnresolvedGroupTasks.name, task_group_id, batch)) {
            out.push_back(row["task_id"].c_str());
          }
          return out;
        });
    if (!ids.ok()) return ids.status();
    if (ids->empty()) return canceled;
    for (const std::string& id : *ids) {
      auto status = CancelTask(id);
      if (!status.ok() &&
          !HasErrorCode(status.status(), ErrorCode::kResourceNotFound)) {
        return status.status();
      }
      ++canceled;
    }
  }
}

absl::StatusOr<Page<TaskStatus>> PgStore::ListDependentTasks(
    const std::string& task_id, const std::string& continuation_token,
    int limit) {
  DROVER_RETURN_IF_ERROR(CheckLimit(limit));
  return pg::RunTransaction<pqxx::read_transaction>(
      *pool_, "ListDependentTasks", pg::UniqueViolation::kFail,
      [&](pqxx::read_transaction& txn) -> absl::StatusOr<Page<TaskStatus>> {
        if (continuation_token.empty() &&
            txn.exec_prepared(sql::kTaskExists.name, task_id).empty()) {
          return NotFoundError("task", task_id);
        }
        return ReadPage(txn, sql::kDependentPage.name, task_id,
                        continuation_token, limit);
      });
}

absl::StatusOr<TaskStatus> PgStore::ChangeTaskPriority(
    const std::string& task_id, Priority priority) {
  std::string now = pg::TimeParam(Now());
  return pg::RunTransaction<pqxx::work>(
      *pool_, "ChangeTaskPriority", pg::UniqueViolation::kFail,
      [&](pqxx::work& txn) -> absl::StatusOr<TaskStatus> {
        DROVER_ASSIGN_OR_RETURN(TaskStatus before, ReadStatus(txn, task_id));
        const std::string& state = before.state;
        if (state != "unscheduled" && state != "pending" &&
            state != "running") {
          return ConflictError(
              absl::StrCat("task ", task_id, " is resolved (", state,
                           "); only an unresolved task's priority changes"),
              {{"task_id", task_id}, {"state", state}});
        }
        txn.exec_prepared(sql::kChangeTaskPriority.name, task_id,
                          static_cast<int>(priority),
                          std::string(PriorityName(priority)), now);
        return ReadStatus(txn, task_id);
      });
}

absl::StatusOr<int64_t> PgStore::ChangeTaskGroupPriority(
    const std::string& task_group_id, Priority priority) {
  std::string now = pg::TimeParam(Now());
  return pg::RunTransaction<pqxx::work>(
      *pool_, "ChangeTaskGroupPriority", pg::UniqueViolation::kFail,
      [&](pqxx::work& txn) -> absl::StatusOr<int64_t> {
        if (txn.exec_prepared(sql::kTaskGroupInfo.name, task_group_id)
                .empty()) {
          return NotFoundError("task group", task_group_id);
        }
        return txn
            .exec_prepared1(sql::kChangeTaskGroupPriority.name, task_group_id,
                            static_cast<int>(priority),
                            std::string(PriorityName(priority)), now)["changed"]
            .as<int64_t>();
      });
}

absl::StatusOr<EventBatch> PgStore::ReadEvents(int64_t after,
                                               const EventFilter& filter,
                                               int limit,
                                               absl::Duration max_wait) {
  DROVER_RETURN_IF_ERROR(CheckLimit(limit));
  if (after < 0) {
    return InputError("after_event_id", std::to_string(after),
                      "must not be negative");
  }
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ReadEvents", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<EventBatch> {
        EventBatch batch;
        batch.next = after;
        // The order matters: ids drawn first, then a snapshot whose
        // running transactions include every one that drew them.
        DROVER_ASSIGN_OR_RETURN(int64_t drawn, DrawnEventIds(txn));
        if (drawn <= after) return batch;
        if (!WaitForWriters(txn, max_wait)) return batch;
        int64_t upto = std::min(drawn, after + kMaxEventScan);
        pqxx::result rows = txn.exec_prepared(
            sql::kReadEvents.name, after, upto, filter.task_group_id,
            filter.task_queue_id, filter.route_prefix,
            pg::TextArrayParam(filter.kinds), limit);
        for (const auto& row : rows) {
          Event e;
          e.event_id = row["event_id"].as<int64_t>();
          e.kind = row["kind"].c_str();
          e.task_id = row["task_id"].c_str();
          e.task_group_id = row["task_group_id"].c_str();
          e.task_queue_id = row["task_queue_id"].c_str();
          if (!row["run_id"].is_null()) e.run_id = row["run_id"].as<int>();
          e.time = pg::TimeFromMicros(row["time_us"].as<int64_t>());
          e.routes = pg::TextArrayField(row["routes"]);
          e.body = row["body"].c_str();
          batch.events.push_back(std::move(e));
        }
        batch.next = static_cast<int>(batch.events.size()) == limit
                         ? batch.events.back().event_id
                         : upto;
        return batch;
      });
}

absl::StatusOr<int64_t> PgStore::CurrentEventPosition(absl::Duration max_wait) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "CurrentEventPosition", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<int64_t> {
        DROVER_ASSIGN_OR_RETURN(int64_t drawn, DrawnEventIds(txn));
        if (!WaitForWriters(txn, max_wait)) {
          return MakeError(ErrorCode::kInternalError,
                           "timed out waiting for running transactions to "
                           "end; retry");
        }
        return drawn;
      });
}

absl::StatusOr<int> PgStore::AnnounceResolvedTaskGroups(int batch) {
  if (batch < 1) {
    return InputError("batch", std::to_string(batch), "must be at least 1");
  }
  std::string now = pg::TimeParam(Now());
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "AnnounceResolvedTaskGroups", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<int> {
        pqxx::row row =
            txn.exec_prepared1(sql::kAnnounceResolvedGroups.name, batch, now);
        return static_cast<int>(row["consumed"].as<int64_t>());
      });
}

absl::StatusOr<int> PgStore::DeleteExpiredEvents(absl::Duration retention,
                                                 int batch) {
  if (batch < 1) {
    return InputError("batch", std::to_string(batch), "must be at least 1");
  }
  if (retention <= absl::ZeroDuration()) {
    return InputError("retention", absl::FormatDuration(retention),
                      "must be positive");
  }
  absl::Time now = Now();
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "DeleteExpiredEvents", pg::UniqueViolation::kFail,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<int> {
        int deleted = static_cast<int>(
            txn.exec_prepared(sql::kDeleteExpiredEvents.name,
                              pg::TimeParam(now - retention), batch)
                .size());
        txn.exec_prepared(sql::kDeleteStaleGraphStages.name,
                          pg::TimeParam(now - kStageLifetime), batch);
        return deleted;
      });
}

}  // namespace drover::queue::store
