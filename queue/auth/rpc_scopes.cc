#include "queue/auth/rpc_scopes.h"

#include <algorithm>
#include <array>
#include <set>
#include <sstream>
#include <utility>

#include "common/status.h"
#include "drover/v1/artifacts.pb.h"
#include "drover/v1/auth.pb.h"
#include "drover/v1/options.pb.h"
#include "drover/v1/queue.pb.h"
#include "drover/v1/secrets.pb.h"
#include "drover/v1/worker_manager.pb.h"

namespace drover::queue::auth {
namespace {

using E = ScopeExpression;
using google::protobuf::Message;

// Highest first; a create-task scope for a priority also allows every lower
// priority (as in TaskCluster).
constexpr std::array<std::string_view, 7> kPriorities = {
    "highest", "very-high", "high", "medium", "low", "very-low", "lowest"};
constexpr std::string_view kDefaultPriority = "lowest";
constexpr std::string_view kDefaultSchedulerId = "-";

// Collects required scopes built from request fields, remembering the first
// one that is not a valid scope so the caller gets an InputError naming the
// request field instead of a confusing PermissionDenied.
class Requirements {
 public:
  void Scope(std::string scope, std::string_view field) {
    if (!Check(scope, field)) return;
    terms_.push_back(E::Scope(std::move(scope)));
  }
  void AnyOf(std::vector<std::string> scopes, std::string_view field) {
    std::vector<E> options;
    for (std::string& scope : scopes) {
      if (!Check(scope, field)) return;
      options.push_back(E::Scope(std::move(scope)));
    }
    terms_.push_back(options.size() == 1 ? std::move(options.front())
                                         : E::AnyOf(std::move(options)));
  }
  template <typename Repeated>
  void EachScope(const Repeated& scopes, std::string_view field) {
    int i = 0;
    for (const auto& scope : scopes) {
      Scope(std::string(scope),
            std::string(field) + "[" + std::to_string(i++) + "]");
    }
  }
  void Fail(absl::Status status) {
    if (status_.ok()) status_ = std::move(status);
  }
  absl::StatusOr<E> Done() {
    if (!status_.ok()) return status_;
    if (terms_.size() == 1) return std::move(terms_.front());
    return E::AllOf(std::move(terms_));
  }

 private:
  bool Check(const std::string& scope, std::string_view field) {
    if (!status_.ok()) return false;
    absl::Status status = ValidateScope(field, scope);
    if (!status.ok()) {
      status_ = std::move(status);
      return false;
    }
    return true;
  }

