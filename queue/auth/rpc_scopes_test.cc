#include "queue/auth/rpc_scopes.h"

#include <fstream>
#include <sstream>
#include <string>

#include "common/status.h"
#include "drover/v1/auth.pb.h"
#include "drover/v1/queue.pb.h"
#include "drover/v1/secrets.pb.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "queue/auth/certificate.h"

namespace drover::queue::auth {
namespace {

using Scopes = std::vector<std::string>;
using E = ScopeExpression;

// A context whose lookups answer from fixed data and count their calls.
struct FakeLookups {
  std::map<std::string, TaskScopeInfo> tasks;
  std::map<std::string, std::string> group_schedulers;
  std::map<std::string, Scopes> clients;
  std::map<std::string, Scopes> roles;
  int calls = 0;

  ScopeContext Context(std::string caller = "user/alice") {
    ScopeContext context;
    context.caller_client_id = std::move(caller);
    context.task =
        [this](const std::string& id) -> absl::StatusOr<TaskScopeInfo> {
      ++calls;
      auto it = tasks.find(id);
      if (it == tasks.end()) return NotFoundError("task", id);
      return it->second;
    };
    context.task_group_scheduler =
        [this](const std::string& id) -> absl::StatusOr<std::string> {
      ++calls;
      auto it = group_schedulers.find(id);
      if (it == group_schedulers.end()) return NotFoundError("task group", id);
      return it->second;
    };
    context.client_scopes =
        [this](const std::string& id) -> absl::StatusOr<Scopes> {
      ++calls;
      auto it = clients.find(id);
      if (it == clients.end()) return NotFoundError("client", id);
      return it->second;
    };
    context.role_scopes =
        [this](const std::string& id) -> absl::StatusOr<Scopes> {
      ++calls;
      auto it = roles.find(id);
      if (it == roles.end()) return NotFoundError("role", id);
      return it->second;
    };
    return context;
  }
};

E MustRequire(std::string_view method, const google::protobuf::Message& request,
              const ScopeContext& context) {
  auto expression = RequiredScopes(method, request, context);
  EXPECT_TRUE(expression.ok()) << method << ": " << expression.status();
  return expression.ok() ? *expression : E::AnyOf({});
}

const google::protobuf::ServiceDescriptor* Service(const std::string& name) {
  return google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      name);
}

TEST(RpcScopeTableTest, EveryMethodOfEveryServiceHasARule) {
  for (const char* name :
       {"drover.v1.Queue", "drover.v1.Artifacts", "drover.v1.Auth",
        "drover.v1.Secrets", "drover.v1.WorkerManager"}) {
    const auto* service = Service(name);
    ASSERT_NE(service, nullptr) << name;
    EXPECT_EQ(MethodsWithoutRules(*service), Scopes{}) << name;
  }
}

TEST(RpcScopeTableTest, EveryRuleNamesARealMethodAndAcceptsItsRequestType) {
  FakeLookups lookups;
  lookups.tasks[""] = {"sched", "group", "queue/x"};
  std::set<std::string> seen;
  for (const RpcScopeRule& rule : RpcScopeRules()) {
    const std::string method(rule.method);
    EXPECT_TRUE(seen.insert(method).second) << "duplicate rule " << method;
    std::string dotted = method;
    dotted[dotted.find('/')] = '.';
    const auto* descriptor =
        google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
            dotted);
    ASSERT_NE(descriptor, nullptr) << method;
    EXPECT_FALSE(rule.requirements.empty()) << method;
    const google::protobuf::Message* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(
            descriptor->input_type());
    auto expression = rule.build(*prototype, lookups.Context());
    // Empty requests may make invalid scopes (InputError) but never a type
    // mismatch (InternalError).
    EXPECT_FALSE(HasErrorCode(expression.status(), ErrorCode::kInternalError))
        << method << ": " << expression.status();
  }
  EXPECT_GE(seen.size(), 13u + 8u + 16u + 4u)
      << "Queue + Artifacts + Auth + Secrets";
}

TEST(RpcScopeTableTest, UnknownMethodsAreDeniedAndSlashesAccepted) {
  v1::TaskIdRequest request;
  request.set_task_id("t");
  auto unknown = RequiredScopes("drover.v1.Queue/DropDatabase", request, {});
  EXPECT_TRUE(HasErrorCode(unknown.status(), ErrorCode::kInternalError));
  EXPECT_NE(FindRpcScopeRule("/drover.v1.Queue/GetTask"), nullptr);
  EXPECT_EQ(FindRpcScopeRule("drover.v1.Queue/gettask"), nullptr);
  EXPECT_EQ(MustRequire("/drover.v1.Queue/GetTask", request, {}),
            E::Scope("queue:get-task:t"));
}

TEST(RpcScopeTableTest, WrongRequestTypeIsAnInternalError) {
  v1::ClaimWorkRequest wrong;
  auto expression = RequiredScopes("drover.v1.Queue/GetTask", wrong, {});
  ASSERT_FALSE(expression.ok());
  EXPECT_TRUE(HasErrorCode(expression.status(), ErrorCode::kInternalError));
  EXPECT_NE(expression.status().message().find("drover.v1.TaskIdRequest"),
            std::string::npos);
}

v1::CreateTaskRequest SampleTask() {
  v1::CreateTaskRequest request;
  request.set_task_id("fN1SbArXTPSVFNUvaOlinQ");
  v1::TaskDefinition* task = request.mutable_task();
  task->set_task_queue_id("proj/linux");
  task->set_scheduler_id("ci");
  task->set_priority("high");
  task->add_routes("index.project.latest");
  task->add_routes("notify.email.a@b.c");
  task->add_scopes("secrets:get:project/token");
  task->add_scopes("queue:create-task:low:proj/*");
  return request;
}

TEST(CreateTaskScopesTest, NeedsQueueSchedulerRoutesAndEveryTaskScope) {
  E expression = MustRequire("drover.v1.Queue/CreateTask", SampleTask(), {});
  EXPECT_EQ(expression.ToString(),
            R"({"AllOf":["queue:scheduler-id:ci",)"
            R"({"AnyOf":["queue:create-task:highest:proj/linux",)"
            R"("queue:create-task:very-high:proj/linux",)"
            R"("queue:create-task:high:proj/linux"]},)"
            R"("queue:route:index.project.latest",)"
            R"("queue:route:notify.email.a@b.c",)"
            R"("secrets:get:project/token",)"
            R"("queue:create-task:low:proj/*"]})");
}

TEST(CreateTaskScopesTest, HigherPriorityScopeAllowsLowerPriorities) {
  E expression = MustRequire("drover.v1.Queue/CreateTask", SampleTask(), {});
  ScopeSet decision_task({"queue:create-task:highest:proj/*",
                          "queue:scheduler-id:ci", "queue:route:*",
                          "secrets:get:project/*",
                          "queue:create-task:low:proj/*"});
  EXPECT_TRUE(decision_task.Satisfies(expression));
  ScopeSet low_only({"queue:create-task:low:proj/linux",
                     "queue:scheduler-id:ci", "queue:route:*",
                     "secrets:get:project/*", "queue:create-task:low:proj/*"});
  EXPECT_FALSE(low_only.Satisfies(expression));
}

TEST(CreateTaskScopesTest, NoEscalationThroughTaskScopes) {
  E expression = MustRequire("drover.v1.Queue/CreateTask", SampleTask(), {});
  // Everything except one of the task's scopes.
  ScopeSet held(
      {"queue:create-task:*", "queue:scheduler-id:*", "queue:route:*"});
  EXPECT_TRUE(held.Satisfies("queue:create-task:low:proj/*"));
  ASSERT_FALSE(held.Satisfies(expression));
  absl::Status error =
      InsufficientScopesError("drover.v1.Queue/CreateTask", expression, held);
  EXPECT_EQ(GetErrorInfo(error).details["required"],
            R"([["secrets:get:project/token"]])");
}

TEST(CreateTaskScopesTest, DefaultPriorityIsLowestAndAnyPrioritySuffices) {
  v1::CreateTaskRequest request = SampleTask();
  request.mutable_task()->clear_priority();
  request.mutable_task()->clear_routes();
  request.mutable_task()->clear_scopes();
  E expression = MustRequire("drover.v1.Queue/CreateTask", request, {});
  ASSERT_EQ(expression.kind(), E::Kind::kAllOf);
  ASSERT_EQ(expression.terms().size(), 2u);
  EXPECT_EQ(expression.terms()[1].terms().size(), 7u);
  EXPECT_TRUE(
      ScopeSet({"queue:scheduler-id:ci", "queue:create-task:medium:proj/linux"})
          .Satisfies(expression));
}

TEST(CreateTaskScopesTest, InvalidFieldsAreInputErrorsNamingTheField) {
  struct Case {
    std::function<void(v1::TaskDefinition*)> mutate;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{
           {[](auto* t) { t->set_priority("urgent"); }, "task.priority"},
           {[](auto* t) { t->set_routes(1, "bad\nroute"); }, "task.routes[1]"},
           {[](auto* t) { t->set_scopes(0, ""); }, "task.scopes[0]"},
           {[](auto* t) { t->set_scopes(1, "tab\t"); }, "task.scopes[1]"},
           {[](auto* t) { t->set_scheduler_id("s\x01"); }, "task.scheduler_id"},
           {[](auto* t) { t->set_task_queue_id(std::string(2000, 'q')); },
            "task.task_queue_id"}}) {
    v1::CreateTaskRequest request = SampleTask();
    c.mutate(request.mutable_task());
    auto expression = RequiredScopes("drover.v1.Queue/CreateTask", request, {});
    ASSERT_FALSE(expression.ok()) << c.field;
    ErrorInfo info = GetErrorInfo(expression.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], c.field);
  }
}

TEST(QueueScopesTest, ClaimWorkNeedsQueueAndWorkerIdentity) {
  v1::ClaimWorkRequest request;
  request.set_task_queue_id("proj/linux");
  request.set_worker_group("us-east-1");
  request.set_worker_id("i-123");
  EXPECT_EQ(MustRequire("drover.v1.Queue/ClaimWork", request, {}),
            E::AllOf({E::Scope("queue:claim-work:proj/linux"),
                      E::Scope("queue:worker-id:us-east-1/i-123")}));
  // A worker may not claim as another worker.
  ScopeSet worker(
      {"queue:claim-work:proj/*", "queue:worker-id:us-east-1/i-999"});
  EXPECT_FALSE(
      worker.Satisfies(MustRequire("drover.v1.Queue/ClaimWork", request, {})));
}

TEST(QueueScopesTest, TaskCredentialsCoverExactlyTheirRun) {
  const std::string task_id = "fN1SbArXTPSVFNUvaOlinQ";
  ScopeSet credentials(TaskCredentialScopes(task_id, 2, {"secrets:get:x"}));
  EXPECT_TRUE(credentials.Satisfies("secrets:get:x"));
  v1::RunRequest run;
  run.set_task_id(task_id);
  run.set_run_id(2);
  v1::ReportExceptionRequest exception;
  exception.set_task_id(task_id);
  exception.set_run_id(2);
  exception.set_reason("worker-shutdown");
  for (const char* method :
       {"drover.v1.Queue/ReclaimTask", "drover.v1.Queue/ReportCompleted",
        "drover.v1.Queue/ReportFailed"}) {
    EXPECT_TRUE(credentials.Satisfies(MustRequire(method, run, {}))) << method;
  }
  EXPECT_TRUE(credentials.Satisfies(
      MustRequire("drover.v1.Queue/ReportException", exception, {})));
  EXPECT_TRUE(credentials.Satisfies("queue:create-artifact:" + task_id + "/2"));
  // Public artifacts (the anonymous role's) stay readable with credentials.
  EXPECT_TRUE(credentials.Satisfies("assume:anonymous"));

  run.set_run_id(3);  // another run of the same task
  EXPECT_FALSE(credentials.Satisfies(
      MustRequire("drover.v1.Queue/ReclaimTask", run, {})));
  run.set_run_id(20);  // "2" must not act as a prefix of "20"
  EXPECT_FALSE(credentials.Satisfies(
      MustRequire("drover.v1.Queue/ReportCompleted", run, {})));
}

TEST(QueueScopesTest, TaskCredentialClientIdIsAValidClientId) {
  std::string id = TaskCredentialClientId("fN1SbArXTPSVFNUvaOlinQ", 0,
                                          "us-east-1", "i-abc_1", 1700000000);
  EXPECT_EQ(id,
            "task-client/fN1SbArXTPSVFNUvaOlinQ/0/on/us-east-1/i-abc_1/until/"
            "1700000000");
  EXPECT_TRUE(ValidateClientId("client_id", id).ok());
}

TEST(QueueScopesTest, TaskActionsNameSchedulerAndGroupOfTheStoredTask) {
  FakeLookups lookups;
  lookups.tasks["t1"] = {"ci", "g1", "proj/linux"};
  v1::TaskIdRequest request;
  request.set_task_id("t1");
  const ScopeContext context = lookups.Context();
  EXPECT_EQ(MustRequire("drover.v1.Queue/CancelTask", request, context),
            E::Scope("queue:cancel-task:ci/g1/t1"));
  EXPECT_EQ(MustRequire("drover.v1.Queue/ScheduleTask", request, context),
            E::Scope("queue:schedule-task:ci/g1/t1"));
  EXPECT_EQ(MustRequire("drover.v1.Queue/RerunTask", request, context),
            E::Scope("queue:rerun-task:ci/g1/t1"));
  EXPECT_EQ(lookups.calls, 3);
  EXPECT_TRUE(ScopeSet({"queue:cancel-task:ci/*"})
                  .Satisfies(MustRequire("drover.v1.Queue/CancelTask", request,
                                         context)));

  request.set_task_id("missing");
  auto missing = RequiredScopes("drover.v1.Queue/CancelTask", request, context);
  EXPECT_TRUE(HasErrorCode(missing.status(), ErrorCode::kResourceNotFound));
  auto no_lookup = RequiredScopes("drover.v1.Queue/CancelTask", request, {});
  EXPECT_TRUE(HasErrorCode(no_lookup.status(), ErrorCode::kInternalError));
}

TEST(QueueScopesTest, GroupChangesNameSchedulerAndGroupOfTheStoredGroup) {
  FakeLookups lookups;
  lookups.group_schedulers["g1"] = "ci";
  const ScopeContext context = lookups.Context();
  v1::TaskGroupRequest group;
  group.set_task_group_id("g1");
  EXPECT_EQ(MustRequire("drover.v1.Queue/SealTaskGroup", group, context),
            E::Scope("queue:seal-task-group:ci/g1"));
  EXPECT_EQ(MustRequire("drover.v1.Queue/CancelTaskGroup", group, context),
            E::Scope("queue:cancel-task-group:ci/g1"));
  v1::ChangeTaskGroupPriorityRequest priority;
  priority.set_task_group_id("g1");
  priority.set_priority("high");
  EXPECT_EQ(
      MustRequire("drover.v1.Queue/ChangeTaskGroupPriority", priority, context),
      E::Scope("queue:change-task-group-priority:ci/g1"));
  EXPECT_EQ(lookups.calls, 3);
  // A scheduler can be given exactly its own groups.
  EXPECT_TRUE(ScopeSet({"queue:seal-task-group:ci/*"})
                  .Satisfies(MustRequire("drover.v1.Queue/SealTaskGroup", group,
                                         context)));
  EXPECT_FALSE(
      ScopeSet({"queue:seal-task-group:other/*", "queue:seal-task-group:g1"})
          .Satisfies(
              MustRequire("drover.v1.Queue/SealTaskGroup", group, context)));
  // Reads stay per group, without a lookup.
  EXPECT_EQ(MustRequire("drover.v1.Queue/GetTaskGroup", group, {}),
            E::Scope("queue:list-task-group:g1"));

  group.set_task_group_id("missing");
  auto missing =
      RequiredScopes("drover.v1.Queue/SealTaskGroup", group, context);
  EXPECT_TRUE(HasErrorCode(missing.status(), ErrorCode::kResourceNotFound));
  group.set_task_group_id("");
  auto empty =
      RequiredScopes("drover.v1.Queue/CancelTaskGroup", group, context);
  EXPECT_TRUE(HasErrorCode(empty.status(), ErrorCode::kInputError));
  EXPECT_EQ(GetErrorInfo(empty.status()).details["field"], "task_group_id");
  group.set_task_group_id("g1");
  auto no_lookup = RequiredScopes("drover.v1.Queue/SealTaskGroup", group, {});
  EXPECT_TRUE(HasErrorCode(no_lookup.status(), ErrorCode::kInternalError));
}

TEST(QueueScopesTest, ReadsAndListings) {
  v1::TaskIdRequest task;
  task.set_task_id("t1");
  EXPECT_EQ(MustRequire("drover.v1.Queue/GetTask", task, {}),
            E::Scope("queue:get-task:t1"));
  EXPECT_EQ(MustRequire("drover.v1.Queue/GetTaskStatus", task, {}),
            E::Scope("queue:get-task-status:t1"));
  v1::TaskQueueRequest queue;
  queue.set_task_queue_id("p/w");
  EXPECT_EQ(MustRequire("drover.v1.Queue/GetTaskQueueCounts", queue, {}),
            E::Scope("queue:get-task-queue:p/w"));
  EXPECT_EQ(MustRequire("drover.v1.Queue/ListTaskQueues",
                        v1::ListTaskQueuesRequest(), {}),
            E::Scope("queue:list-task-queues"));
  // Nothing is public unless the anonymous role grants it.
  EXPECT_FALSE(
      ScopeSet().Satisfies(MustRequire("drover.v1.Queue/GetTask", task, {})));
}

TEST(AuthScopesTest, CreateClientAndRoleNeedTheGrantedScopes) {
  v1::CreateClientRequest client;
  client.set_client_id("user/bob");
  client.add_scopes("queue:create-task:*");
  EXPECT_EQ(
      MustRequire("drover.v1.Auth/CreateClient", client, {}).ToString(),
      R"({"AllOf":["auth:create-client:user/bob","queue:create-task:*"]})");
  v1::CreateRoleRequest role;
  role.set_role_id("project-admin:*");
  role.add_scopes("secrets:get:project/<..>/*");
  E expression = MustRequire("drover.v1.Auth/CreateRole", role, {});
  EXPECT_TRUE(
      ScopeSet({"auth:create-role:*", "secrets:get:*"}).Satisfies(expression));
  EXPECT_FALSE(ScopeSet({"auth:create-role:*", "secrets:get:project/a/*"})
                   .Satisfies(expression));
}

TEST(AuthScopesTest, UpdatesNeedOnlyTheAddedScopes) {
  FakeLookups lookups;
  lookups.clients["user/bob"] = {"a*", "b"};
  lookups.roles["r"] = {"x"};
  v1::UpdateClientRequest client;
  client.set_client_id("user/bob");
  for (const char* s : {"a1", "b", "c", "a**"}) client.add_scopes(s);
  EXPECT_EQ(
      MustRequire("drover.v1.Auth/UpdateClient", client, lookups.Context())
          .ToString(),
      R"({"AllOf":["auth:update-client:user/bob","c"]})");
  // Removing scopes needs only the update scope.
  client.clear_scopes();
  client.add_scopes("b");
  EXPECT_EQ(
      MustRequire("drover.v1.Auth/UpdateClient", client, lookups.Context()),
      E::Scope("auth:update-client:user/bob"));
  // A client that does not exist: everything counts as added.
  client.set_client_id("user/nobody");
  EXPECT_EQ(
      MustRequire("drover.v1.Auth/UpdateClient", client, lookups.Context())
          .ToString(),
      R"({"AllOf":["auth:update-client:user/nobody","b"]})");

  v1::UpdateRoleRequest role;
  role.set_role_id("r");
  role.add_scopes("x");
  role.add_scopes("y*");
  EXPECT_EQ(MustRequire("drover.v1.Auth/UpdateRole", role, lookups.Context())
                .ToString(),
            R"({"AllOf":["auth:update-role:r","y*"]})");
}

TEST(AuthScopesTest, WideningAWildcardCountsAsAdding) {
  FakeLookups lookups;
  lookups.roles["r"] = {"a**"};
  v1::UpdateRoleRequest role;
  role.set_role_id("r");
  role.add_scopes("a*");  // "a**" satisfies "a*" but grants less
  EXPECT_EQ(MustRequire("drover.v1.Auth/UpdateRole", role, lookups.Context())
                .ToString(),
            R"({"AllOf":["auth:update-role:r","a*"]})");
}

TEST(AuthScopesTest, CallerRequirements) {
  EXPECT_EQ(
      FindRpcScopeRule("drover.v1.Auth/CreateTemporaryCredentials")->caller,
      CallerRequirement::kPermanentClient);
  EXPECT_EQ(FindRpcScopeRule("drover.v1.Auth/CurrentScopes")->caller,
            CallerRequirement::kAuthenticated);
  EXPECT_EQ(FindRpcScopeRule("drover.v1.Queue/CreateTask")->caller,
            CallerRequirement::kAnyone);
  EXPECT_EQ(MustRequire("drover.v1.Auth/CurrentScopes",
                        v1::CurrentScopesRequest(), {}),
            E::Nothing());
}

TEST(AuthScopesTest, TemporaryCredentialsNeedTheirScopesAndNamingRights) {
  v1::CreateTemporaryCredentialsRequest request;
  request.add_scopes("queue:create-task:*");
  FakeLookups lookups;
  EXPECT_EQ(MustRequire("drover.v1.Auth/CreateTemporaryCredentials", request,
                        lookups.Context("user/alice")),
            E::Scope("queue:create-task:*"));
  request.set_client_id("user/alice");
  EXPECT_EQ(MustRequire("drover.v1.Auth/CreateTemporaryCredentials", request,
                        lookups.Context("user/alice")),
            E::Scope("queue:create-task:*"));
  request.set_client_id("ci/deploy");
  EXPECT_EQ(
      MustRequire("drover.v1.Auth/CreateTemporaryCredentials", request,
                  lookups.Context("user/alice"))
          .ToString(),
      R"({"AllOf":["auth:create-client:ci/deploy","queue:create-task:*"]})");
}

TEST(AuthScopesTest, ClientAndRoleActions) {
  v1::ClientIdRequest client;
  client.set_client_id("user/bob");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"ResetAccessToken", "auth:reset-access-token:user/bob"},
      {"DisableClient", "auth:disable-client:user/bob"},
      {"EnableClient", "auth:enable-client:user/bob"},
      {"DeleteClient", "auth:delete-client:user/bob"},
      {"GetClient", "auth:get-client:user/bob"}};
  for (const auto& [method, scope] : expected) {
    EXPECT_EQ(MustRequire("drover.v1.Auth/" + method, client, {}),
              E::Scope(scope));
  }
  v1::RoleIdRequest role;
  role.set_role_id("repo:*");
  EXPECT_EQ(MustRequire("drover.v1.Auth/DeleteRole", role, {}),
            E::Scope("auth:delete-role:repo:*"));
  EXPECT_EQ(MustRequire("drover.v1.Auth/GetRole", role, {}),
            E::Scope("auth:get-role:repo:*"));
  EXPECT_EQ(
      MustRequire("drover.v1.Auth/ListClients", v1::ListClientsRequest(), {}),
      E::Scope("auth:list-clients"));
  EXPECT_EQ(MustRequire("drover.v1.Auth/ListRoles", v1::ListRolesRequest(), {}),
            E::Scope("auth:list-roles"));
  EXPECT_EQ(
      MustRequire("drover.v1.Auth/ExpandScopes", v1::ExpandScopesRequest(), {}),
      E::Scope("auth:expand-scopes"));
}

TEST(SecretsScopesTest, GetAndSetScopes) {
  v1::SetSecretRequest set;
  set.set_name("project/release/key");
  EXPECT_EQ(MustRequire("drover.v1.Secrets/SetSecret", set, {}),
            E::Scope("secrets:set:project/release/key"));
  v1::SecretNameRequest name;
  name.set_name("project/release/key");
  EXPECT_EQ(MustRequire("drover.v1.Secrets/GetSecret", name, {}),
            E::Scope("secrets:get:project/release/key"));
  EXPECT_EQ(MustRequire("drover.v1.Secrets/RemoveSecret", name, {}),
            E::Scope("secrets:set:project/release/key"));
  EXPECT_EQ(MustRequire("drover.v1.Secrets/ListSecrets",
                        v1::ListSecretsRequest(), {}),
            E::Scope("secrets:list-secrets"));
  name.set_name("bad\nname");
  auto bad = RequiredScopes("drover.v1.Secrets/GetSecret", name, {});
  EXPECT_EQ(GetErrorInfo(bad.status()).details["field"], "name");
}

TEST(ScopesReferenceTest, DocsMatchTheTable) {
  const std::string generated = RenderScopesReference();
  for (const RpcScopeRule& rule : RpcScopeRules()) {
    const std::string method(rule.method);
    EXPECT_NE(generated.find("### " + method.substr(method.find('/') + 1)),
              std::string::npos);
  }
  EXPECT_NE(generated.find("### CreateTemporaryCredentials\n\nStability: "
                           "experimental. Caller: permanent client."),
            std::string::npos);
  std::ifstream file(std::string(DROVER_SOURCE_DIR) + "/docs/api-scopes.md");
  ASSERT_TRUE(file.good()) << "docs/api-scopes.md is missing";
  std::stringstream content;
  content << file.rdbuf();
  EXPECT_EQ(content.str(), generated)
      << "docs/api-scopes.md is stale: regenerate it with "
         "drover_api_scopes_doc > docs/api-scopes.md";
}

}  // namespace
}  // namespace drover::queue::auth