  absl::Status status_;
  std::vector<E> terms_;
};

template <typename Request,
          absl::StatusOr<E> (*Build)(const Request&, const ScopeContext&)>
absl::StatusOr<E> Typed(const Message& message, const ScopeContext& context) {
  const auto* request = dynamic_cast<const Request*>(&message);
  if (request == nullptr) {
    return InternalError("scope rule expects " +
                         Request::descriptor()->full_name() + " but got " +
                         message.GetTypeName());
  }
  return Build(*request, context);
}

absl::StatusOr<TaskScopeInfo> LookUpTask(const ScopeContext& context,
                                         const std::string& task_id) {
  if (!context.task) return InternalError("scope rule needs a task lookup");
  return context.task(task_id);
}

// The stored group's scheduler id; an empty id is refused before any
// lookup so the caller learns which field is missing.
absl::StatusOr<std::string> LookUpGroupScheduler(
    const ScopeContext& context, const std::string& task_group_id) {
  if (task_group_id.empty()) {
    return InputError("task_group_id", "", "task_group_id is required");
  }
  if (!context.task_group_scheduler) {
    return InternalError("scope rule needs a task group lookup");
  }
  return context.task_group_scheduler(task_group_id);
}

// Scopes in `wanted` that `current` does not already cover: an update only
// needs the caller to hold what it adds.
absl::StatusOr<std::vector<std::string>> AddedScopes(
    const std::function<
        absl::StatusOr<std::vector<std::string>>(const std::string&)>& lookup,
    const std::string& id,
    const google::protobuf::RepeatedPtrField<std::string>& wanted) {
  if (!lookup) return InternalError("scope rule needs a scopes lookup");
  absl::StatusOr<std::vector<std::string>> current = lookup(id);
  std::vector<std::string> existing;
  if (current.ok()) {
    existing = std::move(*current);
  } else if (!HasErrorCode(current.status(), ErrorCode::kResourceNotFound)) {
    return current.status();
  }
  const ScopeSet held(std::move(existing));
  std::vector<std::string> added;
  for (const std::string& scope : wanted) {
    if (!held.Covers(scope)) added.push_back(scope);
  }
  return added;
}

std::string RunPath(const std::string& task_id, int run_id) {
  return task_id + "/" + std::to_string(run_id);
}

// ---- drover.v1.Queue --------------------------------------------------------

// What creating one task needs; `prefix` ("task" or "tasks[3].task") names
// the fields in errors.
void AddCreateTaskScopes(const v1::TaskDefinition& task,
                         const std::string& prefix, Requirements& r) {
  // An empty scheduler id is stored as the default ("-", as
  // queue_service::kDefaultSchedulerId), so that is what must be held.
  r.Scope("queue:scheduler-id:" + (task.scheduler_id().empty()
                                       ? std::string(kDefaultSchedulerId)
                                       : task.scheduler_id()),
          prefix + ".scheduler_id");
  const std::string_view priority =
      task.priority().empty() ? kDefaultPriority : task.priority();
  auto it = std::find(kPriorities.begin(), kPriorities.end(), priority);
  if (it == kPriorities.end()) {
    r.Fail(InputError(prefix + ".priority", task.priority(),
                      "must be one of highest, very-high, high, medium, low, "
                      "very-low, lowest"));
  } else {
    std::vector<std::string> options;
    for (auto p = kPriorities.begin(); p <= it; ++p) {
      options.push_back("queue:create-task:" + std::string(*p) + ":" +
                        task.task_queue_id());
    }
    r.AnyOf(std::move(options), prefix + ".task_queue_id");
  }
  int i = 0;
  for (const std::string& route : task.routes()) {
    r.Scope("queue:route:" + route,
            prefix + ".routes[" + std::to_string(i++) + "]");
  }
  r.EachScope(task.scopes(), prefix + ".scopes");
}

absl::StatusOr<E> CreateTask(const v1::CreateTaskRequest& request,
                             const ScopeContext&) {
  Requirements r;
  AddCreateTaskScopes(request.task(), "task", r);
  return r.Done();
}

// A graph needs what creating each of its tasks needs. Tasks of a graph
// mostly share queue, scheduler, routes and scopes, so identical
// definitions-for-scopes are checked once.
absl::StatusOr<E> CreateTaskGraph(const v1::CreateTaskGraphRequest& request,
                                  const ScopeContext&) {
  Requirements r;
  std::set<std::string> seen;
  for (int i = 0; i < request.tasks_size(); ++i) {
    const v1::TaskDefinition& task = request.tasks(i).task();
    std::string key = task.scheduler_id() + "\n" + task.priority() + "\n" +
                      task.task_queue_id();
    for (const auto& route : task.routes()) key += "\nr" + route;
    for (const auto& scope : task.scopes()) key += "\ns" + scope;
    if (!seen.insert(std::move(key)).second) continue;
    AddCreateTaskScopes(task, "tasks[" + std::to_string(i) + "].task", r);
  }
  if (seen.empty()) return E::Nothing();
  return r.Done();
}

template <const char* kVerb>
absl::StatusOr<E> TaskGroupAction(const v1::TaskGroupRequest& request,
                                  const ScopeContext&) {
  Requirements r;
  r.Scope(std::string("queue:") + kVerb + ":" + request.task_group_id(),
          "task_group_id");
  return r.Done();
}
constexpr char kListTaskGroup[] = "list-task-group";

// Changes to a whole group name the group's scheduler and the group (as
// TaskCluster does), so a scheduler can be allowed to manage exactly the
// groups it created: `queue:<verb>:<scheduler_id>/<task_group_id>`.
absl::StatusOr<E> GroupChangeScope(std::string_view verb,
                                   const std::string& task_group_id,
                                   const ScopeContext& context) {
  DROVER_ASSIGN_OR_RETURN(std::string scheduler_id,
                          LookUpGroupScheduler(context, task_group_id));
  Requirements r;
  r.Scope(
      "queue:" + std::string(verb) + ":" + scheduler_id + "/" + task_group_id,
      "task_group_id");
  return r.Done();
}

template <const char* kVerb>
absl::StatusOr<E> TaskGroupChange(const v1::TaskGroupRequest& request,
                                  const ScopeContext& context) {
  return GroupChangeScope(kVerb, request.task_group_id(), context);
}
constexpr char kSealTaskGroup[] = "seal-task-group";
constexpr char kCancelTaskGroup[] = "cancel-task-group";

absl::StatusOr<E> ListTaskGroup(const v1::ListTaskGroupRequest& request,
                                const ScopeContext&) {
  Requirements r;
  r.Scope("queue:list-task-group:" + request.task_group_id(), "task_group_id");
  return r.Done();
}

absl::StatusOr<E> ListDependentTasks(
    const v1::ListDependentTasksRequest& request, const ScopeContext&) {
  Requirements r;
  r.Scope("queue:list-dependent-tasks:" + request.task_id(), "task_id");
  return r.Done();
}

// Raising a priority must not let anyone jump the queue beyond what they
// could create: the create-task scope of the new priority (or higher) on
// the task's queue is needed too.
absl::StatusOr<E> ChangeTaskPriority(
    const v1::ChangeTaskPriorityRequest& request, const ScopeContext& context) {
  DROVER_ASSIGN_OR_RETURN(TaskScopeInfo task,
                          LookUpTask(context, request.task_id()));
  Requirements r;
  r.Scope("queue:change-task-priority:" + task.scheduler_id + "/" +
              task.task_group_id + "/" + request.task_id(),
          "task_id");
  auto it = std::find(kPriorities.begin(), kPriorities.end(),
                      std::string_view(request.priority()));
  if (it == kPriorities.end()) {
    r.Fail(InputError("priority", request.priority(),
                      "must be one of highest, very-high, high, medium, low, "
                      "very-low, lowest"));
  } else {
    std::vector<std::string> options;
    for (auto p = kPriorities.begin(); p <= it; ++p) {
      options.push_back("queue:create-task:" + std::string(*p) + ":" +
                        task.task_queue_id);
    }
    r.AnyOf(std::move(options), "priority");
  }
  return r.Done();
}

absl::StatusOr<E> ChangeTaskGroupPriority(
    const v1::ChangeTaskGroupPriorityRequest& request,
    const ScopeContext& context) {
  return GroupChangeScope("change-task-group-priority", request.task_group_id(),
                          context);
}

absl::StatusOr<E> WatchEvents(const v1::WatchEventsRequest& request,
                              const ScopeContext&) {
  Requirements r;
  if (request.task_group_id().empty()) {
    r.Scope("queue:watch-events", "task_group_id");
  } else {
    r.Scope("queue:watch-events:" + request.task_group_id(), "task_group_id");
  }
  return r.Done();
}

absl::StatusOr<E> GetTask(const v1::TaskIdRequest& request,
                          const ScopeContext&) {
  Requirements r;
  r.Scope("queue:get-task:" + request.task_id(), "task_id");
  return r.Done();
}

absl::StatusOr<E> GetTaskStatus(const v1::TaskIdRequest& request,
                                const ScopeContext&) {
  Requirements r;
  r.Scope("queue:get-task-status:" + request.task_id(), "task_id");
  return r.Done();
}

// Schedule, cancel and rerun name the task's scheduler and group, so a
// scheduler can be allowed to manage exactly the tasks it created.
template <const char* kVerb>
absl::StatusOr<E> TaskAction(const v1::TaskIdRequest& request,
                             const ScopeContext& context) {
  DROVER_ASSIGN_OR_RETURN(TaskScopeInfo task,
                          LookUpTask(context, request.task_id()));
  Requirements r;
  r.Scope(std::string("queue:") + kVerb + ":" + task.scheduler_id + "/" +
              task.task_group_id + "/" + request.task_id(),
          "task_id");
  return r.Done();
}
constexpr char kSchedule[] = "schedule-task";
constexpr char kCancel[] = "cancel-task";
constexpr char kRerun[] = "rerun-task";

absl::StatusOr<E> ClaimWork(const v1::ClaimWorkRequest& request,
                            const ScopeContext&) {
  Requirements r;
  r.Scope("queue:claim-work:" + request.task_queue_id(), "task_queue_id");
  r.Scope(
      "queue:worker-id:" + request.worker_group() + "/" + request.worker_id(),
      "worker_id");
  return r.Done();
}

absl::StatusOr<E> ReclaimTask(const v1::RunRequest& request,
                              const ScopeContext&) {
  Requirements r;
  r.Scope("queue:reclaim-task:" + RunPath(request.task_id(), request.run_id()),
          "task_id");
  return r.Done();
}

absl::StatusOr<E> ResolveRun(const v1::RunRequest& request,
                             const ScopeContext&) {
  Requirements r;
  r.Scope("queue:resolve-task:" + RunPath(request.task_id(), request.run_id()),
          "task_id");
  return r.Done();
}

absl::StatusOr<E> ReportException(const v1::ReportExceptionRequest& request,
                                  const ScopeContext&) {
  Requirements r;
  r.Scope("queue:resolve-task:" + RunPath(request.task_id(), request.run_id()),
          "task_id");
  return r.Done();
}

absl::StatusOr<E> GetTaskQueueCounts(const v1::TaskQueueRequest& request,
                                     const ScopeContext&) {
  Requirements r;
  r.Scope("queue:get-task-queue:" + request.task_queue_id(), "task_queue_id");
  return r.Done();
}

absl::StatusOr<E> ListTaskQueues(const v1::ListTaskQueuesRequest&,
                                 const ScopeContext&) {
  return E::Scope("queue:list-task-queues");
}

// ---- drover.v1.Artifacts ----------------------------------------------------

// The live log's artifact name (queue/artifacts/artifact_store.h); TailLog
// reads it, so reading it needs the same scope as the artifact.
constexpr std::string_view kLiveLogArtifact = "public/logs/live.log";

absl::StatusOr<E> CreateArtifact(const v1::CreateArtifactRequest& request,
                                 const ScopeContext&) {
  Requirements r;
  r.Scope(
      "queue:create-artifact:" + RunPath(request.task_id(), request.run_id()),
      "task_id");
  return r.Done();
}

absl::StatusOr<E> FinishArtifact(const v1::ArtifactRequest& request,
                                 const ScopeContext&) {
  Requirements r;
  r.Scope(
      "queue:create-artifact:" + RunPath(request.task_id(), request.run_id()),
      "task_id");
  return r.Done();
}

absl::StatusOr<E> AppendLog(const v1::AppendLogRequest& request,
                            const ScopeContext&) {
  Requirements r;
  r.Scope(
      "queue:create-artifact:" + RunPath(request.task_id(), request.run_id()),
      "task_id");
  return r.Done();
}

absl::StatusOr<E> GetArtifact(const v1::ArtifactRequest& request,
                              const ScopeContext&) {
  Requirements r;
  r.Scope("queue:get-artifact:" + request.name(), "name");
  return r.Done();
}

absl::StatusOr<E> GetLatestArtifact(const v1::LatestArtifactRequest& request,
                                    const ScopeContext&) {
  Requirements r;
  r.Scope("queue:get-artifact:" + request.name(), "name");
  return r.Done();
}

absl::StatusOr<E> ListArtifacts(const v1::ListArtifactsRequest& request,
                                const ScopeContext&) {
  Requirements r;
  r.Scope(
      "queue:list-artifacts:" + RunPath(request.task_id(), request.run_id()),
      "task_id");
  return r.Done();
}

absl::StatusOr<E> ListLatestArtifacts(
    const v1::ListLatestArtifactsRequest& request, const ScopeContext&) {
  Requirements r;
  r.Scope("queue:list-artifacts:" + request.task_id(), "task_id");
  return r.Done();
}

absl::StatusOr<E> TailLog(const v1::TailLogRequest&, const ScopeContext&) {
  return E::Scope("queue:get-artifact:" + std::string(kLiveLogArtifact));
}

// ---- drover.v1.Auth ---------------------------------------------------------

absl::StatusOr<E> CreateClient(const v1::CreateClientRequest& request,
                               const ScopeContext&) {
  Requirements r;
  r.Scope("auth:create-client:" + request.client_id(), "client_id");
  r.EachScope(request.scopes(), "scopes");
  return r.Done();
}

template <const char* kVerb>
absl::StatusOr<E> ClientAction(const v1::ClientIdRequest& request,
                               const ScopeContext&) {
  Requirements r;
  r.Scope(std::string("auth:") + kVerb + ":" + request.client_id(),
          "client_id");
  return r.Done();
}
constexpr char kResetAccessToken[] = "reset-access-token";
constexpr char kDisableClient[] = "disable-client";
constexpr char kEnableClient[] = "enable-client";
constexpr char kDeleteClient[] = "delete-client";
constexpr char kGetClient[] = "get-client";

absl::StatusOr<E> UpdateClient(const v1::UpdateClientRequest& request,
                               const ScopeContext& context) {
  DROVER_ASSIGN_OR_RETURN(std::vector<std::string> added,
                          AddedScopes(context.client_scopes,
                                      request.client_id(), request.scopes()));
  Requirements r;
  r.Scope("auth:update-client:" + request.client_id(), "client_id");
  r.EachScope(added, "scopes");
  return r.Done();
}

absl::StatusOr<E> ListClients(const v1::ListClientsRequest&,
                              const ScopeContext&) {
  return E::Scope("auth:list-clients");
}

absl::StatusOr<E> CreateRole(const v1::CreateRoleRequest& request,
                             const ScopeContext&) {
  Requirements r;
  r.Scope("auth:create-role:" + request.role_id(), "role_id");
  r.EachScope(request.scopes(), "scopes");
  return r.Done();
}

absl::StatusOr<E> UpdateRole(const v1::UpdateRoleRequest& request,
                             const ScopeContext& context) {
  DROVER_ASSIGN_OR_RETURN(
      std::vector<std::string> added,
      AddedScopes(context.role_scopes, request.role_id(), request.scopes()));
  Requirements r;
  r.Scope("auth:update-role:" + request.role_id(), "role_id");
  r.EachScope(added, "scopes");
  return r.Done();
}

template <const char* kVerb>
absl::StatusOr<E> RoleAction(const v1::RoleIdRequest& request,
                             const ScopeContext&) {
  Requirements r;
  r.Scope(std::string("auth:") + kVerb + ":" + request.role_id(), "role_id");
  return r.Done();
}
constexpr char kDeleteRole[] = "delete-role";
constexpr char kGetRole[] = "get-role";

absl::StatusOr<E> ListRoles(const v1::ListRolesRequest&, const ScopeContext&) {
  return E::Scope("auth:list-roles");
}

absl::StatusOr<E> ExpandScopes(const v1::ExpandScopesRequest&,
                               const ScopeContext&) {
  return E::Scope("auth:expand-scopes");
}

absl::StatusOr<E> CurrentScopes(const v1::CurrentScopesRequest&,
                                const ScopeContext&) {
  return E::Nothing();
}

absl::StatusOr<E> CreateTemporaryCredentials(
    const v1::CreateTemporaryCredentialsRequest& request,
    const ScopeContext& context) {
  Requirements r;
  if (!request.client_id().empty() &&
      request.client_id() != context.caller_client_id) {
    r.Scope("auth:create-client:" + request.client_id(), "client_id");
  }
  r.EachScope(request.scopes(), "scopes");
  return r.Done();
}

// ---- drover.v1.Secrets ------------------------------------------------------

absl::StatusOr<E> SetSecret(const v1::SetSecretRequest& request,
                            const ScopeContext&) {
  Requirements r;
  r.Scope("secrets:set:" + request.name(), "name");
  return r.Done();
}

template <const char* kVerb>
absl::StatusOr<E> SecretAction(const v1::SecretNameRequest& request,
                               const ScopeContext&) {
  Requirements r;
  r.Scope(std::string("secrets:") + kVerb + ":" + request.name(), "name");
  return r.Done();
}
constexpr char kGetSecret[] = "get";
constexpr char kSetSecret[] = "set";

absl::StatusOr<E> ListSecrets(const v1::ListSecretsRequest&,
                              const ScopeContext&) {
  return E::Scope("secrets:list-secrets");
}

// ---- drover.v1.WorkerManager ------------------------------------------------

std::string WorkerPath(const v1::WorkerKey& key) {
  return key.worker_pool_id() + "/" + key.worker_group() + "/" +
         key.worker_id();
}

template <const char* kVerb>
absl::StatusOr<E> PoolAction(const v1::WorkerPoolIdRequest& request,
                             const ScopeContext&) {
  Requirements r;
  r.Scope(
      std::string("worker-manager:") + kVerb + ":" + request.worker_pool_id(),
      "worker_pool_id");
  return r.Done();
}
constexpr char kDeleteWorkerPool[] = "delete-worker-pool";
constexpr char kGetWorkerPool[] = "get-worker-pool";

absl::StatusOr<E> CreateWorkerPool(const v1::CreateWorkerPoolRequest& request,
                                   const ScopeContext&) {
  Requirements r;
  r.Scope("worker-manager:create-worker-pool:" + request.worker_pool_id(),
          "worker_pool_id");
  return r.Done();
}

absl::StatusOr<E> UpdateWorkerPool(const v1::UpdateWorkerPoolRequest& request,
                                   const ScopeContext&) {
  Requirements r;
  r.Scope("worker-manager:update-worker-pool:" + request.worker_pool_id(),
          "worker_pool_id");
  return r.Done();
}

absl::StatusOr<E> ResetRegistrationSecret(
    const v1::ResetRegistrationSecretRequest& request, const ScopeContext&) {
  Requirements r;
  r.Scope(
      "worker-manager:reset-registration-secret:" + request.worker_pool_id(),
      "worker_pool_id");
  return r.Done();
}

absl::StatusOr<E> ListWorkerPools(const v1::ListWorkerPoolsRequest&,
                                  const ScopeContext&) {
  return E::Scope("worker-manager:list-worker-pools");
}

absl::StatusOr<E> ListWorkerPoolStats(const v1::ListWorkerPoolStatsRequest&,
                                      const ScopeContext&) {
  return E::Scope("worker-manager:list-worker-pools");
}

absl::StatusOr<E> CreateWorker(const v1::CreateWorkerRequest& request,
                               const ScopeContext&) {
  Requirements r;
  r.Scope("worker-manager:create-worker:" + request.worker_pool_id() + "/" +
              request.worker_group() + "/" + request.worker_id(),
          "worker_id");
  return r.Done();
}

template <const char* kVerb>
absl::StatusOr<E> WorkerAction(const v1::WorkerKey& request,
                               const ScopeContext&) {
  Requirements r;
  r.Scope(std::string("worker-manager:") + kVerb + ":" + WorkerPath(request),
          "worker_id");
  return r.Done();
}
constexpr char kGetWorker[] = "get-worker";
constexpr char kRemoveWorker[] = "remove-worker";
constexpr char kWorkerSelf[] = "worker";

absl::StatusOr<E> ListWorkers(const v1::ListWorkersRequest& request,
                              const ScopeContext&) {
  Requirements r;
  r.Scope("worker-manager:list-workers:" + request.worker_pool_id(),
          "worker_pool_id");
  return r.Done();
}

absl::StatusOr<E> QuarantineWorker(const v1::QuarantineWorkerRequest& request,
                                   const ScopeContext&) {
  Requirements r;
  r.Scope("worker-manager:quarantine-worker:" + WorkerPath(request.worker()),
          "worker.worker_id");
  return r.Done();
}

absl::StatusOr<E> RegisterWorker(const v1::RegisterWorkerRequest&,
                                 const ScopeContext&) {
  return E::Nothing();
}

absl::StatusOr<E> ReregisterWorker(const v1::ReregisterWorkerRequest& request,
                                   const ScopeContext&) {
  Requirements r;
  r.Scope("worker-manager:reregister-worker:" + request.worker_pool_id() + "/" +
              request.worker_group() + "/" + request.worker_id(),
          "worker_id");
  return r.Done();
}

absl::StatusOr<E> WorkerHeartbeat(const v1::WorkerHeartbeatRequest& request,
                                  const ScopeContext&) {
  Requirements r;
  r.Scope("worker-manager:worker:" + WorkerPath(request.worker()),
          "worker.worker_id");
  return r.Done();
}

std::vector<RpcScopeRule> BuildRules() {
  using C = CallerRequirement;
  return {
      // drover.v1.Queue
      {"drover.v1.Queue/CreateTask",
       C::kAnyone,
       {"`queue:scheduler-id:<task.scheduler_id>` (`-` when empty)",
        "`queue:create-task:<priority>:<task.task_queue_id>` for "
        "`task.priority` (default `lowest`) or any higher priority",
        "`queue:route:<route>` for each of `task.routes`",
        "every scope in `task.scopes`"},
       "A task can only carry scopes its creator holds (no escalation), and "
       "routes, scheduler and queue are each authorised. Holding the "
       "create-task scope of a priority allows all lower priorities.",
       &Typed<v1::CreateTaskRequest, &CreateTask>},
      {"drover.v1.Queue/GetTask",
       C::kAnyone,
       {"`queue:get-task:<task_id>`"},
       "Task definitions may hold payloads that are not for everyone. "
       "TaskCluster makes this call public; to do the same, give the "
       "`anonymous` role `queue:get-task:*`.",
       &Typed<v1::TaskIdRequest, &GetTask>},
      {"drover.v1.Queue/GetTaskStatus",
       C::kAnyone,
       {"`queue:get-task-status:<task_id>`"},
       "Public in TaskCluster; grant `queue:get-task-status:*` to the "
       "`anonymous` role for the same behaviour.",
       &Typed<v1::TaskIdRequest, &GetTaskStatus>},
      {"drover.v1.Queue/ScheduleTask",
       C::kAnyone,
       {"`queue:schedule-task:<scheduler_id>/<task_group_id>/<task_id>` "
        "(scheduler and group of the stored task)"},
       "Looks the task up first, so a scheduler can be allowed to manage "
       "exactly its own task groups.",
       &Typed<v1::TaskIdRequest, &TaskAction<kSchedule>>},
      {"drover.v1.Queue/CancelTask",
       C::kAnyone,
       {"`queue:cancel-task:<scheduler_id>/<task_group_id>/<task_id>` "
        "(scheduler and group of the stored task)"},
       "As ScheduleTask.",
       &Typed<v1::TaskIdRequest, &TaskAction<kCancel>>},
      {"drover.v1.Queue/RerunTask",
       C::kAnyone,
       {"`queue:rerun-task:<scheduler_id>/<task_group_id>/<task_id>` "
        "(scheduler and group of the stored task)"},
       "As ScheduleTask.",
       &Typed<v1::TaskIdRequest, &TaskAction<kRerun>>},
      {"drover.v1.Queue/ClaimWork",
       C::kAnyone,
       {"`queue:claim-work:<task_queue_id>`",
        "`queue:worker-id:<worker_group>/<worker_id>`"},
       "A worker may only claim from its queues and only under its own "
       "identity. Each claimed task comes with task credentials (below).",
       &Typed<v1::ClaimWorkRequest, &ClaimWork>},
      {"drover.v1.Queue/ReclaimTask",
       C::kAnyone,
       {"`queue:reclaim-task:<task_id>/<run_id>`"},
       "Held by the task credentials of that run, so only the worker that "
       "claimed the run (or the task itself) can extend it. Returns renewed "
       "task credentials.",
       &Typed<v1::RunRequest, &ReclaimTask>},
      {"drover.v1.Queue/ReportCompleted",
       C::kAnyone,
       {"`queue:resolve-task:<task_id>/<run_id>`"},
       "Held by the task credentials of that run.",
       &Typed<v1::RunRequest, &ResolveRun>},
      {"drover.v1.Queue/ReportFailed",
       C::kAnyone,
       {"`queue:resolve-task:<task_id>/<run_id>`"},
       "Held by the task credentials of that run.",
       &Typed<v1::RunRequest, &ResolveRun>},
      {"drover.v1.Queue/ReportException",
       C::kAnyone,
       {"`queue:resolve-task:<task_id>/<run_id>`"},
       "Held by the task credentials of that run.",
       &Typed<v1::ReportExceptionRequest, &ReportException>},
      {"drover.v1.Queue/GetTaskQueueCounts",
       C::kAnyone,
       {"`queue:get-task-queue:<task_queue_id>`"},
       "Queue statistics (for autoscalers and dashboards).",
       &Typed<v1::TaskQueueRequest, &GetTaskQueueCounts>},
      {"drover.v1.Queue/ListTaskQueues",
       C::kAnyone,
       {"`queue:list-task-queues`"},
       "Lists every queue, so it is one scope rather than per queue.",
       &Typed<v1::ListTaskQueuesRequest, &ListTaskQueues>},
      {"drover.v1.Queue/CreateTaskGraph",
       C::kAnyone,
       {"for every task of the batch, what CreateTask requires for it"},
       "A graph is many CreateTask calls made atomic, so it needs exactly "
       "their scopes (tasks with the same scheduler, priority, queue, routes "
       "and scopes are checked once). Each staged batch is authorised when "
       "it is sent.",
       &Typed<v1::CreateTaskGraphRequest, &CreateTaskGraph>},
      {"drover.v1.Queue/ListTaskGroup",
       C::kAnyone,
       {"`queue:list-task-group:<task_group_id>`"},
       "Reads every task status of the group.",
       &Typed<v1::ListTaskGroupRequest, &ListTaskGroup>},
      {"drover.v1.Queue/GetTaskGroup",
       C::kAnyone,
       {"`queue:list-task-group:<task_group_id>`"},
       "Group progress is a summary of what ListTaskGroup shows, so it "
       "needs the same scope.",
       &Typed<v1::TaskGroupRequest, &TaskGroupAction<kListTaskGroup>>},
      {"drover.v1.Queue/SealTaskGroup",
       C::kAnyone,
       {"`queue:seal-task-group:<scheduler_id>/<task_group_id>` (scheduler "
        "of the stored group)"},
       "Names the group's scheduler and the group (as TaskCluster does), so "
       "a scheduler can be given exactly its own groups. Looks the group up "
       "first (ResourceNotFound for an unknown one).",
       &Typed<v1::TaskGroupRequest, &TaskGroupChange<kSealTaskGroup>>},
      {"drover.v1.Queue/CancelTaskGroup",
       C::kAnyone,
       {"`queue:cancel-task-group:<scheduler_id>/<task_group_id>` "
        "(scheduler of the stored group)"},
       "Cancels every unresolved task of the group at once; named like "
       "SealTaskGroup.",
       &Typed<v1::TaskGroupRequest, &TaskGroupChange<kCancelTaskGroup>>},
      {"drover.v1.Queue/ListDependentTasks",
       C::kAnyone,
       {"`queue:list-dependent-tasks:<task_id>`"},
       "Reads the statuses of the task's dependents.",
       &Typed<v1::ListDependentTasksRequest, &ListDependentTasks>},
      {"drover.v1.Queue/ChangeTaskPriority",
       C::kAnyone,
       {"`queue:change-task-priority:<scheduler_id>/<task_group_id>/"
        "<task_id>` (of the stored task)",
        "`queue:create-task:<priority>:<task_queue_id>` for the new priority "
        "or any higher one (queue of the stored task)"},
       "Changing a priority must not reach further than creating the task "
       "at that priority would.",
       &Typed<v1::ChangeTaskPriorityRequest, &ChangeTaskPriority>},
      {"drover.v1.Queue/ChangeTaskGroupPriority",
       C::kAnyone,
       {"`queue:change-task-group-priority:<scheduler_id>/<task_group_id>` "
        "(scheduler of the stored group)"},
       "Named like SealTaskGroup (as TaskCluster does): whoever may manage "
       "the group may reorder its unresolved tasks.",
       &Typed<v1::ChangeTaskGroupPriorityRequest, &ChangeTaskGroupPriority>},
      {"drover.v1.Queue/WatchEvents",
       C::kAnyone,
       {"`queue:watch-events:<task_group_id>` with a group filter, else "
        "`queue:watch-events`"},
       "Events carry task ids, routes and run details, not payloads; one "
       "group's events can be granted alone.",
       &Typed<v1::WatchEventsRequest, &WatchEvents>},

      // drover.v1.Artifacts
      {"drover.v1.Artifacts/CreateArtifact",
       C::kAnyone,
       {"`queue:create-artifact:<task_id>/<run_id>`"},
       "Held by the task credentials of that run.",
       &Typed<v1::CreateArtifactRequest, &CreateArtifact>},
      {"drover.v1.Artifacts/FinishArtifact",
       C::kAnyone,
       {"`queue:create-artifact:<task_id>/<run_id>`"},
       "As CreateArtifact.",
       &Typed<v1::ArtifactRequest, &FinishArtifact>},
      {"drover.v1.Artifacts/GetArtifact",
       C::kAnyone,
       {"`queue:get-artifact:<name>`"},
       "By artifact name across tasks, as in TaskCluster. The `anonymous` "
       "role holds `queue:get-artifact:public/*` by default, so artifacts "
       "under `public/` need no credentials.",
       &Typed<v1::ArtifactRequest, &GetArtifact>},
      {"drover.v1.Artifacts/GetLatestArtifact",
       C::kAnyone,
       {"`queue:get-artifact:<name>`"},
       "As GetArtifact.",
       &Typed<v1::LatestArtifactRequest, &GetLatestArtifact>},
      {"drover.v1.Artifacts/ListArtifacts",
       C::kAnyone,
       {"`queue:list-artifacts:<task_id>/<run_id>`"},
       "",
       &Typed<v1::ListArtifactsRequest, &ListArtifacts>},
      {"drover.v1.Artifacts/ListLatestArtifacts",
       C::kAnyone,
       {"`queue:list-artifacts:<task_id>`"},
       "`queue:list-artifacts:<task_id>*` allows every run and the latest.",
       &Typed<v1::ListLatestArtifactsRequest, &ListLatestArtifacts>},
      {"drover.v1.Artifacts/AppendLog",
       C::kAnyone,
       {"`queue:create-artifact:<task_id>/<run_id>`"},
       "The live log becomes an artifact of the run; held by the task "
       "credentials of that run.",
       &Typed<v1::AppendLogRequest, &AppendLog>},
      {"drover.v1.Artifacts/TailLog",
       C::kAnyone,
       {"`queue:get-artifact:public/logs/live.log`"},
       "The scope of the artifact the live log becomes (public by default).",
       &Typed<v1::TailLogRequest, &TailLog>},

      // drover.v1.Auth
      {"drover.v1.Auth/CreateClient",
       C::kAuthenticated,
       {"`auth:create-client:<client_id>`", "every scope in `scopes`"},
       "A caller can only give a new client scopes it holds itself.",
       &Typed<v1::CreateClientRequest, &CreateClient>},
      {"drover.v1.Auth/ResetAccessToken",
       C::kAuthenticated,
       {"`auth:reset-access-token:<client_id>`"},
       "Whoever may reset a token may act as that client.",
       &Typed<v1::ClientIdRequest, &ClientAction<kResetAccessToken>>},
      {"drover.v1.Auth/UpdateClient",
       C::kAuthenticated,
       {"`auth:update-client:<client_id>`",
        "every scope in `scopes` that the client's current scopes do not "
        "already cover"},
       "Removing scopes needs no more than the update scope; adding needs "
       "the added scopes.",
       &Typed<v1::UpdateClientRequest, &UpdateClient>},
      {"drover.v1.Auth/DisableClient",
       C::kAuthenticated,
       {"`auth:disable-client:<client_id>`"},
       "",
       &Typed<v1::ClientIdRequest, &ClientAction<kDisableClient>>},
      {"drover.v1.Auth/EnableClient",
       C::kAuthenticated,
       {"`auth:enable-client:<client_id>`"},
       "",
       &Typed<v1::ClientIdRequest, &ClientAction<kEnableClient>>},
      {"drover.v1.Auth/DeleteClient",
       C::kAuthenticated,
       {"`auth:delete-client:<client_id>`"},
       "",
       &Typed<v1::ClientIdRequest, &ClientAction<kDeleteClient>>},
      {"drover.v1.Auth/GetClient",
       C::kAuthenticated,
       {"`auth:get-client:<client_id>`"},
       "Callers see their own identity through CurrentScopes.",
       &Typed<v1::ClientIdRequest, &ClientAction<kGetClient>>},
      {"drover.v1.Auth/ListClients",
       C::kAuthenticated,
       {"`auth:list-clients`"},
       "",
       &Typed<v1::ListClientsRequest, &ListClients>},
      {"drover.v1.Auth/CreateRole",
       C::kAuthenticated,
       {"`auth:create-role:<role_id>`", "every scope in `scopes`"},
       "A caller can only put scopes it holds into a role.",
       &Typed<v1::CreateRoleRequest, &CreateRole>},
      {"drover.v1.Auth/UpdateRole",
       C::kAuthenticated,
       {"`auth:update-role:<role_id>`",
        "every scope in `scopes` that the role's current scopes do not "
        "already cover"},
       "As UpdateClient.",
       &Typed<v1::UpdateRoleRequest, &UpdateRole>},
      {"drover.v1.Auth/DeleteRole",
       C::kAuthenticated,
       {"`auth:delete-role:<role_id>`"},
       "",
       &Typed<v1::RoleIdRequest, &RoleAction<kDeleteRole>>},
      {"drover.v1.Auth/GetRole",
       C::kAuthenticated,
       {"`auth:get-role:<role_id>`"},
       "",
       &Typed<v1::RoleIdRequest, &RoleAction<kGetRole>>},
      {"drover.v1.Auth/ListRoles",
       C::kAuthenticated,
       {"`auth:list-roles`"},
       "",
       &Typed<v1::ListRolesRequest, &ListRoles>},
      {"drover.v1.Auth/ExpandScopes",
       C::kAuthenticated,
       {"`auth:expand-scopes`"},
       "Reveals what roles grant; public in TaskCluster.",
       &Typed<v1::ExpandScopesRequest, &ExpandScopes>},
      {"drover.v1.Auth/CurrentScopes",
       C::kAuthenticated,
       {"no scopes"},
       "Who am I and what may I do: any authenticated caller.",
       &Typed<v1::CurrentScopesRequest, &CurrentScopes>},
      {"drover.v1.Auth/CreateTemporaryCredentials",
       C::kPermanentClient,
       {"every scope in `scopes` (none when empty: the credentials get the "
        "caller's own scopes)",
        "`auth:create-client:<client_id>` when `client_id` is set and "
        "differs from the caller's"},
       "Temporary credentials never exceed their issuer's scopes, and only "
       "permanent credentials can mint them, so a stolen certificate cannot "
       "be renewed past its expiry.",
       &Typed<v1::CreateTemporaryCredentialsRequest,
              &CreateTemporaryCredentials>},

      // drover.v1.Secrets
      {"drover.v1.Secrets/SetSecret",
       C::kAnyone,
       {"`secrets:set:<name>`"},
       "",
       &Typed<v1::SetSecretRequest, &SetSecret>},
      {"drover.v1.Secrets/GetSecret",
       C::kAnyone,
       {"`secrets:get:<name>`"},
       "",
       &Typed<v1::SecretNameRequest, &SecretAction<kGetSecret>>},
      {"drover.v1.Secrets/RemoveSecret",
       C::kAnyone,
       {"`secrets:set:<name>`"},
       "Whoever may set a secret may remove it.",
       &Typed<v1::SecretNameRequest, &SecretAction<kSetSecret>>},
      {"drover.v1.Secrets/ListSecrets",
       C::kAnyone,
       {"`secrets:list-secrets`"},
       "Names only; values need `secrets:get:<name>`.",
       &Typed<v1::ListSecretsRequest, &ListSecrets>},

      // drover.v1.WorkerManager
      {"drover.v1.WorkerManager/CreateWorkerPool",
       C::kAuthenticated,
       {"`worker-manager:create-worker-pool:<worker_pool_id>`"},
       "A pool id is a task queue id; its workers claim from that queue.",
       &Typed<v1::CreateWorkerPoolRequest, &CreateWorkerPool>},
      {"drover.v1.WorkerManager/UpdateWorkerPool",
       C::kAuthenticated,
       {"`worker-manager:update-worker-pool:<worker_pool_id>`"},
       "",
       &Typed<v1::UpdateWorkerPoolRequest, &UpdateWorkerPool>},
      {"drover.v1.WorkerManager/DeleteWorkerPool",
       C::kAuthenticated,
       {"`worker-manager:delete-worker-pool:<worker_pool_id>`"},
       "",
       &Typed<v1::WorkerPoolIdRequest, &PoolAction<kDeleteWorkerPool>>},
      {"drover.v1.WorkerManager/GetWorkerPool",
       C::kAnyone,
       {"`worker-manager:get-worker-pool:<worker_pool_id>`"},
       "",
       &Typed<v1::WorkerPoolIdRequest, &PoolAction<kGetWorkerPool>>},
      {"drover.v1.WorkerManager/ListWorkerPools",
       C::kAnyone,
       {"`worker-manager:list-worker-pools`"},
       "",
       &Typed<v1::ListWorkerPoolsRequest, &ListWorkerPools>},
      {"drover.v1.WorkerManager/ResetRegistrationSecret",
       C::kAuthenticated,
       {"`worker-manager:reset-registration-secret:<worker_pool_id>`"},
       "Whoever holds the pool's registration secret can register workers "
       "of the pool under any group and id.",
       &Typed<v1::ResetRegistrationSecretRequest, &ResetRegistrationSecret>},
      {"drover.v1.WorkerManager/GetWorkerPoolStats",
       C::kAnyone,
       {"`worker-manager:get-worker-pool:<worker_pool_id>`"},
       "",
       &Typed<v1::WorkerPoolIdRequest, &PoolAction<kGetWorkerPool>>},
      {"drover.v1.WorkerManager/ListWorkerPoolStats",
       C::kAnyone,
       {"`worker-manager:list-worker-pools`"},
       "",
       &Typed<v1::ListWorkerPoolStatsRequest, &ListWorkerPoolStats>},
      {"drover.v1.WorkerManager/CreateWorker",
       C::kAuthenticated,
       {"`worker-manager:create-worker:<worker_pool_id>/<worker_group>/"
        "<worker_id>`"},
       "Returns the worker's static secret once.",
       &Typed<v1::CreateWorkerRequest, &CreateWorker>},
      {"drover.v1.WorkerManager/GetWorker",
       C::kAnyone,
       {"`worker-manager:get-worker:<worker_pool_id>/<worker_group>/"
        "<worker_id>`"},
       "",
       &Typed<v1::WorkerKey, &WorkerAction<kGetWorker>>},
      {"drover.v1.WorkerManager/ListWorkers",
       C::kAnyone,
       {"`worker-manager:list-workers:<worker_pool_id>`"},
       "",
       &Typed<v1::ListWorkersRequest, &ListWorkers>},
      {"drover.v1.WorkerManager/QuarantineWorker",
       C::kAuthenticated,
       {"`worker-manager:quarantine-worker:<worker_pool_id>/<worker_group>/"
        "<worker_id>`"},
       "",
       &Typed<v1::QuarantineWorkerRequest, &QuarantineWorker>},
      {"drover.v1.WorkerManager/RemoveWorker",
       C::kAuthenticated,
       {"`worker-manager:remove-worker:<worker_pool_id>/<worker_group>/"
        "<worker_id>`"},
       "The worker's claimed runs resolve `exception/worker-shutdown`.",
       &Typed<v1::WorkerKey, &WorkerAction<kRemoveWorker>>},
      {"drover.v1.WorkerManager/RegisterWorker",
       C::kAnyone,
       {"no scopes: the proof (the worker's static secret or the pool's "
        "registration secret) is checked instead"},
       "Returns temporary credentials, client id "
       "`worker/<worker_pool_id>/<worker_group>/<worker_id>`, with the "
       "scopes `queue:claim-work:<worker_pool_id>`, "
       "`queue:worker-id:<worker_group>/<worker_id>`, "
       "`worker-manager:reregister-worker:<worker_pool_id>/<worker_group>/"
       "<worker_id>`, `worker-manager:worker:<worker_pool_id>/"
       "<worker_group>/<worker_id>` (heartbeat, shutdown) and "
       "`secrets:get:worker-pool:<worker_pool_id>/*`.",
       &Typed<v1::RegisterWorkerRequest, &RegisterWorker>},
      {"drover.v1.WorkerManager/ReregisterWorker",
       C::kAuthenticated,
       {"`worker-manager:reregister-worker:<worker_pool_id>/<worker_group>/"
        "<worker_id>`"},
       "Held by the worker's own credentials; the single-use "
       "re-registration secret is checked too.",
       &Typed<v1::ReregisterWorkerRequest, &ReregisterWorker>},
      {"drover.v1.WorkerManager/WorkerHeartbeat",
       C::kAuthenticated,
       {"`worker-manager:worker:<worker_pool_id>/<worker_group>/"
        "<worker_id>`"},
       "Held by the worker's own credentials.",
       &Typed<v1::WorkerHeartbeatRequest, &WorkerHeartbeat>},
      {"drover.v1.WorkerManager/WorkerShutdown",
       C::kAuthenticated,
       {"`worker-manager:worker:<worker_pool_id>/<worker_group>/"
        "<worker_id>`"},
       "Held by the worker's own credentials.",
       &Typed<v1::WorkerKey, &WorkerAction<kWorkerSelf>>},
  };
}

std::string_view StripSlash(std::string_view method) {
  if (!method.empty() && method.front() == '/') method.remove_prefix(1);
  return method;
}

}  // namespace

std::string_view CallerRequirementName(CallerRequirement caller) {
  switch (caller) {
    case CallerRequirement::kAnyone:
      return "anyone";
    case CallerRequirement::kAuthenticated:
      return "authenticated";
    case CallerRequirement::kPermanentClient:
      return "permanent client";
  }
  return "authenticated";
}

const std::vector<RpcScopeRule>& RpcScopeRules() {
  static const std::vector<RpcScopeRule>* const rules =
      new std::vector<RpcScopeRule>(BuildRules());
  return *rules;
}

const RpcScopeRule* FindRpcScopeRule(std::string_view method) {
  method = StripSlash(method);
  for (const RpcScopeRule& rule : RpcScopeRules()) {
    if (rule.method == method) return &rule;
  }
  return nullptr;
}

absl::StatusOr<ScopeExpression> RequiredScopes(
    std::string_view method, const google::protobuf::Message& request,
    const ScopeContext& context) {
  const RpcScopeRule* rule = FindRpcScopeRule(method);
  if (rule == nullptr) {
    return MakeError(ErrorCode::kInternalError,
                     "no scope rule for method " + std::string(method) +
                         "; refusing the call",
                     {{"method", std::string(method)}});
  }
  return rule->build(request, context);
}

std::vector<std::string> MethodsWithoutRules(
    const google::protobuf::ServiceDescriptor& service) {
  std::vector<std::string> missing;
  for (int i = 0; i < service.method_count(); ++i) {
    const std::string name =
        service.full_name() + "/" + service.method(i)->name();
    if (FindRpcScopeRule(name) == nullptr) missing.push_back(name);
  }
  return missing;
}

std::vector<std::string> TaskCredentialScopes(
    std::string_view task_id, int run_id,
    const std::vector<std::string>& task_scopes) {
  const std::string run = std::string(task_id) + "/" + std::to_string(run_id);
  std::vector<std::string> scopes = task_scopes;
  scopes.push_back("queue:reclaim-task:" + run);
  scopes.push_back("queue:resolve-task:" + run);
  scopes.push_back("queue:create-artifact:" + run);
  // Whatever needs no credentials (public artifacts, e.g. a mounts
  // plugin's inputs) must not become unreachable by presenting some.
  scopes.push_back("assume:anonymous");
  return NormalizeScopes(std::move(scopes));
}

std::string TaskCredentialClientId(std::string_view task_id, int run_id,
                                   std::string_view worker_group,
                                   std::string_view worker_id,
                                   int64_t until_unix_seconds) {
  return "task-client/" + std::string(task_id) + "/" + std::to_string(run_id) +
         "/on/" + std::string(worker_group) + "/" + std::string(worker_id) +
         "/until/" + std::to_string(until_unix_seconds);
}

std::string RenderScopesReference() {
  std::ostringstream out;
  out << "# API scopes\n\n"
         "<!-- Generated from queue/auth/rpc_scopes.cc by "
         "drover_api_scopes_doc; do not edit by hand. -->\n\n"
         "Every RPC of every Drover service checks the caller's scopes "
         "before it runs. This page lists, per method, who may call it and "
         "the scopes required; the server enforces exactly this table "
         "(`queue/auth/rpc_scopes.cc`).\n\n"
         "## Scopes in brief\n\n"
         "- A scope is printable ASCII (0x20-0x7e), 1 to 1024 characters.\n"
         "- A trailing `*` is the only wildcard: `queue:create-task:*` "
         "satisfies `queue:create-task:high:proj/linux`. A `*` elsewhere is "
         "an ordinary character.\n"
         "- `assume:<role>` grants the role's scopes, recursively. A role "
         "whose id ends in `*` applies to every matching `assume:` scope, "
         "with `<..>` in its scopes replaced by the matched suffix; "
         "`assume:foo*` grants every role whose id starts with `foo`.\n"
         "- Requirements below are all needed unless marked \"any of\". "
         "`<field>` stands for the value of that request field.\n"
         "- A call may be narrowed with the `drover-authorized-scopes` "
         "metadata (a JSON array); it can only remove scopes.\n"
         "- A missing scope answers `PERMISSION_DENIED` with error code "
         "`InsufficientScopes`; its `required` detail lists the scope sets "
         "that would have sufficed.\n\n"
         "## Callers\n\n"
         "- **anyone**: unauthenticated callers are allowed and get the "
         "scopes of the `anonymous` role (by default only "
         "`queue:get-artifact:public/*`; administrators may change the "
         "role).\n"
         "- **authenticated**: permanent or temporary credentials needed.\n"
         "- **permanent client**: only a client id and access token; "
         "temporary credentials are refused.\n\n"
         "## Task credentials\n\n"
         "`ClaimWork` and `ReclaimTask` return temporary credentials for each "
         "claimed run, expiring when the claim does (`taken_until`), with "
         "client id `task-client/<task_id>/<run_id>/on/<worker_group>/"
         "<worker_id>/until/<unix seconds>` and the scopes:\n\n"
         "- every scope in the task's `scopes`\n"
         "- `queue:reclaim-task:<task_id>/<run_id>`\n"
         "- `queue:resolve-task:<task_id>/<run_id>`\n"
         "- `queue:create-artifact:<task_id>/<run_id>`\n"
         "- `assume:anonymous` (what needs no credentials stays reachable "
         "with them, e.g. public artifacts)\n\n"
         "so a task can call the API with its own scopes (for example to "
         "create further tasks) and its worker can reclaim and resolve "
         "exactly that run.\n";
  std::string current_service;
  for (const RpcScopeRule& rule : RpcScopeRules()) {
    const std::string method(rule.method);
    const std::string service = method.substr(0, method.find('/'));
    const std::string name = method.substr(method.find('/') + 1);
    if (service != current_service) {
      out << "\n## " << service << "\n";
      current_service = service;
    }
    std::string stability = "unspecified";
    if (const auto* descriptor =
            google::protobuf::DescriptorPool::generated_pool()
                ->FindMethodByName(service + "." + name)) {
      switch (descriptor->options().GetExtension(v1::stability)) {
        case v1::EXPERIMENTAL:
          stability = "experimental";
          break;
        case v1::STABLE:
          stability = "stable";
          break;
        case v1::DEPRECATED:
          stability = "deprecated";
          break;
        default:
          break;
      }
    }
    out << "\n### " << name << "\n\n"
        << "Stability: " << stability
        << ". Caller: " << CallerRequirementName(rule.caller) << ".\n\n";
    for (std::string_view requirement : rule.requirements) {
      out << "- " << requirement << "\n";
    }
    if (!rule.description.empty()) out << "\n" << rule.description << "\n";
  }
  return out.str();
}

}  // namespace drover::queue::auth
